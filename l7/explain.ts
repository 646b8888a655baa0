/**
 * Explains a routing decision for the admin API: which rule matched (index and
 * text), the pool, the hash key and its ring position, the chosen server, and
 * whether the load bound diverted the request and from whom. Pure.
 * @module
 */
import type { Head } from "./codec.ts";
import type { RouteState } from "./proxy.ts";
import { decide, parseTarget, viewOf } from "./router.ts";

/** What the caller asks about. */
export interface ExplainQuery {
  /** A path (`/a.jpg?x=1`) or an absolute URL (`http://host/a.jpg`). */
  readonly url: string;
  readonly method?: string;
  readonly host?: string;
  /** Client address, for `hash: source`. */
  readonly source?: string;
  /** Extra request headers (lowercase names), for header/cookie rules. */
  readonly headers?: Readonly<Record<string, string>>;
}

/** The answer of `GET /api/v1/route`. */
export interface Explanation {
  readonly listener: string;
  readonly request: { method: string; host: string; path: string; query: string };
  readonly rule: { index: number; text: string } | null;
  readonly pool: string | null;
  readonly balance: { hash: string | null; scheduler: string | null; load_bound: number } | null;
  readonly key: string | null;
  readonly server: string | null;
  readonly ring: {
    hash: number;
    position: number;
    points: number;
    home: string;
    diverted: boolean;
    diverted_from: string | null;
  } | null;
  /** Servers taking new requests now, with their in-flight counts. */
  readonly usable: readonly { address: string; weight: number; inflight: number }[];
  /** Why no server was chosen, when none was. */
  readonly reason: string | null;
}

/** Explains how `state` routes the request described by `query`; a string when invalid. */
export function explain(state: RouteState, query: ExplainQuery): Explanation | string {
  let url = query.url;
  if (!url) return "url is required, e.g. ?url=/images/a.jpg";
  if (!url.startsWith("/") && !/^https?:\/\//i.test(url)) url = `/${url}`;
  const target = parseTarget(url);
  if (!target) return `"${query.url}" is not a path or http URL`;
  const headers: [string, string][] = Object.entries(query.headers ?? {});
  const host = query.host ?? target.authority ?? query.headers?.host ?? "";
  if (!headers.some(([n]) => n.toLowerCase() === "host")) headers.push(["host", host]);
  const head: Head = {
    method: (query.method ?? "GET").toUpperCase(),
    target: url,
    status: 0,
    reason: "",
    version: "HTTP/1.1",
    headers,
    length: 0,
  };
  const view = viewOf(head, target);
  const d = decide(view, state, { source: query.source ?? "127.0.0.1", noPick: true });
  const base = {
    listener: state.config.name,
    request: { method: view.method, host: view.host, path: view.path, query: view.query },
  };
  if (!d.rule) {
    return {
      ...base,
      rule: null,
      pool: null,
      balance: null,
      key: null,
      server: null,
      ring: null,
      usable: [],
      reason: "no rule matches; the listener answers 404",
    };
  }
  const b = d.rule.balance;
  const usable = d.pool?.usable.map((s) => ({
    address: s.address,
    weight: s.weight,
    inflight: s.inflight,
  })) ?? [];
  const pick = d.pick;
  let reason: string | null = null;
  if (!d.pool) reason = `pool ${d.rule.pool} does not exist; the listener answers 503`;
  else if (!pick && b.hash) reason = `no server of pool ${d.pool.name} is available; 503`;
  else if (!pick) reason = `scheduler ${b.scheduler} picks a server per request`;
  return {
    ...base,
    rule: { index: d.rule.index, text: d.rule.text },
    pool: d.rule.pool,
    balance: { hash: b.hash ?? null, scheduler: b.scheduler ?? null, load_bound: b.loadBound },
    key: d.key ?? null,
    server: pick?.server.address ?? null,
    ring: pick && pick.hash !== undefined && d.pool
      ? {
        hash: pick.hash,
        position: pick.position ?? 0,
        points: d.pool.ring.positions.length,
        home: pick.home?.address ?? pick.server.address,
        diverted: pick.diverted,
        diverted_from: pick.diverted ? pick.home?.address ?? null : null,
      }
      : null,
    usable,
    reason,
  };
}
