/**
 * The shell around the pure core: reads the kernel's IPVS table, plans the minimum
 * change set against the desired state, applies it (rolling back on failure, so
 * nothing is half-applied), and re-reads to verify. One reconciler per process.
 * @module
 */
import type { Model } from "../../config/model.ts";
import type { Logger } from "../../log.ts";
import type {
  IpvsClient,
  IpvsDaemon,
  IpvsDest,
  IpvsDestEntry,
  IpvsService,
  IpvsServiceEntry,
  IpvsWrite,
  ServiceKey,
} from "../../sys/ipvs.ts";
import { type DesiredService, desiredServices, keyOf, type StateLookup } from "./desired.ts";
import { describeOp, inverse, type Observed, type Op, planChanges } from "./plan.ts";

/** The kernel operations the reconciler uses (an {@link IpvsClient}). */
export type IpvsKernel =
  & Pick<
    IpvsClient,
    | "newService"
    | "setService"
    | "delService"
    | "newDest"
    | "setDest"
    | "delDest"
    | "services"
    | "service"
    | "dests"
    | "newDaemon"
    | "delDaemon"
    | "daemons"
    | "setTimeouts"
    | "timeouts"
  >
  & {
    /** Many changes per system call, when the kernel side offers it ({@link IpvsClient.batch}). */
    batch?(writes: readonly IpvsWrite[]): Promise<(Error | undefined)[]>;
  };

/** A service read from the kernel with its destinations' counters. */
export interface ObservedFull {
  readonly service: IpvsServiceEntry;
  readonly dests: readonly IpvsDestEntry[];
}

/** What one sync did. */
export interface SyncResult {
  readonly ops: readonly Op[];
}

/** Options of {@link Reconciler}. */
export interface ReconcilerOptions {
  readonly log: Logger;
  readonly lookup: StateLookup;
  /** Re-read what changed and check it (default true). */
  readonly verify?: boolean;
}

/** Reads the whole table: every service and its destinations. */
export async function observeAll(kernel: IpvsKernel): Promise<ObservedFull[]> {
  const services = await kernel.services();
  const out: ObservedFull[] = [];
  for (const service of services) out.push({ service, dests: await kernel.dests(service) });
  return out;
}

async function applyOp(kernel: IpvsKernel, op: Op): Promise<void> {
  switch (op.kind) {
    case "newService":
      return await kernel.newService(op.service);
    case "setService":
      return await kernel.setService(op.service);
    case "delService":
      return await kernel.delService(op.before.service);
    case "newDest":
      return await kernel.newDest(op.key, op.dest);
    case "setDest":
      return await kernel.setDest(op.key, op.dest);
    case "delDest":
      return await kernel.delDest(op.key, op.before);
  }
}

function writeOf(op: Op): IpvsWrite {
  switch (op.kind) {
    case "newService":
    case "setService":
      return { kind: op.kind, service: op.service };
    case "delService":
      return { kind: "delService", key: op.before.service };
    case "newDest":
    case "setDest":
      return { kind: op.kind, key: op.key, dest: op.dest };
    case "delDest":
      return { kind: "delDest", key: op.key, dest: op.before };
  }
}

function keyOfOp(op: Op): string {
  switch (op.kind) {
    case "newService":
    case "setService":
      return keyOf(op.service);
    case "delService":
      return keyOf(op.before.service);
    default:
      return keyOf(op.key);
  }
}

function serviceText(key: ServiceKey): string {
  return key.fwmark
    ? `fwmark ${key.fwmark}`
    : `${key.protocol} ${key.family === 6 ? `[${key.address}]` : key.address}:${key.port}`;
}

/** Keeps the kernel's IPVS table equal to config ⊕ health verdicts. */
export class Reconciler {
  readonly #kernel: IpvsKernel;
  readonly #log: Logger;
  readonly #lookup: StateLookup;
  readonly #verifyChanges: boolean;
  readonly #owned = new Set<string>();
  #cache = new Map<string, Observed>();
  #chain: Promise<unknown> = Promise.resolve();
  #desired: DesiredService[] = [];
  /** Counters for status and metrics. */
  readonly counters = { syncs: 0, changes: 0, repairs: 0, rollbacks: 0, failures: 0 };
  lastError: string | undefined;

  constructor(kernel: IpvsKernel, options: ReconcilerOptions) {
    this.#kernel = kernel;
    this.#log = options.log;
    this.#lookup = options.lookup;
    this.#verifyChanges = options.verify ?? true;
  }

  /** The services currently desired (after the last successful sync). */
  get desired(): readonly DesiredService[] {
    return this.#desired;
  }

  /** Keys of kernel services this process owns. */
  get owned(): ReadonlySet<string> {
    return this.#owned;
  }

  /**
   * Brings the kernel to `model`. `full` re-reads the whole table first (start,
   * resync); otherwise the last verified picture is trusted and only changes are sent
   * (a one-weight reload is one message). `only` limits the sync to some service names.
   */
  sync(
    model: Model,
    options: { full?: boolean; only?: ReadonlySet<string>; repair?: boolean } = {},
  ): Promise<SyncResult> {
    const run = this.#chain.then(() => this.#sync(model, options));
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #sync(
    model: Model,
    options: { full?: boolean; only?: ReadonlySet<string>; repair?: boolean },
  ): Promise<SyncResult> {
    this.counters.syncs++;
    let desired: DesiredService[];
    const only = options.only;
    try {
      if (only) {
        // A health change: recompute only the named services, keep the rest as they are.
        const fresh = desiredServices(model, this.#lookup, { only });
        const byName = new Map(fresh.map((d) => [d.name, d]));
        desired = this.#desired.map((d) => byName.get(d.name) ?? d);
        for (const d of fresh) if (!this.#desired.some((x) => x.name === d.name)) desired.push(d);
      } else {
        desired = desiredServices(model, this.#lookup);
      }
    } catch (error) {
      this.lastError = (error as Error).message;
      this.counters.failures++;
      throw error;
    }
    if (options.full || this.#cache.size === 0) {
      const all = await observeAll(this.#kernel);
      this.#cache = new Map(all.map((o) => [keyOf(o.service), o]));
    }
    const scoped = only ? desired.filter((d) => only.has(d.name)) : desired;
    const scopedKeys = new Set(scoped.map((d) => d.key));
    const observed = only
      ? [...this.#cache.entries()].filter(([k]) => scopedKeys.has(k)).map(([, o]) => o)
      : [...this.#cache.values()];
    const ops = planChanges(scoped, observed, {
      owned: this.#owned,
      removeForeign: !only && model.l4.foreign_services === "remove",
    });
    await this.#apply(ops);
    for (const d of desired) this.#owned.add(d.key);
    for (const op of ops) {
      if (op.kind === "delService") this.#owned.delete(keyOf(op.before.service));
    }
    this.#desired = desired;
    if (ops.length) {
      this.counters.changes += ops.length;
      if (options.repair) this.counters.repairs += ops.length;
      for (const op of ops) {
        this.#log.info(options.repair ? "ipvs repair" : "ipvs change", { op: describeOp(op) });
      }
      if (this.#verifyChanges) await this.#verify(scoped, ops);
      else this.#cache.clear();
    }
    this.lastError = undefined;
    return { ops };
  }

  async #apply(ops: readonly Op[]): Promise<void> {
    const done: Op[] = [];
    let failed: { op: Op; error: Error } | undefined;
    if (this.#kernel.batch && ops.length > 1) {
      const results = await this.#kernel.batch(ops.map(writeOf));
      results.forEach((r, i) => {
        if (!r) done.push(ops[i]);
        else if (!failed) failed = { op: ops[i], error: r };
      });
    } else {
      for (const op of ops) {
        try {
          await applyOp(this.#kernel, op);
          done.push(op);
        } catch (error) {
          failed = { op, error: error as Error };
          break;
        }
      }
    }
    if (!failed) return;
    this.counters.failures++;
    const undo = done.reverse().flatMap(inverse);
    let clean = true;
    if (undo.length) {
      this.counters.rollbacks++;
      const results = this.#kernel.batch
        ? await this.#kernel.batch(undo.map(writeOf))
        : await this.#undoEach(undo);
      results.forEach((r, i) => {
        if (!r) return;
        clean = false;
        this.#log.error("ipvs rollback failed", { op: describeOp(undo[i]), error: String(r) });
      });
    }
    this.#cache.clear();
    const op = failed.op;
    const svc = op.kind === "delService"
      ? op.before.service
      : op.kind === "newService" || op.kind === "setService"
      ? op.service
      : op.key;
    const message = `l4 service "${op.name}" (${serviceText(svc)}): ${failed.error.message}; ${
      clean ? "nothing was changed" : "the rollback was incomplete, see the log"
    }`;
    this.lastError = message;
    throw new Error(message);
  }

  async #undoEach(undo: readonly Op[]): Promise<(Error | undefined)[]> {
    const out: (Error | undefined)[] = [];
    for (const u of undo) {
      try {
        await applyOp(this.#kernel, u);
        out.push(undefined);
      } catch (error) {
        out.push(error as Error);
      }
    }
    return out;
  }

  /** Re-reads the services the ops touched and checks the plan is now empty. */
  async #verify(scoped: readonly DesiredService[], ops: readonly Op[]): Promise<void> {
    const touched = new Set(ops.map(keyOfOp));
    if (touched.size > 32) {
      // Cheaper as one pass: a dump of services, then one of each service's dests.
      const all = await observeAll(this.#kernel);
      this.#cache = new Map(all.map((o) => [keyOf(o.service), o]));
    } else {
      await this.#reread(touched, ops);
    }
    const again = planChanges(
      scoped.filter((d) => touched.has(d.key)),
      [...this.#cache.entries()].filter(([k]) => touched.has(k)).map(([, o]) => o),
      { owned: new Set(), removeForeign: false },
    );
    if (again.length) {
      const message = `the kernel did not take ${again.length} change(s) (${
        again.map(describeOp).join("; ")
      }); check dmesg for IPVS errors`;
      this.lastError = message;
      throw new Error(message);
    }
  }

  async #reread(touched: ReadonlySet<string>, ops: readonly Op[]): Promise<void> {
    for (const key of touched) {
      const sample = ops.find((op) => keyOfOp(op) === key)!;
      const svcKey = sample.kind === "delService"
        ? sample.before.service
        : sample.kind === "newService" || sample.kind === "setService"
        ? sample.service
        : sample.key;
      const service = await this.#kernel.service(svcKey);
      if (!service) {
        this.#cache.delete(key);
        continue;
      }
      this.#cache.set(key, { service, dests: await this.#kernel.dests(svcKey) });
    }
  }

  /** Removes every service this process owns (on stop). */
  async removeOwned(): Promise<void> {
    await this.#chain;
    for (const key of [...this.#owned]) {
      const o = this.#cache.get(key);
      const d = this.#desired.find((x) => x.key === key);
      const svc: IpvsService | undefined = o?.service ?? d?.service;
      if (!svc) continue;
      try {
        await this.#kernel.delService(svc);
      } catch (error) {
        this.#log.warn("ipvs remove on stop failed", {
          service: serviceText(svc),
          error: String(error),
        });
      }
      this.#owned.delete(key);
      this.#cache.delete(key);
    }
  }

  /** Makes the sync daemon match `want` (or stops ours when undefined). */
  async syncDaemon(want: IpvsDaemon | undefined): Promise<string[]> {
    const running = await this.#kernel.daemons();
    const actions: string[] = [];
    for (const d of running) {
      const keep = want && d.state === want.state && d.interface === want.interface &&
        d.syncId === want.syncId;
      if (!keep) {
        await this.#kernel.delDaemon(d.state);
        actions.push(`stop ${d.state}`);
      }
    }
    if (
      want &&
      !running.some((d) =>
        d.state === want.state && d.interface === want.interface && d.syncId === want.syncId
      )
    ) {
      await this.#kernel.newDaemon(want);
      actions.push(`start ${want.state} on ${want.interface} sync id ${want.syncId}`);
    }
    return actions;
  }

  /** Sets connection timeouts (seconds) when they differ; returns true when it changed them. */
  async syncTimeouts(want: { tcp: number; tcpFin: number; udp: number }): Promise<boolean> {
    const have = await this.#kernel.timeouts();
    if (have.tcp === want.tcp && have.tcpFin === want.tcpFin && have.udp === want.udp) return false;
    await this.#kernel.setTimeouts(want);
    return true;
  }
}

/** A destination's stats-free settings (for comparisons in tests). */
export function destSettings(d: IpvsDest): IpvsDest {
  const { family, address, port, forward, weight, upperThreshold, lowerThreshold, tunnel } = d;
  return {
    family,
    address,
    port,
    forward,
    weight,
    upperThreshold,
    lowerThreshold,
    ...(tunnel ? { tunnel } : {}),
  };
}
