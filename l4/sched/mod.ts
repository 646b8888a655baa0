/**
 * The schedulers of the kernel's IPVS, written again for userspace: one interface used
 * by the userspace L4 proxy, the L7 switch (for pools balanced with `scheduler:`) and
 * the IPVS model (which only passes the name to the kernel).
 *
 * Semantics are the kernel's (net/netfilter/ipvs/ip_vs_*.c): a destination's cost is
 * `256 × active + inactive`, comparisons are strict, and ties go to the earlier entry
 * of the destination list, which the kernel keeps newest-first. Weight 0 means
 * quiesced: no new connections. A destination flagged `overloaded` (the kernel's
 * IP_VS_DEST_F_OVERLOAD, see {@link updateOverload}) is skipped.
 *
 * ```ts
 * const sched = createScheduler("wlc");
 * sched.update(dests);            // newest first; again after any add, removal or weight change
 * const dest = sched.pick({ client: { address: "10.0.0.7", port: 40000 } });
 * ```
 * @module
 */
import type { SchedulerName } from "../../config/schema.ts";
import { SCHEDULERS } from "../../config/schedulers.ts";
import { createLeastConnection } from "./least.ts";
import { createRoundRobin, createWeightedRoundRobin } from "./round_robin.ts";
import { createDestinationHash, createMaglev, createSourceHash } from "./hash.ts";
import { createLocality, createLocalityReplicated } from "./locality.ts";
import type { PickContext, SchedDest, Scheduler, SchedulerOptions } from "./types.ts";

export type { PickContext, PickEndpoint, SchedDest, Scheduler, SchedulerOptions } from "./types.ts";
export { connOverhead } from "./types.ts";

/**
 * Creates a scheduler by its IPVS name. Call `update(dests)` with the destination list
 * (newest first) before the first `pick`, and again whenever a destination is added,
 * removed or its weight changes (the kernel's add_dest/del_dest/upd_dest); live
 * counters (`activeConns`, `inactiveConns`, `overloaded`) are read at each pick.
 */
export function createScheduler(name: SchedulerName, options: SchedulerOptions = {}): Scheduler {
  switch (name) {
    case "rr":
      return createRoundRobin();
    case "wrr":
      return createWeightedRoundRobin();
    case "lc":
    case "wlc":
    case "sed":
    case "nq":
    case "fo":
    case "ovf":
    case "twos":
      return createLeastConnection(name, options);
    case "dh":
      return createDestinationHash();
    case "sh":
      return createSourceHash(options);
    case "mh":
      return createMaglev(options);
    case "lblc":
      return createLocality(options);
    case "lblcr":
      return createLocalityReplicated(options);
  }
  throw new Error(`unknown scheduler "${name}"; use one of ${SCHEDULERS.join(" ")}`);
}

/** A destination the caller owns and mutates: counters, weight and overload flag. */
export class Dest implements SchedDest {
  /** `host:port` (`[v6]:port`). */
  readonly key: string;
  readonly host: string;
  readonly port: number;
  weight: number;
  activeConns = 0;
  inactiveConns = 0;
  overloaded = false;

  /** A destination with no connections yet. */
  constructor(host: string, port: number, weight = 1) {
    this.host = host;
    this.port = port;
    this.weight = weight;
    this.key = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
  }
}

/** Connection thresholds of one destination (ipvsadm `-x` upper, `-y` lower). */
export interface Thresholds {
  readonly upper: number;
  readonly lower: number;
}

/**
 * Sets or clears a destination's overload flag the way the kernel does when a
 * connection is bound to it (`bound: true`) or unbound: set once active + inactive
 * reaches the upper threshold; cleared below the lower threshold, or below 3/4 of the
 * upper one when no lower threshold is set, or at once when neither is set.
 */
export function updateOverload(
  dest: { overloaded: boolean; activeConns: number; inactiveConns: number },
  limits: Thresholds,
  options: { bound: boolean },
): void {
  const total = dest.activeConns + dest.inactiveConns;
  if (options.bound) {
    if (limits.upper !== 0 && total >= limits.upper) dest.overloaded = true;
    return;
  }
  if (limits.lower !== 0) {
    if (total < limits.lower) dest.overloaded = false;
  } else if (limits.upper !== 0) {
    if (total * 4 < limits.upper * 3) dest.overloaded = false;
  } else {
    dest.overloaded = false;
  }
}

/**
 * The kernel's order of a service's destinations when they are added one by one in
 * `configured` order: newest first.
 */
export function kernelOrder<T>(configured: readonly T[]): T[] {
  return [...configured].reverse();
}

/** Picks with `sched` as if `dests` were the list now; a convenience for one-shot use. */
export function pickOnce(
  sched: Scheduler,
  dests: readonly SchedDest[],
  context: PickContext = {},
): SchedDest | undefined {
  sched.update(dests);
  return sched.pick(context);
}
