import assert from "node:assert/strict";
import { ConnTable } from "./conn_table.ts";

const timeouts = { syn: 3000, established: 900_000, finWait: 120_000, udp: 300_000 };

function dest() {
  return { activeConns: 0, inactiveConns: 0 };
}

Deno.test("a connection counts inactive until established, then active, then inactive again", () => {
  const table = new ConnTable(timeouts);
  const d = dest();
  const c = table.add(
    { protocol: "tcp", service: "web", client: "10.0.0.1:1000", source: "10.0.0.1", dest: d },
    0,
  );
  assert.deepEqual(d, { activeConns: 0, inactiveConns: 1 });
  table.setState(c, "ESTABLISHED", 10);
  assert.deepEqual(d, { activeConns: 1, inactiveConns: 0 });
  table.setState(c, "FIN_WAIT", 20);
  assert.deepEqual(d, { activeConns: 0, inactiveConns: 1 });
  assert.equal(c.expires, 20 + 120_000);
  assert.equal(table.remove(c), true);
  assert.equal(table.remove(c), false);
  assert.deepEqual(d, { activeConns: 0, inactiveConns: 0 });
  assert.equal(table.size, 0);
});

Deno.test("the table is indexed by protocol, client and service and counts per source", () => {
  const table = new ConnTable(timeouts);
  const d = dest();
  const init = { protocol: "udp" as const, service: "dns", source: "10.0.0.1", dest: d };
  const a = table.add({ ...init, client: "10.0.0.1:5353" }, 0);
  table.add({ ...init, client: "10.0.0.1:5354" }, 0);
  assert.equal(table.get("udp 10.0.0.1:5353 dns"), a);
  assert.equal(a.state, "UDP");
  assert.equal(table.fromSource("10.0.0.1"), 2);
  assert.equal(table.fromSource("10.0.0.2"), 0);
});

Deno.test("gc removes expired connections a bounded slice at a time", () => {
  const table = new ConnTable(timeouts);
  const d = dest();
  for (let i = 0; i < 10; i++) {
    const c = table.add(
      { protocol: "tcp", service: "s", client: `10.0.0.1:${i}`, source: "10.0.0.1", dest: d },
      0,
    );
    if (i % 2 === 0) table.setState(c, "ESTABLISHED", 0);
  }
  // At 5 s the five SYN_RECV connections (3 s) are expired, the established are not.
  const first = table.gc(5000, 4);
  assert.equal(first.length, 2, "4 examined: ids 0..3, of which 1 and 3 expired");
  const rest = table.gc(5000, 100);
  assert.equal(rest.length, 3);
  assert.equal(table.size, 5);
  assert.deepEqual(d, { activeConns: 5, inactiveConns: 0 });
});

Deno.test("traffic ends the embryonic phase and restarts the timer", () => {
  const table = new ConnTable(timeouts);
  const d = dest();
  const init = { protocol: "tcp" as const, service: "s", source: "10.0.0.1", dest: d };
  const a = table.add({ ...init, client: "10.0.0.1:1" }, 0);
  const b = table.add({ ...init, client: "10.0.0.1:2" }, 5);
  assert.deepEqual([...table.embryonic()], [a, b]);
  table.setState(a, "ESTABLISHED", 10);
  table.touch(a, 50);
  assert.deepEqual([...table.embryonic()], [b]);
  assert.equal(a.expires, 50 + 900_000);
});
