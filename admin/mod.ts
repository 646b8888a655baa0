/**
 * The admin endpoint: a hono app composed of small routers. This module owns the
 * appliance-wide routes (`/healthz`, `/api/v1/status`, `/api/v1/reload`,
 * `/api/v1/plan`, `/metrics`, `/`); each subsystem adds its own through
 * `Subsystem.routes`. Write verbs need `Authorization: Bearer TOKEN` when a token is
 * configured; the endpoint refuses a non-loopback address without one.
 * @module
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { isLoopback } from "../config/address.ts";
import type { Model } from "../config/model.ts";
import type { Subsystem, SubsystemStatus } from "../subsystem.ts";
import { VERSION } from "../version.ts";
import { processMetrics } from "./process.ts";
import { family } from "./prom.ts";
import { STATUS_PAGE } from "./page.ts";

/** What the admin app needs from the appliance. */
export interface AdminHost {
  readonly model: Model;
  readonly configPath: string;
  readonly startedAt: number;
  readonly loadedAt: number;
  readonly subsystems: readonly Subsystem[];
  readonly reloads: {
    ok: number;
    failed: number;
    last?: { at: number; ok: boolean; detail: string };
  };
  subsystemStatus(): Record<string, SubsystemStatus>;
  reload(reason?: string): Promise<ReloadOutcome>;
  plan(text?: string): Promise<ReloadOutcome>;
}

/** A reload or plan outcome as the appliance reports it. */
export type ReloadOutcome =
  | { readonly ok: true; readonly changes: readonly string[]; readonly hash: string }
  | { readonly ok: false; readonly stage: "config" | "apply"; readonly errors: readonly string[] };

/** Options of {@link createAdminApp}. */
export interface AdminOptions {
  /** The bearer token write verbs need, or undefined for none. */
  token?: () => string | undefined;
}

/** A JSON error response in the admin API's one shape. */
export function jsonError(c: Context, status: number, code: string, message: string): Response {
  return c.json({ error: { code, message } }, status as 400);
}

function timingSafeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** Builds the admin app for a host (the appliance, or a test double of it). */
export function createAdminApp(host: AdminHost, options: AdminOptions = {}): Hono {
  const app = new Hono();

  app.use("*", async (c, next) => {
    const method = c.req.method;
    if (method === "GET" || method === "HEAD" || method === "OPTIONS") return await next();
    const token = options.token?.();
    if (!token) return await next();
    const header = c.req.header("authorization") ?? "";
    const given = header.startsWith("Bearer ") ? header.slice(7).trim() : "";
    if (!timingSafeEqual(given, token)) {
      return jsonError(
        c,
        401,
        "unauthorized",
        "this endpoint needs Authorization: Bearer TOKEN (the token in admin.token_file)",
      );
    }
    await next();
  });

  app.get("/healthz", (c) => c.json({ status: "ok" }));

  app.get("/api/v1/status", (c) =>
    c.json({
      version: VERSION,
      uptime_seconds: Math.round((Date.now() - host.startedAt) / 1000),
      started_at: new Date(host.startedAt).toISOString(),
      config: {
        path: host.configPath,
        hash: host.model.source.hash,
        loaded_at: new Date(host.loadedAt).toISOString(),
      },
      reloads: {
        ok: host.reloads.ok,
        failed: host.reloads.failed,
        last: host.reloads.last
          ? { ...host.reloads.last, at: new Date(host.reloads.last.at).toISOString() }
          : null,
      },
      subsystems: host.subsystemStatus(),
    }));

  app.post("/api/v1/reload", async (c) => {
    const result = await host.reload("admin api");
    if (result.ok) return c.json({ ok: true, changes: result.changes, hash: result.hash });
    return c.json({
      ok: false,
      error: {
        code: result.stage === "config" ? "invalid_config" : "apply_failed",
        message: result.stage === "config"
          ? "the new config is invalid; the running config was kept"
          : "the new config could not be applied; the running config was restored",
        details: result.errors,
      },
    }, 422);
  });

  app.post("/api/v1/plan", async (c) => {
    const text = await c.req.text();
    const result = await host.plan(text.length ? text : undefined);
    if (result.ok) return c.json({ ok: true, changes: result.changes, hash: result.hash });
    return c.json({
      ok: false,
      error: { code: "invalid_config", message: "the config is invalid", details: result.errors },
    }, 422);
  });

  app.get("/metrics", (c) => {
    const parts = [
      processMetrics(host.startedAt),
      family("fulcrum_build_info", "gauge", {
        help: "Fulcrum version.",
        samples: [{ labels: { version: VERSION }, value: 1 }],
      }),
      family("fulcrum_config_reloads_total", "counter", {
        help: "Config reloads by result.",
        samples: [
          { labels: { result: "ok" }, value: host.reloads.ok },
          { labels: { result: "failed" }, value: host.reloads.failed },
        ],
      }),
      family("fulcrum_config_info", "gauge", {
        help: "The running config's path and SHA-256.",
        samples: [{ labels: { path: host.configPath, hash: host.model.source.hash }, value: 1 }],
      }),
      family("fulcrum_config_loaded_timestamp_seconds", "gauge", {
        help: "When the running config was loaded.",
        samples: [{ value: Math.floor(host.loadedAt / 1000) }],
      }),
    ];
    for (const subsystem of host.subsystems) {
      try {
        const text = subsystem.metrics?.();
        if (text) parts.push(text.endsWith("\n") ? text : text + "\n");
      } catch {
        // one subsystem's metrics failing must not hide the others
      }
    }
    return c.body(parts.join(""), 200, { "content-type": "text/plain; version=0.0.4" });
  });

  app.get("/", (c) => c.html(STATUS_PAGE));

  for (const subsystem of host.subsystems) subsystem.routes?.(app as never);

  app.notFound((c) =>
    jsonError(
      c,
      404,
      "not_found",
      `no route ${c.req.method} ${new URL(c.req.url).pathname}; see /api/v1/status`,
    )
  );
  app.onError((error, c) => jsonError(c, 500, "internal", error.message));
  return app;
}

/** A listening admin endpoint. */
export interface AdminServer {
  /** `host:port` actually bound. */
  readonly address: string;
  close(): Promise<void>;
}

/**
 * Serves the admin app on `listen`. Refuses a non-loopback address when no token is
 * configured, so the API is never open to the network by accident.
 */
export function serveAdmin(
  app: Hono,
  options: { host: string; port: number; hasToken: boolean },
): AdminServer {
  if (!isLoopback(options.host) && !options.hasToken) {
    throw new Error(
      `refusing to serve the admin API on ${options.host} without a token; set admin.token_file or listen on 127.0.0.1`,
    );
  }
  const server = Deno.serve({
    hostname: options.host,
    port: options.port,
    onListen: () => {},
  }, app.fetch);
  const addr = server.addr as Deno.NetAddr;
  const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
  return {
    address: `${host}:${addr.port}`,
    close: () => server.shutdown(),
  };
}
