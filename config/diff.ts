/**
 * What changes between two Models, per subsystem. A reload is plan → diff → apply:
 * each subsystem receives the diff and touches only what it names.
 * @module
 */
import type { Model } from "./model.ts";

/** Names added, removed and changed in one collection. */
export interface Changes {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly string[];
}

/** The servers of one pool that changed (by address text). */
export interface ServerChanges extends Changes {
  readonly pool: string;
}

/** Everything a reload would change. */
export interface ModelDiff {
  readonly admin: boolean;
  readonly log: boolean;
  readonly pools: Changes;
  /** Per pool still present in both Models, the servers that changed. */
  readonly servers: readonly ServerChanges[];
  /** Pools whose check or slowstart changed. */
  readonly checks: readonly string[];
  readonly listeners: Changes;
  readonly services: Changes;
  /** `l4.dataplane`, `l4.defense`, `l4.timeouts`, `l4.sync_daemon`, `foreign_services`. */
  readonly l4Globals: readonly string[];
  readonly instances: Changes;
  readonly syncGroups: boolean;
  readonly vrrpEnabled: boolean;
  /** True when nothing at all changes. */
  readonly empty: boolean;
}

/** JSON with object keys sorted, so equal values compare equal. */
function stable(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, v) =>
      v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
        : v,
  );
}

function compare<T>(
  before: ReadonlyMap<string, T>,
  after: ReadonlyMap<string, T>,
): Changes {
  const added = [...after.keys()].filter((k) => !before.has(k));
  const removed = [...before.keys()].filter((k) => !after.has(k));
  const changed = [...after.keys()].filter((k) =>
    before.has(k) && stable(before.get(k)) !== stable(after.get(k))
  );
  return { added, removed, changed };
}

function byName<T extends { name: string }>(items: readonly T[]): Map<string, T> {
  return new Map(items.map((item) => [item.name, item]));
}

function isEmpty(changes: Changes): boolean {
  return !changes.added.length && !changes.removed.length && !changes.changed.length;
}

/** Computes what moving from `before` to `after` changes. */
export function diff(before: Model, after: Model): ModelDiff {
  const pools = compare(
    new Map(Object.entries(before.pools)),
    new Map(Object.entries(after.pools)),
  );
  const servers: ServerChanges[] = [];
  const checks: string[] = [];
  for (const name of pools.changed) {
    const a = before.pools[name];
    const b = after.pools[name];
    const s = compare(
      new Map(a.servers.map((srv) => [srv.address.text, srv])),
      new Map(b.servers.map((srv) => [srv.address.text, srv])),
    );
    if (!isEmpty(s)) servers.push({ pool: name, ...s });
    if (stable(a.check) !== stable(b.check) || a.slowstart !== b.slowstart) checks.push(name);
  }
  const listeners = compare(byName(before.l7.listeners), byName(after.l7.listeners));
  const services = compare(byName(before.l4.services), byName(after.l4.services));
  const l4Globals =
    (["dataplane", "defense", "timeouts", "sync_daemon", "foreign_services"] as const)
      .filter((key) => stable(before.l4[key]) !== stable(after.l4[key]));
  const instances = compare(byName(before.vrrp.instances), byName(after.vrrp.instances));
  const syncGroups = stable(before.vrrp.sync_groups) !== stable(after.vrrp.sync_groups);
  const vrrpEnabled = before.vrrp.enabled !== after.vrrp.enabled;
  const admin = stable(before.admin) !== stable(after.admin);
  const log = stable(before.log) !== stable(after.log);
  const empty = !admin && !log && isEmpty(pools) && isEmpty(listeners) && isEmpty(services) &&
    !l4Globals.length && isEmpty(instances) && !syncGroups && !vrrpEnabled;
  return {
    admin,
    log,
    pools,
    servers,
    checks,
    listeners,
    services,
    l4Globals,
    instances,
    syncGroups,
    vrrpEnabled,
    empty,
  };
}

/** Human-readable lines describing a diff, for `fulcrum plan` and reload logs. */
export function describeDiff(d: ModelDiff): string[] {
  if (d.empty) return ["no changes"];
  const lines: string[] = [];
  const list = (what: string, c: Changes) => {
    for (const n of c.added) lines.push(`+ ${what} ${n}`);
    for (const n of c.removed) lines.push(`- ${what} ${n}`);
    for (const n of c.changed) lines.push(`~ ${what} ${n}`);
  };
  if (d.admin) lines.push("~ admin");
  if (d.log) lines.push("~ log");
  list("pool", d.pools);
  for (const s of d.servers) list(`server ${s.pool}`, s);
  for (const c of d.checks) lines.push(`~ check of pool ${c}`);
  list("listener", d.listeners);
  list("service", d.services);
  for (const g of d.l4Globals) lines.push(`~ l4.${g}`);
  list("vrrp instance", d.instances);
  if (d.syncGroups) lines.push("~ vrrp.sync_groups");
  if (d.vrrpEnabled) lines.push("~ vrrp.enabled");
  return lines;
}
