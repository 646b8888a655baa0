import assert from "node:assert/strict";
import { createScheduler, Dest } from "./mod.ts";
import { pickTwos } from "./least.ts";

function dests(...spec: [string, number, number, number][]): Dest[] {
  return spec.map(([host, weight, active, inactive]) => {
    const d = new Dest(host, 80, weight);
    d.activeConns = active;
    d.inactiveConns = inactive;
    return d;
  });
}

/** Runs `count` picks, opening one active connection on each pick. */
function sequence(name: "lc" | "wlc" | "sed" | "nq", list: Dest[], count: number): string[] {
  const sched = createScheduler(name);
  sched.update(list);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const d = sched.pick() as Dest | undefined;
    out.push(d?.host ?? "-");
    if (d) d.activeConns++;
  }
  return out;
}

Deno.test("lc picks the smallest 256·active + inactive, the earlier entry on ties", () => {
  // Costs: C = 256, B = 256 + 300 = 556, A = 0 + 255 = 255 → A.
  const [c, b, a] = dests(["C", 1, 1, 0], ["B", 1, 1, 300], ["A", 1, 0, 255]);
  const lc = createScheduler("lc");
  lc.update([c, b, a]);
  assert.equal(lc.pick(), a);
  a.inactiveConns = 256; // now C (256) ties A (256): C is earlier
  assert.equal(lc.pick(), c);
});

Deno.test("lc ignores weights except zero and fills the idle destinations first", () => {
  const list = dests(["C", 5, 0, 0], ["B", 0, 0, 0], ["A", 1, 0, 0]);
  assert.deepEqual(sequence("lc", list, 5), ["C", "A", "C", "A", "C"]);
});

Deno.test("wlc sends the next connection to the least cost/weight server", () => {
  // All idle: tie → first (newest). Then cost/weight: B 256/3 < A 0? No: A is idle.
  const list = dests(["B", 3, 0, 0], ["A", 1, 0, 0]);
  // 1: B (tie, first). 2: B=256/3 vs A=0/1 → A. 3: B=256/3=85 vs A=256 → B.
  // 4: B=512/3=170 → B. 5: B=768/3=256 vs A=256 → tie, B stays. 6: B=1024/3 > 256 → A.
  assert.deepEqual(sequence("wlc", list, 6), ["B", "A", "B", "B", "B", "A"]);
});

Deno.test("wlc skips weight 0 and overloaded destinations", () => {
  const [c, b, a] = dests(["C", 0, 0, 0], ["B", 1, 5, 0], ["A", 1, 9, 0]);
  const wlc = createScheduler("wlc");
  wlc.update([c, b, a]);
  assert.equal(wlc.pick(), b);
  b.overloaded = true;
  assert.equal(wlc.pick(), a);
  a.weight = 0;
  wlc.update([c, b, a]);
  assert.equal(wlc.pick(), undefined);
});

Deno.test("sed uses (active + 1)/weight and ignores inactive connections", () => {
  // B w=2, A w=1, both idle: B=1/2 < A=1/1 → B. Then B=2/2 vs A=1 → tie, B. Then B=3/2 > 1 → A.
  const list = dests(["B", 2, 0, 50], ["A", 1, 0, 0]);
  assert.deepEqual(sequence("sed", list, 4), ["B", "B", "A", "B"]);
});

Deno.test("nq takes the first idle destination, otherwise sed", () => {
  // C busy(2), B idle, A idle → B (first idle). Then A idle → A. Then sed: C w=4: 3/4,
  // B w=1: 2/1, A w=1: 2/1 → C.
  const list = dests(["C", 4, 2, 0], ["B", 1, 0, 0], ["A", 1, 0, 0]);
  assert.deepEqual(sequence("nq", list, 3), ["B", "A", "C"]);
});

Deno.test("fo picks the highest weight, the earlier on ties, skipping overloaded", () => {
  const [c, b, a] = dests(["C", 5, 0, 0], ["B", 10, 0, 0], ["A", 10, 0, 0]);
  const fo = createScheduler("fo");
  fo.update([c, b, a]);
  assert.equal(fo.pick(), b);
  b.overloaded = true;
  assert.equal(fo.pick(), a);
  a.weight = 0;
  fo.update([c, b, a]);
  assert.equal(fo.pick(), c);
});

Deno.test("ovf picks the highest weight until active connections exceed it", () => {
  const [b, a] = dests(["B", 2, 0, 0], ["A", 1, 0, 0]);
  const ovf = createScheduler("ovf");
  ovf.update([b, a]);
  const out: string[] = [];
  for (let i = 0; i < 6; i++) {
    const d = ovf.pick() as Dest | undefined;
    out.push(d?.host ?? "-");
    if (d) d.activeConns++;
  }
  // B takes 0,1,2 active (≤ 2); at 3 it overflows to A, A takes 0,1; then none.
  assert.deepEqual(out, ["B", "B", "B", "A", "A", "-"]);
});

Deno.test("twos draws two by weight and keeps the less loaded, the first on ties", () => {
  const [c, b, a] = dests(["C", 1, 0, 0], ["B", 2, 0, 0], ["A", 1, 0, 0]);
  const list = [c, b, a];
  // total = 4 + 1 = 5. r=0 → C (0-1 ≤ 0); r=1 → C; r=2 → B (2-1=1, 1-2 ≤ 0); r=3 → B;
  // r=4 → A (4-1-2-1 = 0).
  assert.equal(pickTwos(list, 0, 0), c);
  assert.equal(pickTwos(list, 2, 4), b); // idle both: tie keeps choice1
  b.activeConns = 1; // B cost 256/2 vs A 0/1 → A
  assert.equal(pickTwos(list, 3, 4), a);
  assert.equal(pickTwos(list, 5, 9), c); // 5 % 5 = 0 → C, 9 % 5 = 4 → A; tie → C
  const twos = createScheduler("twos", { random: () => 7 }); // 7 % 5 = 2 → B twice
  twos.update(list);
  assert.equal(twos.pick(), b);
});
