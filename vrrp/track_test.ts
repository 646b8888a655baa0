import assert from "node:assert/strict";
import { poolUp, trackVerdict } from "./track.ts";

Deno.test("a tracked object without weight faults the instance when down", () => {
  const v = trackVerdict(100, [
    { what: "interface eth1", up: false },
    { what: "pool web", up: true },
  ]);
  assert.deepEqual(v, { priority: 100, faults: ["interface eth1"] });
});

Deno.test("positive weights add when up, negative weights subtract when down", () => {
  assert.equal(trackVerdict(100, [{ what: "a", up: true, weight: 20 }]).priority, 120);
  assert.equal(trackVerdict(100, [{ what: "a", up: false, weight: 20 }]).priority, 100);
  assert.equal(trackVerdict(100, [{ what: "a", up: false, weight: -30 }]).priority, 70);
  assert.equal(trackVerdict(100, [{ what: "a", up: true, weight: -30 }]).priority, 100);
  assert.deepEqual(trackVerdict(100, [{ what: "a", up: false, weight: -30 }]).faults, []);
});

Deno.test("the adjusted priority stays within 1-254 and the owner stays 255", () => {
  assert.equal(trackVerdict(250, [{ what: "a", up: true, weight: 100 }]).priority, 254);
  assert.equal(trackVerdict(10, [{ what: "a", up: false, weight: -100 }]).priority, 1);
  assert.equal(trackVerdict(255, [{ what: "a", up: false, weight: -100 }]).priority, 255);
});

Deno.test("a pool is up when some server has an effective weight", () => {
  assert.equal(poolUp([]), false);
  assert.equal(poolUp([{ effectiveWeight: 0 }, { effectiveWeight: 0 }]), false);
  assert.equal(poolUp([{ effectiveWeight: 0 }, { effectiveWeight: 3 }]), true);
});
