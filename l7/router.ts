/**
 * From a parsed request head to a routing decision: the request view rules see, the
 * matched rule, the pool and the server. Pure; shared by the proxy and the explain
 * endpoint so both decide the same way.
 * @module
 */
import { type Head, headerValue } from "./codec.ts";
import type { PoolPick, PoolRuntime, ServerRuntime } from "./pool.ts";
import { type CompiledRule, hashKey, type RequestView, type RuleTable } from "./rules.ts";

/** A request target split into its parts. */
export interface Target {
  /** Path without query, `*` for `OPTIONS *`. */
  readonly path: string;
  readonly query: string;
  /** Authority of an absolute-form target, lowercased. */
  readonly authority?: string;
}

/** Splits an origin-form, absolute-form or asterisk-form target; undefined when invalid. */
export function parseTarget(target: string): Target | undefined {
  let rest = target;
  let authority: string | undefined;
  if (rest === "*") return { path: "*", query: "" };
  // origin-form (`/…`), the usual case, cannot be absolute-form: no regex then
  const abs = rest.charCodeAt(0) === 47 ? null : /^https?:\/\/([^/?#]+)(.*)$/i.exec(rest);
  if (abs) {
    authority = abs[1].toLowerCase();
    rest = abs[2] || "/";
  }
  if (!rest.startsWith("/")) return undefined;
  const hashAt = rest.indexOf("#");
  if (hashAt >= 0) rest = rest.slice(0, hashAt);
  const q = rest.indexOf("?");
  return {
    path: q < 0 ? rest : rest.slice(0, q),
    query: q < 0 ? "" : rest.slice(q + 1),
    authority,
  };
}

/** Lowercases a Host value and drops its port (`[::1]:80` → `[::1]`). */
export function hostOnly(host: string): string {
  const h = host.toLowerCase();
  if (h.startsWith("[")) {
    const close = h.indexOf("]");
    return close < 0 ? h : h.slice(0, close + 1);
  }
  const colon = h.indexOf(":");
  return colon < 0 ? h : h.slice(0, colon);
}

/** The view of a request that rules and hash keys read. */
export function viewOf(head: Head, target: Target): RequestView {
  let host = target.authority;
  if (host === undefined) host = headerValue(head, "host");
  return {
    method: head.method,
    path: target.path,
    query: target.query,
    host: hostOnly(host ?? ""),
    header(lower: string): string | undefined {
      return headerValue(head, lower);
    },
  };
}

/** What routing decided. */
export interface Decision {
  /** The matched rule, or undefined when no rule matches. */
  readonly rule?: CompiledRule;
  /** The rule's pool at run time, or undefined when it does not exist. */
  readonly pool?: PoolRuntime;
  /** The hash key, when the rule hashes. */
  readonly key?: string;
  /** The chosen server, or undefined when none is usable. */
  readonly pick?: PoolPick;
}

/** Options of {@link decide}. */
export interface DecideOptions {
  /** Client address for `hash: source` and the sh/mh schedulers. */
  readonly source?: string;
  /** Servers already tried for this request. */
  readonly exclude?: ReadonlySet<ServerRuntime>;
  /** Skip picking a server (explain for scheduler-balanced rules). */
  readonly noPick?: boolean;
}

/** Matches the rules, finds the pool and picks the server for one request. */
export function decide(
  view: RequestView,
  route: { table: RuleTable; pools: ReadonlyMap<string, PoolRuntime> },
  options: DecideOptions = {},
): Decision {
  const rule = route.table.match(view);
  if (!rule) return {};
  const pool = route.pools.get(rule.pool);
  if (!pool) return { rule };
  const balance = rule.balance;
  const key = balance.hash ? hashKey(balance.hash, view, { source: options.source }) : undefined;
  if (options.noPick && key === undefined) return { rule, pool };
  const pick = pool.pick({
    key,
    scheduler: balance.scheduler,
    loadBound: balance.loadBound,
    exclude: options.exclude,
    client: options.source,
  });
  return { rule, pool, key, pick };
}
