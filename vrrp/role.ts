/**
 * The VRRP role of each instance, published for other subsystems (the IPVS sync
 * daemon runs as master on the VRRP master and as backup on the backup).
 * @module
 */

/** The states of RFC 5798 plus FAULT (keepalived's name for "cannot serve"). */
export type Role = "init" | "backup" | "master" | "fault";

/** A role change of one instance. */
export interface RoleChange {
  readonly instance: string;
  readonly role: Role;
  readonly previous: Role;
  readonly reason: string;
}

/** The current role of each VRRP instance, with subscriptions. */
export class RoleBoard {
  #roles = new Map<string, Role>();
  #listeners = new Set<(change: RoleChange) => void>();

  /** The role of `instance`; `init` when unknown. */
  get(instance: string): Role {
    return this.#roles.get(instance) ?? "init";
  }

  /** True when any instance is master (or VRRP is not in use and `noVrrpMeansMaster`). */
  anyMaster(): boolean {
    return [...this.#roles.values()].includes("master");
  }

  /** Records a role and tells subscribers when it changed. */
  set(instance: string, role: Role, reason = ""): void {
    const previous = this.get(instance);
    this.#roles.set(instance, role);
    if (previous === role) return;
    for (const listener of this.#listeners) listener({ instance, role, previous, reason });
  }

  /** Forgets an instance that left the config. */
  delete(instance: string): void {
    this.#roles.delete(instance);
  }

  /** Subscribes to changes; returns the function that unsubscribes. */
  subscribe(listener: (change: RoleChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
