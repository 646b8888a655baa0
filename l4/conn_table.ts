/**
 * The connection table: every connection the userspace plane carries, indexed by its
 * (protocol, client, service) key, with the kernel's states and per-state timeouts.
 * It keeps each destination's active (ESTABLISHED) and inactive (every other state)
 * counts, the count per source address, and the embryonic connections (no byte yet)
 * oldest first. The GC is resumable and bounded per call, so it never stalls the loop.
 * Pure: the caller passes the time.
 * @module
 */

/** States the userspace plane distinguishes (a subset of the kernel's TCP states). */
export type ConnState = "SYN_RECV" | "ESTABLISHED" | "FIN_WAIT" | "UDP";

/** Timeouts per state, in ms. */
export interface StateTimeouts {
  /** Connecting to the server (SYN_RECV). */
  readonly syn: number;
  readonly established: number;
  readonly finWait: number;
  readonly udp: number;
}

/** Whatever the table counts connections on (a real server). */
export interface ConnDest {
  activeConns: number;
  inactiveConns: number;
}

/** One connection. */
export interface Conn<D extends ConnDest> {
  readonly id: number;
  readonly key: string;
  readonly protocol: "tcp" | "udp";
  readonly service: string;
  /** Client `host:port`. */
  readonly client: string;
  /** Client address, for per-source limits. */
  readonly source: string;
  readonly dest: D;
  readonly timeouts: StateTimeouts;
  readonly created: number;
  state: ConnState;
  expires: number;
  /** Whether any byte went either way yet. */
  embryonic: boolean;
}

/** What a new connection is. */
export interface ConnInit<D extends ConnDest> {
  readonly protocol: "tcp" | "udp";
  readonly service: string;
  readonly client: string;
  readonly source: string;
  readonly dest: D;
  /** This connection's timeouts when they differ from the table's (per service). */
  readonly timeouts?: StateTimeouts;
}

/** The table key of a connection. */
export function connKey(protocol: string, client: string, service: string): string {
  return `${protocol} ${client} ${service}`;
}

/** The connection table of one data plane. */
export class ConnTable<D extends ConnDest> {
  readonly #conns = new Map<string, Conn<D>>();
  readonly #perSource = new Map<string, number>();
  readonly #embryonic = new Set<Conn<D>>();
  #gcCursor: Iterator<Conn<D>> | undefined;
  #nextId = 1;

  /** A table with the given per-state timeouts. */
  constructor(readonly timeouts: StateTimeouts) {}

  /** Connections in the table. */
  get size(): number {
    return this.#conns.size;
  }

  /** Adds a connection in SYN_RECV (tcp) or UDP state; it counts as inactive. */
  add(init: ConnInit<D>, now: number): Conn<D> {
    const key = connKey(init.protocol, init.client, init.service);
    const old = this.#conns.get(key);
    if (old) this.remove(old);
    const state: ConnState = init.protocol === "udp" ? "UDP" : "SYN_RECV";
    const conn: Conn<D> = {
      id: this.#nextId++,
      key,
      ...init,
      timeouts: init.timeouts ?? this.timeouts,
      created: now,
      state,
      expires: now + timeoutOf(init.timeouts ?? this.timeouts, state),
      embryonic: true,
    };
    this.#conns.set(key, conn);
    this.#embryonic.add(conn);
    this.#perSource.set(init.source, (this.#perSource.get(init.source) ?? 0) + 1);
    init.dest.inactiveConns++;
    return conn;
  }

  /** The connection with this key. */
  get(key: string): Conn<D> | undefined {
    return this.#conns.get(key);
  }

  /** Moves a connection to `state`, moving it between active and inactive counts. */
  setState(conn: Conn<D>, state: ConnState, now: number): void {
    if (!this.#conns.has(conn.key) || this.#conns.get(conn.key) !== conn) return;
    const wasActive = conn.state === "ESTABLISHED";
    const isActive = state === "ESTABLISHED";
    if (wasActive && !isActive) {
      conn.dest.activeConns--;
      conn.dest.inactiveConns++;
    } else if (!wasActive && isActive) {
      conn.dest.inactiveConns--;
      conn.dest.activeConns++;
    }
    conn.state = state;
    conn.expires = now + timeoutOf(conn.timeouts, state);
  }

  /** Records traffic: the connection is no longer embryonic and its timer restarts. */
  touch(conn: Conn<D>, now: number): void {
    if (conn.embryonic) {
      conn.embryonic = false;
      this.#embryonic.delete(conn);
    }
    conn.expires = now + timeoutOf(conn.timeouts, conn.state);
  }

  /** Removes a connection and its counts; false when it was not there. */
  remove(conn: Conn<D>): boolean {
    if (this.#conns.get(conn.key) !== conn) return false;
    this.#conns.delete(conn.key);
    this.#embryonic.delete(conn);
    const n = (this.#perSource.get(conn.source) ?? 1) - 1;
    if (n > 0) this.#perSource.set(conn.source, n);
    else this.#perSource.delete(conn.source);
    if (conn.state === "ESTABLISHED") conn.dest.activeConns--;
    else conn.dest.inactiveConns--;
    return true;
  }

  /** Connections from one client address. */
  fromSource(source: string): number {
    return this.#perSource.get(source) ?? 0;
  }

  /** Embryonic connections, oldest first. */
  embryonic(): IterableIterator<Conn<D>> {
    return this.#embryonic.values();
  }

  /** Every connection, oldest first. */
  values(): IterableIterator<Conn<D>> {
    return this.#conns.values();
  }

  /**
   * Examines at most `budget` connections, continuing where the last call stopped, and
   * removes and returns those whose timer ran out.
   */
  gc(now: number, budget = 1000): Conn<D>[] {
    const expired: Conn<D>[] = [];
    for (let seen = 0; seen < budget; seen++) {
      this.#gcCursor ??= this.#conns.values();
      const next = this.#gcCursor.next();
      if (next.done) {
        this.#gcCursor = undefined;
        break;
      }
      const conn = next.value;
      if (conn.expires <= now && this.remove(conn)) expired.push(conn);
    }
    return expired;
  }
}

function timeoutOf(timeouts: StateTimeouts, state: ConnState): number {
  switch (state) {
    case "SYN_RECV":
      return timeouts.syn;
    case "ESTABLISHED":
      return timeouts.established;
    case "FIN_WAIT":
      return timeouts.finWait;
    case "UDP":
      return timeouts.udp;
  }
}
