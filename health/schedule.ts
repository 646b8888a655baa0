/**
 * When to probe a server next. Pure: the time and the random draw are arguments.
 *
 * The first probe of each server lands uniformly inside its first interval so that
 * 1,000 servers configured together are not probed in one burst; every later delay
 * is spread by ±`jitter` (a fraction) so the phases never line up again.
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

/** Spreads `delay` by ±`jitter`·delay; `random` is a draw in [0, 1). */
export function jittered(delay: number, jitter: number, random: number): number {
  return delay * (1 + jitter * (2 * random - 1));
}

/** When the first probe of a newly added server should run: uniform in one interval. */
export function firstProbeAt(now: number, options: { interval: number; random: number }): number {
  return now + options.interval * options.random;
}

/**
 * When the next probe should run. It is counted from when the last probe was due, not
 * from when it actually started, so a slow check or a busy event loop does not shift
 * the server's phase. A probe that ended after its next due time skips the rounds it
 * missed and keeps its phase: when the process falls behind it checks less often, but
 * probes that ran late together are not bunched into a burst.
 */
export function nextProbeAt(
  state: HealthState,
  options: Timing & { dueAt: number; now: number; random: number },
): number {
  const base = baseDelay(state, options);
  const next = options.dueAt + jittered(base, options.jitter, options.random);
  if (next >= options.now) return next;
  return next + Math.ceil((options.now - next) / base) * base;
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
