import assert from "node:assert/strict";
import type { IpvsDest, IpvsService } from "../../sys/ipvs.ts";
import { type DesiredService, destKey, keyOf } from "./desired.ts";
import { describeOp, inverse, type Observed, planChanges, sameDest, sameService } from "./plan.ts";

const svc: IpvsService = {
  family: 4,
  protocol: "tcp",
  address: "10.0.0.1",
  port: 80,
  scheduler: "wrr",
  flags: 0,
  timeout: 0,
  netmask: 0xffffffff,
};

function dest(address: string, weight: number): IpvsDest {
  return {
    family: 4,
    address,
    port: 80,
    forward: "nat",
    weight,
    upperThreshold: 0,
    lowerThreshold: 0,
  };
}

function desired(service: IpvsService, dests: IpvsDest[], name = "web"): DesiredService {
  return {
    name,
    key: keyOf(service),
    service,
    pool: "p",
    dests: new Map(dests.map((d) => [destKey(d), d])),
  };
}

const none = { owned: new Set<string>(), removeForeign: false };

Deno.test("an empty kernel gets the service, then its destinations", () => {
  const ops = planChanges([desired(svc, [dest("10.0.1.1", 1), dest("10.0.1.2", 2)])], [], none);
  assert.deepEqual(ops.map((o) => o.kind), ["newService", "newDest", "newDest"]);
});

Deno.test("one changed weight is one change; equal state is none", () => {
  const observed: Observed[] = [{
    service: { ...svc, flags: 0x2 },
    dests: [dest("10.0.1.1", 1), dest("10.0.1.2", 2)],
  }];
  assert.deepEqual(
    planChanges([desired(svc, [dest("10.0.1.1", 1), dest("10.0.1.2", 2)])], observed, none),
    [],
  );
  const ops = planChanges(
    [desired(svc, [dest("10.0.1.1", 1), dest("10.0.1.2", 5)])],
    observed,
    none,
  );
  assert.equal(ops.length, 1);
  assert.equal(ops[0].kind, "setDest");
  assert.equal(describeOp(ops[0]), "~ real server 10.0.1.2:80 of web weight 2 -> 5");
});

Deno.test("scheduler, forward and removed destinations become set and delete changes", () => {
  const observed: Observed[] = [{
    service: svc,
    dests: [dest("10.0.1.1", 1), dest("10.0.1.3", 1)],
  }];
  const ops = planChanges(
    [desired({ ...svc, scheduler: "rr" }, [{ ...dest("10.0.1.1", 1), forward: "dr" }])],
    observed,
    none,
  );
  assert.deepEqual(ops.map((o) => o.kind), ["setService", "delDest", "setDest"]);
});

Deno.test("foreign services are left alone unless removal is asked; owned stale ones go", () => {
  const foreign: Observed = { service: { ...svc, address: "10.99.0.1" }, dests: [] };
  const stale: Observed = { service: { ...svc, address: "10.0.0.9" }, dests: [] };
  const keep = planChanges([], [foreign, stale], {
    owned: new Set([keyOf(stale.service)]),
    removeForeign: false,
  });
  assert.deepEqual(keep.map((o) => o.kind === "delService" && o.before.service.address), [
    "10.0.0.9",
  ]);
  const remove = planChanges([], [foreign, stale], { owned: new Set(), removeForeign: true });
  assert.equal(remove.length, 2);
});

Deno.test("every change has an inverse that restores the previous state", () => {
  const observed: Observed[] = [{
    service: svc,
    dests: [dest("10.0.1.1", 1), dest("10.0.1.3", 1)],
  }];
  const ops = planChanges(
    [desired({ ...svc, scheduler: "rr" }, [dest("10.0.1.1", 4), dest("10.0.1.2", 1)])],
    observed,
    none,
  );
  // Replay ops then inverses on a tiny in-memory table: the table must end as it began.
  const table = new Map<string, { service: IpvsService; dests: Map<string, IpvsDest> }>();
  for (const o of observed) {
    table.set(keyOf(o.service), {
      service: o.service,
      dests: new Map(o.dests.map((d) => [destKey(d), d])),
    });
  }
  const run = (op: ReturnType<typeof inverse>[number]) => {
    switch (op.kind) {
      case "newService":
        table.set(keyOf(op.service), { service: op.service, dests: new Map() });
        break;
      case "setService":
        table.get(keyOf(op.service))!.service = op.service;
        break;
      case "delService":
        table.delete(keyOf(op.before.service));
        break;
      case "newDest":
      case "setDest":
        table.get(keyOf(op.key))!.dests.set(destKey(op.dest), op.dest);
        break;
      case "delDest":
        table.get(keyOf(op.key))!.dests.delete(destKey(op.before));
    }
  };
  const snapshot = () =>
    JSON.stringify([...table.values()].map((t) => [t.service, [...t.dests.values()]]));
  const before = snapshot();
  ops.forEach(run);
  assert.notEqual(snapshot(), before);
  [...ops].reverse().flatMap(inverse).forEach(run);
  assert.equal(snapshot(), before);
});

Deno.test("tunnel settings matter only for tunnel destinations", () => {
  const a: IpvsDest = {
    ...dest("10.0.1.1", 1),
    forward: "tun",
    tunnel: { type: "gue", port: 6080, csum: "none" },
  };
  assert.equal(sameDest(a, { ...a, tunnel: { type: "gue", port: 6081, csum: "none" } }), false);
  assert.equal(
    sameDest({ ...a, tunnel: { type: "ipip", port: 1, csum: "csum" } }, {
      ...a,
      tunnel: { type: "ipip", port: 0, csum: "none" },
    }),
    true,
  );
  assert.equal(
    sameService(svc, { ...svc, flags: 0x2 }),
    true,
    "the kernel's HASHED bit is ignored",
  );
  assert.equal(sameService(svc, { ...svc, timeout: 5 }), false);
});
