/**
 * DoS defenses of the userspace plane, the equivalents of IPVS's drop_entry,
 * drop_packet and secure_tcp: a per-source connection limit, a global connection cap
 * and, under pressure, shedding of idle embryonic connections (accepted, nothing
 * exchanged yet). Pure: decides, the shell closes sockets and counts the drops.
 * @module
 */
import type { Conn, ConnDest, ConnTable } from "./conn_table.ts";

/** Why a connection was refused or closed by a defense or the plane. */
export type DropReason =
  | "per_source"
  | "global_cap"
  | "shed_embryonic"
  | "no_dest"
  | "connect_timeout"
  | "connect_error"
  | "idle_timeout"
  | "dest_removed"
  | "client_error"
  | "server_error";

/** Every drop reason, for metrics. */
export const DROP_REASONS: readonly DropReason[] = [
  "per_source",
  "global_cap",
  "shed_embryonic",
  "no_dest",
  "connect_timeout",
  "connect_error",
  "idle_timeout",
  "dest_removed",
  "client_error",
  "server_error",
];

/** `l4.defense` as the userspace plane uses it. */
export interface DefenseSettings {
  /** Global connection cap; 0 = none. */
  readonly maxConns: number;
  /** Connections per client address; 0 = none. */
  readonly perSource: number;
  /** Embryonic connections older than this are shed under pressure. */
  readonly embryonicTimeout: number;
  /**
   * The strongest of IPVS's drop_entry and secure_tcp modes: 3 = always shed idle
   * embryonic connections, 1–2 = when the table is under pressure, 0 = only at the cap.
   */
  readonly dropEntry: number;
}

/** The verdict for a new connection. */
export type Admission<D extends ConnDest> =
  | { readonly admit: true; readonly shed?: Conn<D> }
  | { readonly admit: false; readonly reason: DropReason };

/**
 * Admits a new connection from `source` or says why not. At the global cap the oldest
 * embryonic connection is shed to make room; when there is none, the new one is refused.
 */
export function admit<D extends ConnDest>(
  table: ConnTable<D>,
  source: string,
  settings: DefenseSettings,
): Admission<D> {
  if (settings.perSource > 0 && table.fromSource(source) >= settings.perSource) {
    return { admit: false, reason: "per_source" };
  }
  if (settings.maxConns > 0 && table.size >= settings.maxConns) {
    const oldest = table.embryonic().next();
    if (oldest.done) return { admit: false, reason: "global_cap" };
    return { admit: true, shed: oldest.value };
  }
  return { admit: true };
}

/**
 * Whether idle embryonic connections should be shed now: never in mode 0; in modes 1
 * and 2 when the table holds at least 3/4 of the cap; always in mode 3.
 */
export function underPressure<D extends ConnDest>(
  table: ConnTable<D>,
  settings: DefenseSettings,
): boolean {
  if (settings.dropEntry <= 0) return false;
  if (settings.dropEntry >= 3) return true;
  return settings.maxConns > 0 && table.size * 4 >= settings.maxConns * 3;
}

/** Embryonic connections to shed now: under pressure, those older than the timeout. */
export function embryonicToShed<D extends ConnDest>(
  table: ConnTable<D>,
  settings: DefenseSettings,
  now: number,
): Conn<D>[] {
  if (!underPressure(table, settings)) return [];
  const out: Conn<D>[] = [];
  for (const conn of table.embryonic()) {
    if (conn.created + settings.embryonicTimeout > now) break; // oldest first
    out.push(conn);
  }
  return out;
}

/** Drops per service and reason, and per service, server and reason. */
export interface DropCounts {
  readonly services: Readonly<Record<string, Readonly<Record<string, number>>>>;
  readonly servers?: Readonly<
    Record<string, Readonly<Record<string, Readonly<Record<string, number>>>>>
  >;
}
