/**
 * When to probe a server next. Pure: the time and the random draws are arguments.
 *
 * Each server has an anchor, its probe times without jitter: the first lies at the
 * server's phase of the interval, phases taken from a golden-ratio sequence with a
 * random start, so any number of servers lie evenly around the interval (not in the
 * random clumps of independent draws), and on one grid counted from time 0, so
 * servers added later fit between them. Each later anchor is the last plus the state's
 * delay. A probe runs within ±`jitter`/2 of the delay around its anchor, so each delay
 * between two probes is spread by ±`jitter` (a fraction), and the jitter never
 * accumulates into phases that drift together.
 * @module
 */
import { type HealthState, isTransitioning } from "./machine.ts";

/** The timing settings of a check (all ms, jitter a fraction 0–1). */
export interface Timing {
  readonly interval: number;
  readonly fastinter: number;
  readonly downinter: number;
  readonly jitter: number;
}

/**
 * The nominal delay after a check: `fastinter` while transitioning, `downinter`
 * while steadily down, `interval` while steadily up.
 */
export function baseDelay(state: HealthState, timing: Timing): number {
  if (isTransitioning(state)) return timing.fastinter;
  return state.health === "down" ? timing.downinter : timing.interval;
}

/** Golden-ratio step: every new phase falls into the widest gap left between the others. */
const GOLDEN = 0.6180339887498949;

/**
 * The phase (0–1) of the `index`-th server added, from `seed` (a random draw in [0, 1)):
 * a Weyl sequence, so the first n phases split the circle into gaps of at most three
 * sizes, for every n.
 */
export function spreadPhase(seed: number, index: number): number {
  const x = seed + index * GOLDEN;
  return x - Math.floor(x);
}

/**
 * The anchor of a new server's first probe: the first time from `now` on that lies at
 * `phase` (0–1) of the interval, counted from time 0 (within one interval from `now`).
 */
export function firstProbeAt(now: number, options: { interval: number; phase: number }): number {
  const { interval } = options;
  const ahead = (options.phase * interval - (now % interval)) % interval;
  return now + (ahead < 0 ? ahead + interval : ahead);
}

/**
 * The anchor of the next probe: the last `anchor` plus the state's delay. It is counted
 * from the anchor, not from when the probe ran, so a slow check or a busy event loop
 * does not shift the server's phase. A probe that ended after its next anchor skips the
 * rounds it missed and keeps its phase: when the process falls behind it checks less
 * often, but probes that ran late together are not bunched into a burst.
 */
export function nextProbeAt(
  state: HealthState,
  options: Timing & { anchor: number; now: number },
): number {
  const base = baseDelay(state, options);
  const next = options.anchor + base;
  if (next >= options.now) return next;
  return next + Math.ceil((options.now - next) / base) * base;
}

/**
 * When a probe anchored at `anchor` runs: spread by ±`jitter`/2 of `delay` around it
 * (`random` is a draw in [0, 1)), so two probes in a row are `delay` ± `jitter`·`delay`
 * apart.
 */
export function jittered(
  anchor: number,
  options: { delay: number; jitter: number; random: number },
): number {
  return anchor + options.delay * options.jitter * (options.random - 0.5);
}

/**
 * The largest number of `times` that fall in any window of `window` ms, and the mean
 * per window over the span of the times. Used to show the spread of probes.
 */
export function burstiness(
  times: readonly number[],
  window: number,
): { max: number; mean: number } {
  if (times.length === 0) return { max: 0, mean: 0 };
  const sorted = [...times].sort((a, b) => a - b);
  let max = 0;
  let lo = 0;
  for (let hi = 0; hi < sorted.length; hi++) {
    while (sorted[hi] - sorted[lo] >= window) lo++;
    max = Math.max(max, hi - lo + 1);
  }
  const span = Math.max(window, sorted[sorted.length - 1] - sorted[0]);
  return { max, mean: sorted.length * window / span };
}
