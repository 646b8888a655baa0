/**
 * The VRRP state machine of RFC 5798 §6.4 (and RFC 3768 for v2) as a pure function:
 * `step(state, event, now) → { state, actions }`. Time is an injected number of
 * milliseconds; the shell owns sockets and timers and performs the actions.
 *
 * Beyond the RFC, as keepalived does: FAULT (a tracked interface or pool is down),
 * preempt_delay, priority adjusted by tracking weights, forced transitions from a
 * sync group, and an operator's step down / rejoin.
 * @module
 */
import { ipBytes } from "../config/address.ts";
import type { Role } from "./role.ts";

/** What the machine needs to know of its instance's configuration. */
export interface MachineConfig {
  readonly version: 2 | 3;
  /** Configured priority (255 when the instance owns the addresses). */
  readonly priority: number;
  /** Our Advertisement_Interval in ms. */
  readonly intervalMs: number;
  readonly preempt: boolean;
  /** Wait this long (ms) after startup before preempting a lower-priority master. */
  readonly preemptDelayMs: number;
  /** Our primary address on the interface (ties go to the higher one). */
  readonly primary: string;
}

/** The machine's state; treat it as immutable. */
export interface MachineState {
  readonly config: MachineConfig;
  readonly role: Role;
  /** Priority in use now: configured, adjusted by tracking weights. */
  readonly priority: number;
  /** The master's advertised interval (v3), or ours. */
  readonly masterIntervalMs: number;
  /** The master's address as last heard (our own when we are master). */
  readonly master?: string;
  readonly masterPriority?: number;
  /** Backup: when the master is declared down. */
  readonly downAt?: number;
  /** Master: when the next advertisement is due. */
  readonly advertAt?: number;
  /** Backup: preemption of a lower-priority master is allowed from this time. */
  readonly preemptAt?: number;
  /** Fault conditions in force (tracked interface or pool names). */
  readonly faults: readonly string[];
  /** Stepped down by an operator: stays backup until rejoin. */
  readonly held: boolean;
  readonly since: number;
  readonly reason: string;
}

/** Inputs to the machine. */
export type MachineEvent =
  | { readonly kind: "startup" }
  | { readonly kind: "shutdown" }
  | {
    readonly kind: "advert";
    readonly from: string;
    readonly priority: number;
    readonly intervalMs: number;
  }
  /** A deadline (`downAt` or `advertAt`) has passed. */
  | { readonly kind: "timer" }
  /** Tracking changed the effective priority. */
  | { readonly kind: "priority"; readonly priority: number }
  /** A fault condition started (`on`) or ended. */
  | { readonly kind: "fault"; readonly what: string; readonly on: boolean }
  | { readonly kind: "stepdown" }
  | { readonly kind: "rejoin" }
  /** A sync group peer moved to `role`: follow it. */
  | { readonly kind: "sync"; readonly role: "master" | "backup" | "fault"; readonly group: string };

/** Outputs of the machine, to be performed in order. */
export type Action =
  /** Send an advertisement with this priority (0 = release). */
  | { readonly kind: "send"; readonly priority: number }
  | { readonly kind: "addVips" }
  | { readonly kind: "removeVips" }
  /** Gratuitous ARP / unsolicited NA for the VIPs. */
  | { readonly kind: "garp" }
  /** The role changed: publish it and run the notify hook. */
  | {
    readonly kind: "role";
    readonly role: Role;
    readonly previous: Role;
    readonly reason: string;
  };

/** The result of one step. */
export interface StepResult {
  readonly state: MachineState;
  readonly actions: readonly Action[];
}

/** The protocol version and the master's advertisement interval (ms). */
export interface TimingOptions {
  readonly version: 2 | 3;
  readonly intervalMs: number;
}

/** Skew_Time in ms for `priority` (RFC 3768 for v2, RFC 5798 for v3). */
export function skewMs(priority: number, options: TimingOptions): number {
  return options.version === 2
    ? ((256 - priority) * 1000) / 256
    : ((256 - priority) * options.intervalMs) / 256;
}

/** Master_Down_Interval in ms: three intervals plus the skew. */
export function masterDownMs(priority: number, options: TimingOptions): number {
  return 3 * options.intervalMs + skewMs(priority, options);
}

function timing(state: MachineState, intervalMs = state.masterIntervalMs): TimingOptions {
  return { version: state.config.version, intervalMs };
}

/** The machine before startup. */
export function initial(config: MachineConfig, now: number): MachineState {
  return {
    config,
    role: "init",
    priority: config.priority,
    masterIntervalMs: config.intervalMs,
    faults: [],
    held: false,
    since: now,
    reason: "not started",
  };
}

/** The next time the shell must call `step` with a timer event, if any. */
export function nextDeadline(state: MachineState): number | undefined {
  if (state.role === "master") return state.advertAt;
  if (state.role === "backup") return state.downAt;
  return undefined;
}

/** Compares two addresses as numbers: positive when `a` is higher. */
export function compareAddresses(a: string, b: string): number {
  const x = ipBytes(a);
  const y = ipBytes(b);
  if (x.length !== y.length) return x.length - y.length;
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return 0;
}

function transition(
  state: MachineState,
  role: Role,
  now: number,
  reason: string,
  patch: Partial<MachineState>,
): { state: MachineState; action?: Action } {
  const next: MachineState = {
    ...state,
    ...patch,
    role,
    since: role === state.role ? state.since : now,
    reason: role === state.role ? state.reason : reason,
  };
  if (role === state.role) return { state: next };
  return { state: next, action: { kind: "role", role, previous: state.role, reason } };
}

function becomeMaster(state: MachineState, now: number, reason: string): StepResult {
  const t = transition(state, "master", now, reason, {
    advertAt: now + state.config.intervalMs,
    downAt: undefined,
    master: state.config.primary,
    masterPriority: state.priority,
  });
  return {
    state: t.state,
    actions: [
      { kind: "send", priority: state.priority },
      { kind: "addVips" },
      { kind: "garp" },
      t.action!,
    ],
  };
}

function becomeBackup(
  state: MachineState,
  now: number,
  reason: string,
  patch: Partial<MachineState> = {},
): StepResult {
  const wasMaster = state.role === "master";
  const interval = patch.masterIntervalMs ?? state.masterIntervalMs;
  const t = transition(state, "backup", now, reason, {
    advertAt: undefined,
    downAt: now + masterDownMs(state.priority, timing(state, interval)),
    preemptAt: state.role === "backup" ? state.preemptAt : now + state.config.preemptDelayMs,
    ...patch,
  });
  const actions: Action[] = wasMaster ? [{ kind: "removeVips" }] : [];
  if (t.action) actions.push(t.action);
  return { state: t.state, actions };
}

function becomeFault(state: MachineState, now: number, reason: string): StepResult {
  const actions: Action[] = [];
  if (state.role === "master") actions.push({ kind: "send", priority: 0 }, { kind: "removeVips" });
  const t = transition(state, "fault", now, reason, { advertAt: undefined, downAt: undefined });
  if (t.action) actions.push(t.action);
  return { state: t.state, actions };
}

/** Leaves INIT or FAULT: owner goes straight to master, everyone else to backup. */
function start(state: MachineState, now: number, reason: string): StepResult {
  if (state.faults.length) return becomeFault(state, now, `fault: ${state.faults.join(", ")}`);
  if (state.priority === 255 && !state.held) {
    return becomeMaster(state, now, `${reason}, address owner`);
  }
  return becomeBackup(state, now, reason, {
    masterIntervalMs: state.config.intervalMs,
    preemptAt: now + state.config.preemptDelayMs,
  });
}

/** Whether an advert from `from` with `priority` beats us. */
function beatsUs(state: MachineState, from: string, priority: number): boolean {
  if (priority !== state.priority) return priority > state.priority;
  return compareAddresses(from, state.config.primary) > 0;
}

/** Feeds one event to the machine at time `now` (ms). */
export function step(state: MachineState, event: MachineEvent, now: number): StepResult {
  const same = { state, actions: [] as Action[] };
  switch (event.kind) {
    case "startup":
      if (state.role !== "init") return same;
      return start(state, now, "startup");

    case "shutdown": {
      const actions: Action[] = state.role === "master"
        ? [{ kind: "send", priority: 0 }, { kind: "removeVips" }]
        : [];
      const t = transition(state, "init", now, "shutdown", {
        advertAt: undefined,
        downAt: undefined,
      });
      if (t.action) actions.push(t.action);
      return { state: t.state, actions };
    }

    case "timer":
      if (state.role === "master" && state.advertAt !== undefined && now >= state.advertAt) {
        return {
          state: { ...state, advertAt: now + state.config.intervalMs },
          actions: [{ kind: "send", priority: state.priority }],
        };
      }
      if (
        state.role === "backup" && state.downAt !== undefined && now >= state.downAt && !state.held
      ) {
        const silent = state.masterPriority === 0 ? "master released" : "master down";
        return becomeMaster(
          state,
          now,
          state.master ? `${silent} (${state.master})` : "no master heard",
        );
      }
      return same;

    case "advert":
      return onAdvert(state, event, now);

    case "priority": {
      const priority = state.config.priority === 255 ? 255 : event.priority;
      if (priority === state.priority) return same;
      const next = { ...state, priority };
      if (state.role === "backup" && state.downAt !== undefined && state.masterPriority !== 0) {
        // keep the deadline relative to the last advert heard; only the skew changes
        const oldMdi = masterDownMs(state.priority, timing(state));
        const newMdi = masterDownMs(priority, timing(state));
        return { state: { ...next, downAt: state.downAt - oldMdi + newMdi }, actions: [] };
      }
      if (state.role === "master") {
        return { state: next, actions: [{ kind: "send", priority }] };
      }
      return { state: next, actions: [] };
    }

    case "fault": {
      const faults = event.on
        ? [...new Set([...state.faults, event.what])]
        : state.faults.filter((f) => f !== event.what);
      const next = { ...state, faults };
      if (state.role === "init") return { state: next, actions: [] };
      if (faults.length && state.role !== "fault") {
        return becomeFault(next, now, `fault: ${faults.join(", ")}`);
      }
      if (!faults.length && state.role === "fault") {
        return start(next, now, `${event.what} recovered`);
      }
      return { state: next, actions: [] };
    }

    case "stepdown": {
      const next = { ...state, held: true };
      if (state.role === "master") {
        const r = becomeBackup(next, now, "operator step down", { masterPriority: undefined });
        return {
          state: { ...r.state, downAt: undefined },
          actions: [{ kind: "send", priority: 0 }, ...r.actions],
        };
      }
      if (state.role === "backup") return { state: { ...next, downAt: undefined }, actions: [] };
      return { state: next, actions: [] };
    }

    case "rejoin": {
      if (!state.held) return same;
      const next = { ...state, held: false };
      if (state.role === "backup") {
        if (next.priority === 255) return becomeMaster(next, now, "operator rejoin, address owner");
        return {
          state: {
            ...next,
            downAt: now + masterDownMs(next.priority, timing(next)),
            reason: "operator rejoin",
          },
          actions: [],
        };
      }
      return { state: next, actions: [] };
    }

    case "sync":
      return onSync(state, event.role, event.group, now);
  }
}

function onSync(
  state: MachineState,
  role: "master" | "backup" | "fault",
  group: string,
  now: number,
): StepResult {
  const same = { state, actions: [] as Action[] };
  const why = `sync group ${group}`;
  if (state.role === "init") return same;
  if (role === "fault") {
    return state.role === "fault" ? same : becomeFault(state, now, `${why} fault`);
  }
  if (state.faults.length) return same;
  if (role === "master") {
    if (state.role === "master" || state.held) return same;
    return becomeMaster(state, now, `${why} master`);
  }
  if (state.role === "backup") return same;
  return becomeBackup(state, now, `${why} backup`);
}

function onAdvert(
  state: MachineState,
  event: { from: string; priority: number; intervalMs: number },
  now: number,
): StepResult {
  const same = { state, actions: [] as Action[] };
  const v3 = state.config.version === 3;
  if (state.role === "init" || state.role === "fault") return same;
  if (state.role === "backup") {
    if (event.priority === 0) {
      // the master released: take over after Skew_Time
      if (state.held) {
        return { state: { ...state, master: event.from, masterPriority: 0 }, actions: [] };
      }
      return {
        state: {
          ...state,
          master: event.from,
          masterPriority: 0,
          downAt: now + skewMs(state.priority, timing(state)),
        },
        actions: [],
      };
    }
    const lower = !beatsUs(state, event.from, event.priority);
    const mayPreempt = state.config.preempt && now >= (state.preemptAt ?? now);
    if (lower && mayPreempt) return same; // discard: our down timer runs out, we preempt
    const masterIntervalMs = v3 ? event.intervalMs : state.masterIntervalMs;
    return {
      state: {
        ...state,
        master: event.from,
        masterPriority: event.priority,
        masterIntervalMs,
        downAt: state.held
          ? undefined
          : now + masterDownMs(state.priority, timing(state, masterIntervalMs)),
      },
      actions: [],
    };
  }
  // master
  if (event.priority === 0) {
    return {
      state: { ...state, advertAt: now + state.config.intervalMs },
      actions: [{ kind: "send", priority: state.priority }],
    };
  }
  if (beatsUs(state, event.from, event.priority)) {
    return becomeBackup(
      state,
      now,
      `higher priority master ${event.from} (${event.priority} vs ${state.priority})`,
      {
        master: event.from,
        masterPriority: event.priority,
        masterIntervalMs: v3 ? event.intervalMs : state.masterIntervalMs,
        preemptAt: now + state.config.preemptDelayMs,
      },
    );
  }
  // a lower-priority router thinks it is master (split brain, or it declared us dead
  // during a stall): assert ourselves at once and re-announce the VIPs, since its
  // gratuitous ARPs may have pointed the LAN at it
  return {
    state: { ...state, advertAt: now + state.config.intervalMs },
    actions: [{ kind: "send", priority: state.priority }, { kind: "garp" }],
  };
}
