/**
 * The rise/fall state machine of one real server and the weight it should carry.
 * Pure: every function takes the time as an argument and never reads a clock.
 *
 * A server that is up goes down after `fall` consecutive failed checks; a server that
 * is down comes up after `rise` consecutive passed checks (HAProxy's and keepalived's
 * semantics). After a recovery, `slowstart` ramps the weight from 1 to the full weight.
 * @module
 */
import type { AdminState, Health } from "./state.ts";

/** What one check said about a server. */
export interface CheckOutcome {
  /** True when the check passed. */
  readonly ok: boolean;
  /** Why, in a few words: `connect refused`, `status 503`, `exit 1: no route`. */
  readonly reason: string;
  /** A dynamic weight (exec checks exiting 2–255 set weight = code − 2). */
  readonly weight?: number;
}

/** The health of one server as the checker tracks it. */
export interface HealthState {
  readonly health: Health;
  /** Consecutive passed checks while down. */
  readonly passes: number;
  /** Consecutive failed checks while up. */
  readonly failures: number;
  /** When health last changed (ms, same clock as `now`). */
  readonly since: number;
  /** Why health last changed. */
  readonly reason: string;
  /** When the server last recovered (down → up); slow start counts from here. */
  readonly recoveredAt?: number;
}

/** Rise and fall thresholds. */
export interface Thresholds {
  readonly rise: number;
  readonly fall: number;
}

/** The state of a server before its first check, from the check's `assume`. */
export function initialHealth(assume: Health, now: number): HealthState {
  return { health: assume, passes: 0, failures: 0, since: now, reason: `assumed ${assume}` };
}

/** What {@link observe} returns: the next state and whether health flipped. */
export interface Observation {
  readonly state: HealthState;
  /** Set when this outcome changed the health. */
  readonly transition?: Health;
}

/**
 * Feeds one check outcome into the state machine. Health flips to down after
 * `fall` failures in a row while up, and to up after `rise` passes in a row while down.
 */
export function observe(
  state: HealthState,
  outcome: CheckOutcome,
  options: Thresholds & { now: number },
): Observation {
  if (state.health === "up") {
    if (outcome.ok) return { state: state.failures ? { ...state, failures: 0 } : state };
    const failures = state.failures + 1;
    if (failures < options.fall) return { state: { ...state, failures } };
    return {
      state: {
        health: "down",
        passes: 0,
        failures: 0,
        since: options.now,
        reason: outcome.reason,
        recoveredAt: state.recoveredAt,
      },
      transition: "down",
    };
  }
  if (!outcome.ok) return { state: state.passes ? { ...state, passes: 0 } : state };
  const passes = state.passes + 1;
  if (passes < options.rise) return { state: { ...state, passes } };
  return {
    state: {
      health: "up",
      passes: 0,
      failures: 0,
      since: options.now,
      reason: outcome.reason,
      recoveredAt: options.now,
    },
    transition: "up",
  };
}

/** True while a server is between states (some, not all, checks toward a flip). */
export function isTransitioning(state: HealthState): boolean {
  return state.health === "up" ? state.failures > 0 : state.passes > 0;
}

/** Inputs of {@link effectiveWeight}. */
export interface WeightInputs {
  readonly health: Health;
  readonly admin: AdminState;
  /** Weight from the config. */
  readonly configured: number;
  /** Weight set through the admin API; wins over everything else. */
  readonly override?: number;
  /** Weight set by an exec check's exit code. */
  readonly dynamic?: number;
  /** When the server last recovered; undefined when it never went down. */
  readonly recoveredAt?: number;
}

/** The weight a server carries before slow start and health: override, dynamic, configured. */
export function baseWeight(inputs: WeightInputs): number {
  return inputs.override ?? inputs.dynamic ?? inputs.configured;
}

/**
 * The weight traffic should use now: 0 when down, disabled or draining; during
 * `slowstart` after a recovery it ramps linearly, never below 1 while the target is
 * positive.
 */
export function effectiveWeight(
  inputs: WeightInputs,
  options: { now: number; slowstart: number },
): number {
  if (inputs.health !== "up" || inputs.admin !== "enabled") return 0;
  const weight = baseWeight(inputs);
  if (weight <= 0 || options.slowstart <= 0 || inputs.recoveredAt === undefined) return weight;
  const elapsed = options.now - inputs.recoveredAt;
  if (elapsed >= options.slowstart) return weight;
  return Math.max(1, Math.ceil(weight * Math.max(0, elapsed) / options.slowstart));
}

/**
 * When the slow-start weight should next be recomputed, or undefined when the ramp is
 * over (or there is none). Steps are a twentieth of `slowstart`, at least 100 ms.
 */
export function nextRampAt(
  recoveredAt: number | undefined,
  options: { now: number; slowstart: number },
): number | undefined {
  if (recoveredAt === undefined || options.slowstart <= 0) return undefined;
  const end = recoveredAt + options.slowstart;
  if (options.now >= end) return undefined;
  const step = Math.max(100, options.slowstart / 20);
  return Math.min(end, options.now + step);
}
