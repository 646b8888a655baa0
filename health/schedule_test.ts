import assert from "node:assert/strict";
import { initialHealth, observe } from "./machine.ts";
import {
  baseDelay,
  burstiness,
  firstProbeAt,
  jittered,
  nextProbeAt,
  spreadPhase,
} from "./schedule.ts";

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
    at = nextProbeAt(s, { ...timing, anchor: at, now: at });
  }
  // Probes at 10s (fail 1), 10.5s (fail 2), 11s (fail 3 → down).
  assert.equal(downAt, 11_000);
});

Deno.test("jitter moves a probe by up to half the fraction of its delay either way around its anchor", () => {
  assert.equal(jittered(5000, { delay: 1000, jitter: 0.1, random: 0 }), 4950);
  assert.equal(jittered(5000, { delay: 1000, jitter: 0.1, random: 0.5 }), 5000);
  assert.ok(Math.abs(jittered(5000, { delay: 1000, jitter: 0.1, random: 0.999999 }) - 5050) < 0.01);
  assert.equal(jittered(5000, { delay: 1000, jitter: 0, random: 0.9 }), 5000);
});

Deno.test("jitter does not accumulate: after 10,000 rounds a probe is still within its share of its phase", () => {
  const random = seeded(11);
  const state = initialHealth("up", 0);
  const t = { interval: 1000, fastinter: 1000, downinter: 1000, jitter: 0.2 };
  let anchor = firstProbeAt(0, { interval: 1000, phase: 0.25 });
  let gaps = { min: Infinity, max: 0 };
  let last = anchor;
  for (let i = 0; i < 10_000; i++) {
    const at = jittered(anchor, { delay: 1000, jitter: 0.2, random: random() });
    assert.ok(Math.abs(at - (250 + 1000 * i)) <= 100, `round ${i} at ${at}`);
    if (i > 0) gaps = { min: Math.min(gaps.min, at - last), max: Math.max(gaps.max, at - last) };
    last = at;
    anchor = nextProbeAt(state, { ...t, anchor, now: at });
  }
  // Each delay is spread by up to ±20%.
  assert.ok(gaps.min >= 800 && gaps.min < 850, `shortest delay ${gaps.min}`);
  assert.ok(gaps.max <= 1200 && gaps.max > 1150, `longest delay ${gaps.max}`);
});

Deno.test("a late or slow probe keeps the server's phase, skipping the rounds it missed", () => {
  const s = initialHealth("up", 0);
  // Due at 0, finished at 300: next is due at 2000 as planned.
  assert.equal(nextProbeAt(s, { ...timing, anchor: 0, now: 300 }), 2000);
  // Finished at 2500, after the next due time: the next round is at 4000.
  assert.equal(nextProbeAt(s, { ...timing, anchor: 0, now: 2500 }), 4000);
  // The event loop stalled for 10.5 s: still on the 2 s grid, never in the past.
  assert.equal(nextProbeAt(s, { ...timing, anchor: 0, now: 10_500 }), 12_000);
});

Deno.test("servers bunched by a stall spread out again at the next probe", () => {
  const random = seeded(3);
  const state = initialHealth("up", 0);
  const t = { interval: 1000, fastinter: 1000, downinter: 1000, jitter: 0.1 };
  // 1,000 probes all due long ago start together at t=60s after a stall.
  const next = Array.from(
    { length: 1000 },
    (_, i) =>
      jittered(nextProbeAt(state, { ...t, anchor: i, now: 60_000 }), {
        delay: 1000,
        jitter: 0.1,
        random: random(),
      }),
  );
  const spread = burstiness(next, 100);
  assert.ok(spread.max < 2 * spread.mean, `max ${spread.max} vs mean ${spread.mean}`);
});

Deno.test("servers get phases evenly around the interval: no 100 ms window holds 1.5x the mean", () => {
  const random = seeded(7);
  const interval = 1000;
  const state = initialHealth("up", 0);
  const t = { interval, fastinter: interval, downinter: interval, jitter: 0.1 };
  for (const count of [300, 1000, 10_000]) {
    const seed = random();
    const times: number[] = [];
    for (let server = 0; server < count; server++) {
      // Half the servers come with a reload 3.7 s later: they fit between the others.
      const start = server < count / 2 ? 0 : 3700;
      let anchor = firstProbeAt(start, { interval, phase: spreadPhase(seed, server) });
      assert.ok(anchor >= start && anchor < start + interval);
      while (anchor < 20_000) {
        const at = jittered(anchor, { delay: interval, jitter: 0.1, random: random() });
        if (anchor >= 5000) times.push(at);
        anchor = nextProbeAt(state, { ...t, anchor, now: at });
      }
    }
    const spread = burstiness(times, 100);
    assert.ok(Math.abs(spread.mean - count / 10) < count / 100, `mean ${spread.mean}`);
    assert.ok(spread.max < 1.5 * spread.mean, `${count}: max ${spread.max}, mean ${spread.mean}`);
  }
  // Without the first-probe spread every server fires at once.
  const burst = burstiness(new Array(1000).fill(0), 100);
  assert.equal(burst.max, 1000);
});

Deno.test("phases follow the golden ratio from the seed and the first probe lies on the phase", () => {
  assert.equal(spreadPhase(0, 0), 0);
  assert.ok(Math.abs(spreadPhase(0, 1) - 0.618) < 0.001);
  assert.ok(Math.abs(spreadPhase(0.5, 1) - 0.118) < 0.001);
  assert.equal(firstProbeAt(10_250, { interval: 1000, phase: 0.5 }), 10_500);
  assert.equal(firstProbeAt(10_750, { interval: 1000, phase: 0.5 }), 11_500);
  assert.equal(firstProbeAt(10_500, { interval: 1000, phase: 0.5 }), 10_500);
});

Deno.test("burstiness counts the fullest window", () => {
  assert.deepEqual(burstiness([], 100), { max: 0, mean: 0 });
  assert.equal(burstiness([0, 10, 20, 150, 400], 100).max, 3);
  assert.equal(burstiness([0, 100, 200], 100).max, 1);
});
