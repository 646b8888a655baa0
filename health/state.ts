/**
 * One verdict per real server that every subsystem obeys. Health checkers and the
 * admin API write it; l4, l7 and vrrp subscribe to its events.
 *
 * Effective weight is 0 when a server is down, disabled or draining; otherwise the
 * configured weight (or the admin override, or a dynamic weight from an exec check),
 * scaled during slow start.
 * @module
 */
import { serverKey } from "../config/model.ts";

/** Health as the checkers see it. */
export type Health = "up" | "down";
/** State set by an operator through the admin API; kept across reloads. */
export type AdminState = "enabled" | "disabled" | "drain";

/** Everything a consumer needs to know about one real server. */
export interface ServerState {
  readonly pool: string;
  /** Endpoint text as in the Model, e.g. `127.0.0.1:8101`. */
  readonly address: string;
  readonly health: Health;
  readonly admin: AdminState;
  /** Weight from the config. */
  readonly configuredWeight: number;
  /** Weight traffic should use now (0 = no new connections/requests). */
  readonly effectiveWeight: number;
  /** Why the last change happened (`connect refused`, `admin drain`, …). */
  readonly reason: string;
  /** Epoch ms of the last change. */
  readonly since: number;
}

/** A change to one server. `removed` means the server left the config. */
export interface ServerEvent {
  readonly kind: "added" | "removed" | "up" | "down" | "weight" | "drain" | "disable" | "enable";
  readonly state: ServerState;
}

/** Called with each change, in order. */
export type ServerListener = (event: ServerEvent) => void;

/** Whether a server takes new connections or requests now. */
export function isUsable(state: ServerState): boolean {
  return state.effectiveWeight > 0;
}

/** The shared table of server states plus its event stream. */
export class ServerStates {
  #states = new Map<string, ServerState>();
  #listeners = new Set<ServerListener>();

  /** The state of one server, if it is in the config. */
  get(pool: string, address: string): ServerState | undefined {
    return this.#states.get(serverKey(pool, address));
  }

  /** All servers, or those of one pool, in config order. */
  list(pool?: string): ServerState[] {
    const all = [...this.#states.values()];
    return pool === undefined ? all : all.filter((s) => s.pool === pool);
  }

  /** Subscribes to changes; returns the function that unsubscribes. */
  subscribe(listener: ServerListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Writes a server's state and tells every subscriber. The event kind is derived
   * from what changed unless given.
   */
  set(next: ServerState, kind?: ServerEvent["kind"]): void {
    const key = serverKey(next.pool, next.address);
    const prev = this.#states.get(key);
    this.#states.set(key, next);
    const derived = kind ?? deriveKind(prev, next);
    if (derived) this.#emit({ kind: derived, state: next });
  }

  /** Removes a server that left the config and tells every subscriber. */
  delete(pool: string, address: string): void {
    const key = serverKey(pool, address);
    const prev = this.#states.get(key);
    if (!prev) return;
    this.#states.delete(key);
    this.#emit({ kind: "removed", state: prev });
  }

  #emit(event: ServerEvent): void {
    for (const listener of this.#listeners) listener(event);
  }
}

function deriveKind(
  prev: ServerState | undefined,
  next: ServerState,
): ServerEvent["kind"] | undefined {
  if (!prev) return "added";
  if (prev.admin !== next.admin) {
    return next.admin === "drain" ? "drain" : next.admin === "disabled" ? "disable" : "enable";
  }
  if (prev.health !== next.health) return next.health;
  if (prev.effectiveWeight !== next.effectiveWeight) return "weight";
  return undefined;
}
