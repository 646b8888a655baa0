import assert from "node:assert/strict";
import { configSchema } from "../config/schema.ts";
import { buildModel } from "../config/model.ts";
import type { ServerState } from "../health/state.ts";
import { ServiceRuntime } from "./service.ts";

function setup(
  service: Record<string, unknown>,
  states: Record<string, Partial<ServerState>> = {},
) {
  const m = buildModel(
    configSchema.parse({
      pools: {
        p: { servers: [{ address: "10.0.0.1:80" }, { address: "10.0.0.2:80" }] },
      },
      l4: { services: [{ name: "s", vip: "10.0.0.100:80", pool: "p", ...service }] },
    }),
    { path: "t", hash: "0" },
  );
  const lookup = (_pool: string, address: string) => states[address] as ServerState | undefined;
  return { svc: new ServiceRuntime(m.l4.services[0], m.pools.p, lookup), pool: m.pools.p, lookup };
}

Deno.test("servers join newest first, so rr starts with the last configured", () => {
  const { svc } = setup({ scheduler: "rr" });
  assert.deepEqual(svc.list.map((s) => s.address), ["10.0.0.2:80", "10.0.0.1:80"]);
  assert.equal(svc.place("192.0.2.1", 1000, 0)?.dest.address, "10.0.0.2:80");
  assert.equal(svc.place("192.0.2.1", 1001, 0)?.dest.address, "10.0.0.1:80");
});

Deno.test("persistence sends a client /24 to one server while rr would alternate", () => {
  const { svc } = setup({
    scheduler: "rr",
    persistence: { timeout: "1m", netmask: "255.255.255.0" },
  });
  const first = svc.place("192.0.2.1", 1000, 0)!;
  const second = svc.place("192.0.2.77", 1000, 10)!;
  assert.equal(second.dest, first.dest);
  const other = svc.place("198.51.100.1", 1000, 20)!;
  assert.notEqual(other.dest, first.dest, "another /24 is scheduled by rr");
  assert.equal(svc.view().dests.find((d) => d.address === first.dest.address)?.persistentConns, 1);
});

Deno.test("a down server leaves the list with on_down remove and gets weight 0 with quiesce", () => {
  const down = {
    "10.0.0.1:80": { health: "down", admin: "enabled", effectiveWeight: 0 } as Partial<ServerState>,
  };
  const removed = setup({}, down);
  assert.deepEqual(removed.svc.view().dests.map((d) => d.address), ["10.0.0.2:80"]);
  const quiesced = setup({ on_down: "quiesce" }, down);
  assert.deepEqual(
    quiesced.svc.view().dests.map((d) => [d.address, d.weight]),
    [["10.0.0.2:80", 1], ["10.0.0.1:80", 0]],
  );
  assert.equal(quiesced.svc.place("192.0.2.1", 1, 0)?.dest.address, "10.0.0.2:80");
});

Deno.test("the overload flag follows the upper threshold as connections bind", () => {
  const m = buildModel(
    configSchema.parse({
      pools: { p: { servers: [{ address: "10.0.0.1:80", upper_threshold: 2 }] } },
      l4: { services: [{ name: "s", vip: "10.0.0.100:80", pool: "p" }] },
    }),
    { path: "t", hash: "0" },
  );
  const svc = new ServiceRuntime(m.l4.services[0], m.pools.p, () => undefined);
  const d = svc.place("192.0.2.1", 1, 0)!.dest;
  d.inactiveConns = 2;
  svc.bound(d);
  assert.equal(d.overloaded, true);
  assert.equal(svc.place("192.0.2.1", 2, 0), undefined, "an overloaded server takes no more");
  d.inactiveConns = 1;
  svc.unbound(d);
  assert.equal(d.overloaded, false, "1·4 < 2·3 clears the flag");
});

Deno.test("a server back from on_down removal rejoins at the head of the list", () => {
  const states: Record<string, Partial<ServerState>> = {
    "10.0.0.2:80": { health: "down", admin: "enabled", effectiveWeight: 0 },
  };
  const { svc, pool, lookup } = setup({ scheduler: "rr" }, states);
  assert.deepEqual(svc.view().dests.map((d) => d.address), ["10.0.0.1:80"]);
  states["10.0.0.1:80"] = { health: "up", admin: "enabled", effectiveWeight: 1 };
  states["10.0.0.2:80"] = { health: "up", admin: "enabled", effectiveWeight: 1 };
  svc.refresh(pool, lookup);
  assert.deepEqual(svc.list.map((s) => s.address), ["10.0.0.2:80", "10.0.0.1:80"]);
  states["10.0.0.1:80"] = { health: "down", admin: "enabled", effectiveWeight: 0 };
  svc.refresh(pool, lookup);
  states["10.0.0.1:80"] = { health: "up", admin: "enabled", effectiveWeight: 1 };
  svc.refresh(pool, lookup);
  assert.deepEqual(svc.list.map((s) => s.address), ["10.0.0.1:80", "10.0.0.2:80"]);
});
