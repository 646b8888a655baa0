import assert from "node:assert/strict";
import { createScheduler, Dest } from "./mod.ts";
import { ENTRY_TIMEOUT, MAX_ENTRIES } from "./locality.ts";
import type { Scheduler } from "./mod.ts";

/** Picks for destination `address` at `now` and opens an active connection there. */
function open(sched: Scheduler, address: string, now = 0): string {
  const d = sched.pick({ destination: { address }, now }) as Dest | undefined;
  if (d) d.activeConns++;
  return d?.host ?? "-";
}

Deno.test("lblc keeps a destination address on its server until the kernel's overload rule", () => {
  const b = new Dest("B", 80, 1);
  const a = new Dest("A", 80, 1);
  const lblc = createScheduler("lblc");
  lblc.update([b, a]);
  assert.equal(open(lblc, "10.0.0.1"), "B"); // wlc tie → first
  assert.equal(open(lblc, "10.0.0.2"), "A"); // wlc: B 256 vs A 0
  assert.equal(open(lblc, "10.0.0.1"), "B"); // cached, B active 1 ≤ weight 1
  // B active 2 > 1, but no server has active·2 < weight (A: 2 < 1 false): stays.
  assert.equal(open(lblc, "10.0.0.1"), "B");
  a.activeConns = 0; // now A is under half its weight: B counts as overloaded
  assert.equal(open(lblc, "10.0.0.1"), "A");
  assert.equal(open(lblc, "10.0.0.1"), "A", "the cache now names A");
  assert.equal(lblc.cacheSize(), 2);
});

Deno.test("lblc reschedules when the cached server is quiesced or removed", () => {
  const b = new Dest("B", 80, 1);
  const a = new Dest("A", 80, 1);
  const lblc = createScheduler("lblc");
  lblc.update([b, a]);
  assert.equal(open(lblc, "10.0.0.1"), "B");
  b.weight = 0;
  lblc.update([b, a]);
  assert.equal(open(lblc, "10.0.0.1"), "A");
  b.weight = 1;
  lblc.update([b]); // A removed
  assert.equal(open(lblc, "10.0.0.1"), "B");
});

Deno.test("lblc expires unused entries on every 30th check, and early under pressure", () => {
  const a = new Dest("A", 80, 1);
  const lblc = createScheduler("lblc", { expiration: 1000 });
  lblc.update([a]);
  open(lblc, "10.0.0.1", 0);
  open(lblc, "10.0.0.2", 4500);
  for (let i = 1; i < 30; i++) assert.equal(lblc.expire(5000), 0);
  assert.equal(lblc.expire(5000), 1, "the full check removes the entry unused since 0");
  assert.equal(lblc.cacheSize(), 1);

  const big = createScheduler("lblc");
  big.update([a]);
  for (let i = 0; i < MAX_ENTRIES + 30; i++) big.pick({ destination: { address: `k${i}` } });
  // 30 over the maximum: the goal is 30·4/3 = 40 entries unused for ENTRY_TIMEOUT.
  assert.equal(big.expire(ENTRY_TIMEOUT - 1), 0);
  assert.equal(big.expire(ENTRY_TIMEOUT), 40);
  assert.equal(big.cacheSize(), MAX_ENTRIES - 10);
});

Deno.test("lblcr grows a server set under overload and uses its least loaded member", () => {
  const b = new Dest("B", 80, 1);
  const a = new Dest("A", 80, 1);
  const lblcr = createScheduler("lblcr", { expiration: 1000 });
  lblcr.update([b, a]);
  assert.equal(open(lblcr, "10.0.0.1", 0), "B");
  assert.equal(open(lblcr, "10.0.0.1", 0), "B"); // active 1 ≤ weight 1
  // B active 2 > 1 and A (0·2 < 1) is under half: wlc adds A to the set.
  assert.equal(open(lblcr, "10.0.0.1", 1), "A");
  assert.equal(open(lblcr, "10.0.0.1", 1), "A"); // set [A, B]: A 256 < B 512
  // A 512 ties B 512: the first of the set (A, newest) wins; nobody is under half.
  assert.equal(open(lblcr, "10.0.0.1", 1), "A");
  // After the expiration without set changes the most loaded (A, 768) leaves the set;
  // this pick still uses the least loaded found before: B (512).
  assert.equal(open(lblcr, "10.0.0.1", 1002), "B");
  a.activeConns = 0;
  b.activeConns = 0;
  assert.equal(open(lblcr, "10.0.0.1", 1003), "B", "A is no longer in the set");
});

Deno.test("lblcr with every server quiesced picks nothing", () => {
  const a = new Dest("A", 80, 0);
  const lblcr = createScheduler("lblcr");
  lblcr.update([a]);
  assert.equal(open(lblcr, "10.0.0.1"), "-");
  assert.equal(lblcr.cacheSize(), 0);
});
