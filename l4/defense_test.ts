import assert from "node:assert/strict";
import { ConnTable } from "./conn_table.ts";
import { admit, embryonicToShed } from "./defense.ts";

const timeouts = { syn: 3000, established: 900_000, finWait: 120_000, udp: 300_000 };
const base = { maxConns: 0, perSource: 0, embryonicTimeout: 10_000, dropEntry: 0 };

function fill(table: ConnTable<{ activeConns: number; inactiveConns: number }>, n: number) {
  const dest = { activeConns: 0, inactiveConns: 0 };
  const conns = [];
  for (let i = 0; i < n; i++) {
    const source = `10.0.0.${i % 2}`;
    conns.push(
      table.add({ protocol: "tcp", service: "s", client: `${source}:${i}`, source, dest }, i),
    );
  }
  return conns;
}

Deno.test("a source at its limit is refused, others are admitted", () => {
  const table = new ConnTable(timeouts);
  fill(table, 4); // two per source
  assert.deepEqual(admit(table, "10.0.0.0", { ...base, perSource: 2 }), {
    admit: false,
    reason: "per_source",
  });
  assert.deepEqual(admit(table, "10.0.0.9", { ...base, perSource: 2 }), { admit: true });
});

Deno.test("at the global cap the oldest embryonic connection is shed, else refused", () => {
  const table = new ConnTable(timeouts);
  const conns = fill(table, 3);
  table.touch(conns[0], 5); // conns[0] has seen traffic
  const verdict = admit(table, "10.0.0.7", { ...base, maxConns: 3 });
  assert.deepEqual(verdict, { admit: true, shed: conns[1] });
  table.touch(conns[1], 5);
  table.touch(conns[2], 5);
  assert.deepEqual(admit(table, "10.0.0.7", { ...base, maxConns: 3 }), {
    admit: false,
    reason: "global_cap",
  });
});

Deno.test("under pressure embryonic connections older than the timeout are shed", () => {
  const table = new ConnTable(timeouts);
  const conns = fill(table, 4); // created at 0, 1, 2, 3
  const settings = { ...base, maxConns: 5, embryonicTimeout: 10, dropEntry: 1 };
  assert.deepEqual(embryonicToShed(table, settings, 11), [conns[0], conns[1]]);
  assert.deepEqual(embryonicToShed(table, { ...settings, maxConns: 100 }, 11), [], "no pressure");
  assert.equal(
    embryonicToShed(table, { ...base, dropEntry: 3, embryonicTimeout: 10 }, 20).length,
    4,
  );
});
