import assert from "node:assert/strict";
import { initialHealth, observe } from "./machine.ts";
import { baseDelay, burstiness, firstProbeAt, jittered, nextProbeAt } from "./schedule.ts";

const timing = { interval: 2000, fastinter: 500, downinter: 5000, jitter: 0 };

/** A deterministic pseudo-random sequence (mulberry32). */
function seeded(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

Deno.test("probes run every interval when up, fastinter while transitioning, downinter when down", () => {
  const thresholds = { rise: 2, fall: 3 };
  let s = initialHealth("up", 0);
  assert.equal(baseDelay(s, timing), 2000);
  s = observe(s, { ok: false, reason: "x" }, { ...thresholds, now: 1 }).state;
  assert.equal(baseDelay(s, timing), 500);
  s = observe(s, { ok: false, reason: "x" }, { ...thresholds, now: 2 }).state;
  s = observe(s, { ok: false, reason: "x" }, { ...thresholds, now: 3 }).state;
  assert.equal(s.health, "down");
  assert.equal(baseDelay(s, timing), 5000);
  s = observe(s, { ok: true, reason: "y" }, { ...thresholds, now: 4 }).state;
  assert.equal(baseDelay(s, timing), 500);
});

Deno.test("a stopped server is marked down after fall probes with fastinter between them", () => {
  // Fake clock: the server stops answering at t=10s; probes run every 2s, 500ms in transition.
  const thresholds = { rise: 2, fall: 3 };
  let s = initialHealth("up", 0);
  let at = 0;
  let downAt: number | undefined;
  for (let i = 0; i < 50 && downAt === undefined; i++) {
    const ok = at < 10_000;
    const r = observe(s, { ok, reason: ok ? "connected" : "connect refused" }, {
      ...thresholds,
      now: at,
    });
    s = r.state;
    if (r.transition === "down") downAt = at;
    at = nextProbeAt(s, { ...timing, dueAt: at, now: at, random: 0.5 });
  }
  // Probes at 10s (fail 1), 10.5s (fail 2), 11s (fail 3 → down).
  assert.equal(downAt, 11_000);
});

Deno.test("jitter spreads a delay symmetrically by the given fraction", () => {
  assert.equal(jittered(1000, 0.1, 0), 900);
  assert.equal(jittered(1000, 0.1, 0.5), 1000);
  assert.ok(Math.abs(jittered(1000, 0.1, 0.999999) - 1100) < 0.01);
  assert.equal(jittered(1000, 0, 0.9), 1000);
});

Deno.test("a late or slow probe keeps the server's phase, skipping the rounds it missed", () => {
  const s = initialHealth("up", 0);
  // Due at 0, finished at 300: next is due at 2000 as planned.
  assert.equal(nextProbeAt(s, { ...timing, dueAt: 0, now: 300, random: 0.5 }), 2000);
  // Finished at 2500, after the next due time: the next round is at 4000.
  assert.equal(nextProbeAt(s, { ...timing, dueAt: 0, now: 2500, random: 0.5 }), 4000);
  // The event loop stalled for 10.5 s: still on the 2 s grid, never in the past.
  assert.equal(nextProbeAt(s, { ...timing, dueAt: 0, now: 10_500, random: 0.5 }), 12_000);
});

Deno.test("servers bunched by a stall spread out again at the next probe", () => {
  const random = seeded(3);
  const state = initialHealth("up", 0);
  const t = { interval: 1000, fastinter: 1000, downinter: 1000, jitter: 0.1 };
  // 1,000 probes all due long ago start together at t=60s after a stall.
  const next = Array.from(
    { length: 1000 },
    (_, i) => nextProbeAt(state, { ...t, dueAt: i, now: 60_000, random: random() }),
  );
  const spread = burstiness(next, 100);
  assert.ok(spread.max < 2 * spread.mean, `max ${spread.max} vs mean ${spread.mean}`);
});

Deno.test("1,000 servers started together are spread: no 100 ms window holds 2x the mean", () => {
  const random = seeded(7);
  const interval = 1000;
  const times: number[] = [];
  const state = initialHealth("up", 0);
  for (let server = 0; server < 1000; server++) {
    let at = firstProbeAt(0, { interval, random: random() });
    while (at < 10_000) {
      times.push(at);
      at = nextProbeAt(state, {
        interval,
        fastinter: interval,
        downinter: interval,
        jitter: 0.1,
        dueAt: at,
        now: at,
        random: random(),
      });
    }
  }
  const spread = burstiness(times, 100);
  assert.ok(Math.abs(spread.mean - 100) < 5, `mean ${spread.mean}`);
  assert.ok(spread.max < 2 * spread.mean, `max ${spread.max} vs mean ${spread.mean}`);
  // Without the first-probe spread every server fires at once.
  const burst = burstiness(new Array(1000).fill(0), 100);
  assert.equal(burst.max, 1000);
});

Deno.test("burstiness counts the fullest window", () => {
  assert.deepEqual(burstiness([], 100), { max: 0, mean: 0 });
  assert.equal(burstiness([0, 10, 20, 150, 400], 100).max, 3);
  assert.equal(burstiness([0, 100, 200], 100).max, 1);
});
