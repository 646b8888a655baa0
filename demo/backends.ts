/**
 * Demo backends: one small HTTP server per loopback server of each pool. Each answers
 * with `x-served-by: <pool>-<n>` and keeps an LRU "cache" of URLs it has served,
 * reporting `x-cache: HIT|MISS`, so the L7 switch's cache locality is visible.
 * `GET /healthz` answers 200; `POST /_demo/stop?for=30s` closes the listener for a
 * while so health checks can be watched marking it down and up again.
 * @module
 */
import { isLoopback } from "../config/address.ts";
import { parseDuration } from "../config/duration.ts";
import type { Model } from "../config/model.ts";
import { Lru } from "./lru.ts";

/** One running demo backend. */
export interface DemoBackend {
  readonly name: string;
  readonly address: string;
  /** Requests served and cache hits so far. */
  readonly counts: { requests: number; hits: number };
  /** True while the listener is open. */
  readonly listening: boolean;
  /** Closes the listener (connections are refused) until {@link start}. */
  stop(): Promise<void>;
  /** Opens the listener again. */
  start(): void;
}

/** The demo backends of a Model, with a way to stop them all. */
export interface DemoBackends {
  readonly backends: readonly DemoBackend[];
  close(): Promise<void>;
}

/** Options of {@link startDemoBackends}. */
export interface DemoOptions {
  /** URLs each backend's cache holds (default 1000). */
  cacheSize?: number;
}

function createBackend(
  name: string,
  host: string,
  port: number,
  options: DemoOptions,
): DemoBackend {
  const cache = new Lru(options.cacheSize ?? 1000);
  const counts = { requests: 0, hits: 0 };
  let server: Deno.HttpServer | undefined;
  let reopen: ReturnType<typeof setTimeout> | undefined;
  const address = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;

  const handler = async (req: Request): Promise<Response> => {
    const url = new URL(req.url);
    const headers = new Headers({ "x-served-by": name });
    if (url.pathname === "/healthz") return new Response("ok\n", { headers });
    if (url.pathname === "/_demo/stop" && req.method === "POST") {
      const ms = parseDuration(url.searchParams.get("for") ?? "30s") ?? 30_000;
      queueMicrotask(async () => {
        await backend.stop();
        reopen = setTimeout(() => backend.start(), ms);
      });
      return new Response(`${name} stops listening for ${ms} ms\n`, { headers });
    }
    if (req.body) await req.body.cancel();
    counts.requests++;
    const key = url.pathname + url.search;
    const hit = cache.touch(key);
    if (hit) counts.hits++;
    headers.set("x-cache", hit ? "HIT" : "MISS");
    headers.set("content-type", "text/plain; charset=utf-8");
    return new Response(
      `${name} served ${req.method} ${key} (cache ${hit ? "HIT" : "MISS"})\n`,
      { headers },
    );
  };

  const backend: DemoBackend = {
    name,
    address,
    counts,
    get listening() {
      return server !== undefined;
    },
    async stop() {
      clearTimeout(reopen);
      const s = server;
      server = undefined;
      await s?.shutdown();
    },
    start() {
      clearTimeout(reopen);
      if (server) return;
      server = Deno.serve({ hostname: host, port, onListen: () => {} }, handler);
    },
  };
  backend.start();
  return backend;
}

/**
 * Starts a backend for every loopback server of every pool in the Model, named
 * `<pool>-<n>` (n counts from 1 in config order). Servers off loopback are skipped.
 */
export function startDemoBackends(model: Model, options: DemoOptions = {}): DemoBackends {
  const backends: DemoBackend[] = [];
  try {
    for (const pool of Object.values(model.pools)) {
      pool.servers.forEach((server, i) => {
        if (!isLoopback(server.address.host)) return;
        backends.push(
          createBackend(`${pool.name}-${i + 1}`, server.address.host, server.address.port, options),
        );
      });
    }
  } catch (error) {
    for (const b of backends) b.stop();
    throw new Error(`cannot start the demo backends: ${(error as Error).message}`);
  }
  return {
    backends,
    close: async () => {
      await Promise.all(backends.map((b) => b.stop()));
    },
  };
}
