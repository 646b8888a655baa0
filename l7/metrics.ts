/**
 * The switch's counters: requests by listener, rule, pool, server and status class;
 * latency histograms per listener and pool; rejected requests by reason; in-flight
 * and open-connection gauges. Rendered as Prometheus text.
 * @module
 */
import { family, Histogram, type Sample } from "../admin/prom.ts";

/** One finished request, as counted. */
export interface RequestRecord {
  readonly listener: string;
  /** Rule index as text, or "-" when no rule was reached. */
  readonly rule: string;
  /** Pool name, or "-". */
  readonly pool: string;
  /** Server address, or "-". */
  readonly server: string;
  readonly status: number;
  /** Seconds from the request head to the end of the response. */
  readonly seconds: number;
}

/** Counters of every listener, fed by the proxy shell. */
export class L7Metrics {
  #requests = new Map<string, number>();
  #latency = new Map<string, Histogram>();
  /** The same histograms by listener, then pool. */
  #histograms = new Map<string, Map<string, Histogram>>();
  /** Keys of `#requests` by listener, rule, pool, server, then status class. */
  #keys = new Map<string, Map<string, Map<string, Map<string, string[]>>>>();
  #rejects = new Map<string, number>();
  #inflight = new Map<string, number>();
  #connections = new Map<string, number>();

  /** Counts a finished request. */
  request(r: RequestRecord): void {
    const cls = Math.floor(r.status / 100);
    // the key strings are looked up, not built, per request (no garbage on the hot path)
    let byRule = this.#keys.get(r.listener);
    if (!byRule) this.#keys.set(r.listener, byRule = new Map());
    let byPool = byRule.get(r.rule);
    if (!byPool) byRule.set(r.rule, byPool = new Map());
    let byServer = byPool.get(r.pool);
    if (!byServer) byPool.set(r.pool, byServer = new Map());
    let keys = byServer.get(r.server);
    if (!keys) byServer.set(r.server, keys = []);
    let key = keys[cls];
    if (key === undefined) {
      key = keys[cls] = [r.listener, r.rule, r.pool, r.server, `${cls}xx`].join("\u0000");
    }
    this.#requests.set(key, (this.#requests.get(key) ?? 0) + 1);
    let hists = this.#histograms.get(r.listener);
    if (!hists) this.#histograms.set(r.listener, hists = new Map());
    let h = hists.get(r.pool);
    if (!h) {
      hists.set(r.pool, h = new Histogram());
      this.#latency.set(`${r.listener}\u0000${r.pool}`, h);
    }
    h.observe(r.seconds);
  }

  /** Counts a request rejected or failed for `reason` (`smuggling`, `timeout`, …). */
  reject(listener: string, reason: string): void {
    const key = `${listener}\u0000${reason}`;
    this.#rejects.set(key, (this.#rejects.get(key) ?? 0) + 1);
  }

  /** Adds `delta` to a listener's in-flight requests. */
  inflight(listener: string, delta: number): void {
    this.#inflight.set(listener, (this.#inflight.get(listener) ?? 0) + delta);
  }

  /** Adds `delta` to a listener's open client connections. */
  connections(listener: string, delta: number): void {
    this.#connections.set(listener, (this.#connections.get(listener) ?? 0) + delta);
  }

  /** Requests counted for a listener (all rules, pools, statuses); for status and tests. */
  total(listener: string, statusClass?: string): number {
    let n = 0;
    for (const [key, value] of this.#requests) {
      const parts = key.split("\u0000");
      if (parts[0] === listener && (!statusClass || parts[4] === statusClass)) n += value;
    }
    return n;
  }

  /** Rejections counted for a listener and reason. */
  rejected(listener: string, reason: string): number {
    return this.#rejects.get(`${listener}\u0000${reason}`) ?? 0;
  }

  /** Prometheus exposition text; `servers` adds per-server in-flight gauges. */
  render(servers: readonly { pool: string; server: string; inflight: number }[] = []): string {
    const requests: Sample[] = [...this.#requests].map(([key, value]) => {
      const [listener, rule, pool, server, code] = key.split("\u0000");
      return { labels: { listener, rule, pool, server, code }, value };
    });
    const latency: Sample[] = [];
    for (const [key, h] of this.#latency) {
      const [listener, pool] = key.split("\u0000");
      latency.push(...h.samples({ listener, pool }));
    }
    const rejects: Sample[] = [...this.#rejects].map(([key, value]) => {
      const [listener, reason] = key.split("\u0000");
      return { labels: { listener, reason }, value };
    });
    return [
      family("fulcrum_l7_requests_total", "counter", {
        help: "HTTP requests answered, by listener, rule index, pool, server and status class.",
        samples: requests,
      }),
      family("fulcrum_l7_request_duration_seconds", "histogram", {
        help: "Time from the request head to the end of the response.",
        samples: latency,
      }),
      family("fulcrum_l7_rejected_total", "counter", {
        help: "Requests rejected or failed before a response from a server, by reason.",
        samples: rejects,
      }),
      family("fulcrum_l7_inflight_requests", "gauge", {
        help: "Requests being proxied now, by listener.",
        samples: [...this.#inflight].map(([listener, value]) => ({ labels: { listener }, value })),
      }),
      family("fulcrum_l7_server_inflight_requests", "gauge", {
        help: "Requests in flight to each server (the load the hash bound sees).",
        samples: servers.map((s) => ({
          labels: { pool: s.pool, server: s.server },
          value: s.inflight,
        })),
      }),
      family("fulcrum_l7_client_connections", "gauge", {
        help: "Open client connections, by listener.",
        samples: [...this.#connections].map(([listener, value]) => ({
          labels: { listener },
          value,
        })),
      }),
    ].join("");
  }
}
