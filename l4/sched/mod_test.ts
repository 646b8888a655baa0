import assert from "node:assert/strict";
import { SCHEDULERS } from "../../config/schema.ts";
import { createScheduler, Dest, kernelOrder, updateOverload } from "./mod.ts";

Deno.test("every IPVS scheduler name creates a scheduler that picks a usable server", () => {
  for (const name of SCHEDULERS) {
    const sched = createScheduler(name);
    assert.equal(sched.name, name);
    const a = new Dest("10.0.0.1", 80, 1);
    sched.update([a]);
    const context = { client: { address: "10.9.9.9" }, destination: { address: "10.0.0.100" } };
    assert.equal(sched.pick(context), a, name);
    a.weight = 0;
    sched.update([a]);
    assert.equal(sched.pick(context), undefined, `${name} must not pick a quiesced server`);
  }
});

Deno.test("destinations added one by one end up newest first", () => {
  assert.deepEqual(kernelOrder(["a", "b", "c"]), ["c", "b", "a"]);
});

Deno.test("the overload flag sets at the upper threshold and clears below the lower", () => {
  const d = { overloaded: false, activeConns: 3, inactiveConns: 1 };
  updateOverload(d, { upper: 5, lower: 2 }, { bound: true });
  assert.equal(d.overloaded, false);
  d.activeConns = 4;
  updateOverload(d, { upper: 5, lower: 2 }, { bound: true });
  assert.equal(d.overloaded, true);
  d.activeConns = 1;
  updateOverload(d, { upper: 5, lower: 2 }, { bound: false });
  assert.equal(d.overloaded, true, "2 connections is not below the lower threshold 2");
  d.inactiveConns = 0;
  updateOverload(d, { upper: 5, lower: 2 }, { bound: false });
  assert.equal(d.overloaded, false);
});

Deno.test("without a lower threshold the flag clears below 3/4 of the upper", () => {
  const d = { overloaded: true, activeConns: 6, inactiveConns: 0 };
  updateOverload(d, { upper: 8, lower: 0 }, { bound: false });
  assert.equal(d.overloaded, true, "6·4 = 24 is not below 8·3 = 24");
  d.activeConns = 5;
  updateOverload(d, { upper: 8, lower: 0 }, { bound: false });
  assert.equal(d.overloaded, false);
});
