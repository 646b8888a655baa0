/**
 * What the TCP and UDP handlers need from the userspace plane that owns them.
 * @module
 */
import type { Logger } from "../../log.ts";
import type { Conn, ConnTable } from "../conn_table.ts";
import type { DefenseSettings, DropReason } from "../defense.ts";
import type { RealServer } from "../service.ts";

/** Closes the sockets of one connection. */
export interface Closer {
  /** Resets (RST) or closes both sides and removes the connection from the table. */
  close(reset: boolean): void;
  /** Moves traffic counted since the last call into the stats and the table's timers. */
  flush?(): void;
}

/** The plane as a handler sees it. */
export interface PlaneContext {
  readonly table: ConnTable<RealServer>;
  readonly log: Logger;
  /** Current defense settings. */
  defense(): DefenseSettings;
  /** Monotonic milliseconds. */
  now(): number;
  /** Remembers how to close a connection (expiry, disable, shedding). */
  track(conn: Conn<RealServer>, closer: Closer): void;
  /** Forgets a closed connection. */
  untrack(conn: Conn<RealServer>): void;
  /** Closes a tracked connection for `reason`, counting the drop on its service. */
  drop(conn: Conn<RealServer>, reason: DropReason, reset: boolean): void;
}
