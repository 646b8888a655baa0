import assert from "node:assert/strict";
import { createScheduler, Dest, kernelOrder } from "./mod.ts";
import type { Scheduler } from "./mod.ts";

function picks(sched: Scheduler, count: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(sched.pick()?.host ?? "-");
  return out;
}

Deno.test("rr starts at the newest destination and cycles in list order", () => {
  const a = new Dest("A", 80);
  const b = new Dest("B", 80);
  const c = new Dest("C", 80);
  const rr = createScheduler("rr");
  rr.update(kernelOrder([a, b, c])); // added A, B, C → list C, B, A
  assert.deepEqual(picks(rr, 5), ["C", "B", "A", "C", "B"]);
});

Deno.test("rr skips quiesced and overloaded destinations and resumes after the last pick", () => {
  const a = new Dest("A", 80);
  const b = new Dest("B", 80);
  const c = new Dest("C", 80);
  const rr = createScheduler("rr");
  rr.update([c, b, a]);
  assert.deepEqual(picks(rr, 1), ["C"]);
  b.weight = 0;
  rr.update([c, b, a]);
  assert.deepEqual(picks(rr, 3), ["A", "C", "A"]);
  a.overloaded = true;
  assert.deepEqual(picks(rr, 2), ["C", "C"]);
  c.weight = 0;
  rr.update([c, b, a]);
  assert.deepEqual(picks(rr, 1), ["-"]);
});

Deno.test("rr moves its cursor to the previous entry when the last pick is removed", () => {
  const a = new Dest("A", 80);
  const b = new Dest("B", 80);
  const c = new Dest("C", 80);
  const rr = createScheduler("rr");
  rr.update([c, b, a]);
  assert.deepEqual(picks(rr, 2), ["C", "B"]);
  rr.update([c, a]); // B removed: cursor goes to C, so A is next
  assert.deepEqual(picks(rr, 3), ["A", "C", "A"]);
});

Deno.test("wrr steps the current weight down by the gcd of weights", () => {
  // Weights 4, 2 (gcd 2), added A then B: list B, A. di=2, mw=4-1=3.
  // First update with A alone: di=4, mw=1, cw=1. Adding B: di=2, mw=3; cw=1 stays
  // (not > mw, not 0; di>1 → (1/2)*2+1 = 1).
  const a = new Dest("A", 80, 4);
  const b = new Dest("B", 80, 2);
  const wrr = createScheduler("wrr");
  wrr.update([a]);
  wrr.update([b, a]);
  // cw=1: B(2≥1) A(4≥1); cw→3-... wrap: cw=1-2=-1 → cw=mw=3: B no, A yes;
  // cw=1: B, A; cw=3: A; ...
  assert.deepEqual(picks(wrr, 7), ["B", "A", "A", "B", "A", "A", "B"]);
});

Deno.test("wrr gives weights 3:1 a 3:1 share in the kernel's order", () => {
  const a = new Dest("A", 80, 3);
  const b = new Dest("B", 80, 1);
  const wrr = createScheduler("wrr");
  wrr.update([a]); // di=3 mw=1 cw=1
  wrr.update([b, a]); // di=1 mw=3 cw=1
  assert.deepEqual(picks(wrr, 8), ["B", "A", "A", "A", "B", "A", "A", "A"]);
});

Deno.test("wrr with all weights zero or overloaded picks nothing", () => {
  const a = new Dest("A", 80, 0);
  const b = new Dest("B", 80, 0);
  const wrr = createScheduler("wrr");
  wrr.update([b, a]);
  assert.equal(wrr.pick(), undefined);
  a.weight = 2;
  b.weight = 2;
  wrr.update([b, a]);
  a.overloaded = true;
  b.overloaded = true;
  assert.equal(wrr.pick(), undefined);
  b.overloaded = false;
  assert.deepEqual(picks(wrr, 3), ["B", "B", "B"]);
});

Deno.test("wrr quiesced destination gets nothing after a weight change", () => {
  const a = new Dest("A", 80, 1);
  const b = new Dest("B", 80, 1);
  const c = new Dest("C", 80, 1);
  const wrr = createScheduler("wrr");
  wrr.update([c, b, a]);
  assert.deepEqual(picks(wrr, 3), ["C", "B", "A"]);
  b.weight = 0;
  wrr.update([c, b, a]);
  assert.deepEqual(picks(wrr, 4), ["C", "A", "C", "A"]);
});
