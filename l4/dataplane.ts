/**
 * The one interface both L4 data planes implement: the kernel's IPVS (l4/ipvs/) and
 * the userspace TCP/UDP proxy (l4/proxy/). The L4 subsystem picks one (`dataplane:
 * auto | ipvs | userspace`) and drives it with Models, diffs and server states.
 * @module
 */
import type { Model } from "../config/model.ts";
import type { ModelDiff } from "../config/diff.ts";

/** Cumulative counters, as `ipvsadm -Ln --stats`. */
export interface Counters {
  readonly conns: number;
  readonly inPkts: number;
  readonly outPkts: number;
  readonly inBytes: number;
  readonly outBytes: number;
}

/** Estimated rates over the kernel's 2 s estimator, as `ipvsadm -Ln --rate`. */
export interface Rates {
  readonly cps: number;
  readonly inpps: number;
  readonly outpps: number;
  readonly inbps: number;
  readonly outbps: number;
}

/** One real server of a virtual service as the data plane has it. */
export interface DestView {
  /** `host:port` (`[v6]:port`). */
  readonly address: string;
  readonly forward: "nat" | "dr" | "tun" | "local";
  readonly weight: number;
  readonly activeConns: number;
  readonly inactiveConns: number;
  readonly persistentConns: number;
  readonly stats: Counters;
  readonly rates: Rates;
}

/** One virtual service as the data plane has it (`GET /api/v1/services`). */
export interface ServiceView {
  readonly name: string;
  readonly protocol: "tcp" | "udp" | "sctp";
  /** `host:port`, or undefined for a firewall-mark service. */
  readonly vip?: string;
  readonly fwmark?: number;
  readonly scheduler: string;
  readonly flags: readonly string[];
  readonly persistence?: { readonly timeout: number; readonly netmask: string };
  readonly dests: readonly DestView[];
  readonly stats: Counters;
  readonly rates: Rates;
}

/** A data plane: kernel IPVS or the userspace proxy. */
export interface Dataplane {
  readonly kind: "ipvs" | "userspace";
  /** Programs or opens every service of the Model. */
  start(model: Model): Promise<void>;
  /** Moves to a new Model, touching only what the diff names. */
  apply(model: Model, diff: ModelDiff): Promise<void>;
  /** Tells the plane a server's effective weight or admin state changed. */
  serverChanged(pool: string, address: string): void | Promise<void>;
  /** Closes listeners / removes owned kernel entries as configured. */
  stop(): Promise<void>;
  /** Services with per-destination stats and rates. */
  services(): readonly ServiceView[] | Promise<readonly ServiceView[]>;
  /** Extra status for `/api/v1/status`. */
  status(): Record<string, unknown>;
}
