/**
 * The contract between the appliance lifecycle and each subsystem (health, l4, l7,
 * vrrp). A subsystem is started with a Model, receives a diff on every reload, and
 * can add routes and metrics to the admin endpoint.
 * @module
 */
import type { Hono } from "hono";
import type { Model } from "./config/model.ts";
import type { ModelDiff } from "./config/diff.ts";
import type { ServerStates } from "./health/state.ts";
import type { Logger } from "./log.ts";
import type { RoleBoard } from "./vrrp/role.ts";

/** What `GET /api/v1/status` shows of one subsystem. */
export interface SubsystemStatus {
  readonly state: "stopped" | "starting" | "running" | "degraded" | "disabled" | "failed";
  readonly detail?: string;
  readonly [key: string]: unknown;
}

/** One running part of the appliance. */
export interface Subsystem {
  /** Short name: `health`, `l4`, `l7`, `vrrp`. */
  readonly name: string;
  /** Starts with the first Model; throws with an operator-facing message on failure. */
  start(model: Model): Promise<void>;
  /**
   * Moves to `model`. `diff` says what changed; a subsystem untouched by it may return
   * at once. Must not drop traffic it could keep (drain, don't kill).
   */
  apply(model: Model, diff: ModelDiff): Promise<void>;
  /** Stops gracefully: drains, releases addresses, closes sockets. */
  stop(): Promise<void>;
  /** A JSON-able summary for `/api/v1/status`. */
  status(): SubsystemStatus;
  /** Adds this subsystem's `/api/v1/...` routes to the admin app. */
  routes?(app: Hono<AdminEnv>): void;
  /** Prometheus text exposition lines (with HELP/TYPE) for `/metrics`. */
  metrics?(): string;
}

/** The hono environment of the admin app. */
export type AdminEnv = { Variables: Record<string, never> };

/** What every subsystem is given when it is created. */
export interface SubsystemDeps {
  /** The one table of server states (health writes, everyone reads). */
  readonly states: ServerStates;
  /** VRRP roles (vrrp writes, l4's IPVS sync daemon reads). */
  readonly roles: RoleBoard;
  /** A logger already bound to the subsystem's name. */
  readonly log: Logger;
}
