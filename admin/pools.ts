/**
 * Admin routes of pools and real servers: `GET /api/v1/pools` shows each server's
 * health, last check, last change and weights; `POST
 * /api/v1/servers/{pool}/{address}/(drain|enable|disable)` and `PUT
 * /api/v1/servers/{pool}/{address}/weight` change admin state and weight. Handlers are
 * thin: they validate and call a {@link PoolsApi} (the health subsystem).
 * @module
 */
import type { Context, Hono } from "hono";
import type { AdminState, Health } from "../health/state.ts";

/** The last check run against a server. */
export interface LastCheck {
  readonly ok: boolean;
  readonly reason: string;
  readonly duration_ms: number;
  /** ISO time the check finished. */
  readonly at: string;
}

/** One real server as `GET /api/v1/pools` shows it. */
export interface ServerReport {
  readonly address: string;
  readonly health: Health;
  readonly admin: AdminState;
  readonly weight: {
    readonly configured: number;
    /** Set through `PUT …/weight`; null when none. */
    readonly override: number | null;
    /** Set by an exec check's exit code; null when none. */
    readonly dynamic: number | null;
    readonly effective: number;
  };
  readonly last_check: LastCheck | null;
  readonly last_change: { readonly at: string; readonly reason: string };
}

/** One pool as `GET /api/v1/pools` shows it. */
export interface PoolReport {
  readonly name: string;
  readonly check: {
    readonly type: string;
    readonly interval_ms: number;
    readonly timeout_ms: number;
    readonly rise: number;
    readonly fall: number;
  };
  readonly up: number;
  readonly servers: readonly ServerReport[];
}

/** What the routes need from the health subsystem. */
export interface PoolsApi {
  /** Every pool, in config order. */
  pools(): PoolReport[];
  /** Sets a server's admin state; undefined when the pool or server is unknown. */
  setAdmin(pool: string, address: string, state: AdminState): ServerReport | undefined;
  /** Sets (or with null clears) a weight override; undefined when unknown. */
  setWeight(pool: string, address: string, weight: number | null): ServerReport | undefined;
}

/** Largest weight a server may carry (IPVS's limit). */
export const MAX_WEIGHT = 65535;

const ACTIONS: Record<string, AdminState> = {
  drain: "drain",
  enable: "enabled",
  disable: "disabled",
};

function error(c: Context, status: 400 | 404, code: string, message: string): Response {
  return c.json({ error: { code, message } }, status);
}

function decode(segment: string): string {
  try {
    return segment.includes("%") ? decodeURIComponent(segment) : segment;
  } catch {
    return segment;
  }
}

/** Finds the pool and server, or the 404 response that names what exists. */
function locate(
  c: Context,
  api: PoolsApi,
): { pool: string; address: string } | Response {
  const pool = decode(c.req.param("pool") ?? "");
  const address = decode(c.req.param("address") ?? "");
  const pools = api.pools();
  const found = pools.find((p) => p.name === pool);
  if (!found) {
    const names = pools.map((p) => p.name).join(", ") || "(none)";
    return error(
      c,
      404,
      "pool_not_found",
      `pool "${pool}" is not defined; defined pools: ${names}`,
    );
  }
  if (!found.servers.some((s) => s.address === address)) {
    const names = found.servers.map((s) => s.address).join(", ") || "(none)";
    return error(
      c,
      404,
      "server_not_found",
      `server "${address}" is not in pool "${pool}"; its servers: ${names}`,
    );
  }
  return { pool, address };
}

/** Mounts the pool and server routes on the admin app. */
export function mountPools<E extends object>(app: Hono<E>, api: PoolsApi): void {
  app.get("/api/v1/pools", (c) => c.json({ pools: api.pools() }));

  app.post("/api/v1/servers/:pool/:address/:action{drain|enable|disable}", (c) => {
    const where = locate(c, api);
    if (where instanceof Response) return where;
    const state = ACTIONS[c.req.param("action") ?? ""];
    const report = api.setAdmin(where.pool, where.address, state);
    if (!report) {
      return error(c, 404, "server_not_found", `server "${where.address}" left the config`);
    }
    return c.json({ server: report });
  });

  app.put("/api/v1/servers/:pool/:address/weight", async (c) => {
    const where = locate(c, api);
    if (where instanceof Response) return where;
    let body: unknown;
    try {
      body = await c.req.json();
    } catch {
      return error(c, 400, "bad_request", 'the body must be JSON such as {"weight": 3}');
    }
    const weight = (body as { weight?: unknown } | null)?.weight;
    const valid = weight === null ||
      (typeof weight === "number" && Number.isInteger(weight) && weight >= 0 &&
        weight <= MAX_WEIGHT);
    if (!valid) {
      return error(
        c,
        400,
        "bad_weight",
        `weight must be a whole number from 0 to ${MAX_WEIGHT} (or null to use the configured weight); send {"weight": 3}`,
      );
    }
    const report = api.setWeight(where.pool, where.address, weight as number | null);
    if (!report) {
      return error(c, 404, "server_not_found", `server "${where.address}" left the config`);
    }
    return c.json({ server: report });
  });
}
