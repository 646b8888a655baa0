/**
 * Types shared by every scheduler (kept apart from mod.ts so scheduler modules do not
 * import their own factory).
 * @module
 */
import type { SchedulerName } from "../../config/schema.ts";

/** A real server as a scheduler sees it; the caller owns it and updates the counters. */
export interface SchedDest {
  /** `host:port` (`[v6]:port`), unique in the list. */
  readonly key: string;
  readonly host: string;
  readonly port: number;
  /** Current weight; 0 = quiesced. */
  readonly weight: number;
  /** Established connections. */
  readonly activeConns: number;
  /** Connections in other states (SYN_RECV, FIN_WAIT, TIME_WAIT, UDP, …). */
  readonly inactiveConns: number;
  /** The kernel's IP_VS_DEST_F_OVERLOAD: skip for new connections. */
  readonly overloaded?: boolean;
}

/** An address and port of one side of a connection. */
export interface PickEndpoint {
  /** IPv4 or IPv6 literal; any other string is folded to 32 bits with FNV-1a. */
  readonly address: string;
  readonly port?: number;
}

/** What a scheduler may look at for one new connection. */
export interface PickContext {
  /** The client (source): sh and mh hash it. */
  readonly client?: PickEndpoint;
  /** The address the client asked for (the packet's destination): dh, lblc, lblcr hash it. */
  readonly destination?: PickEndpoint;
  /** Milliseconds (monotonic); lblc and lblcr use it for their caches. */
  readonly now?: number;
}

/** A scheduler bound to one service. */
export interface Scheduler {
  readonly name: SchedulerName;
  /**
   * Gives the destination list, newest first (the kernel's order). Call after every
   * addition, removal or weight change; counters need no update call.
   */
  update(dests: readonly SchedDest[]): void;
  /** Chooses a destination for a new connection, or undefined when none is available. */
  pick(context?: PickContext): SchedDest | undefined;
  /**
   * Periodic housekeeping, to be called every 60 s like the kernel's timer (lblc,
   * lblcr expire cache entries); returns how many entries were removed.
   */
  expire(now: number): number;
  /** Entries in the scheduler's cache (lblc, lblcr), else 0. */
  cacheSize(): number;
}

/** Options of {@link Scheduler} creation. */
export interface SchedulerOptions {
  /** `sh-fallback`, `sh-port`, `mh-fallback`, `mh-port` (ipvsadm `-b`). */
  readonly flags?: readonly string[];
  /** Uniform random 32-bit unsigned integers (twos); defaults to Math.random. */
  readonly random?: () => number;
  /** lblc/lblcr: how long an unused cache entry lives (kernel default 24 h). */
  readonly expiration?: number;
}

/** The kernel's `ip_vs_dest_conn_overhead`: `256 × active + inactive`. */
export function connOverhead(dest: SchedDest): number {
  return dest.activeConns * 256 + dest.inactiveConns;
}

/** Whether the kernel would consider a destination for a new connection at all. */
export function usable(dest: SchedDest): boolean {
  return !dest.overloaded && dest.weight > 0;
}

/** Shared no-op housekeeping for schedulers without caches. */
export const NO_CACHE = {
  expire(_now: number): number {
    return 0;
  },
  cacheSize(): number {
    return 0;
  },
};
