/**
 * The HTTP/1.1 proxy shell: one listener accepting clients with Fulcrum's own codec,
 * and a shared pool of keep-alive connections to servers. Plain-TCP sockets are
 * sys/tcp.ts's epoll sockets when FFI is allowed (else, and for TLS, Deno's). Bodies
 * stream both ways with backpressure (every write is awaited before the next read);
 * the rest of a body of known length is spliced socket to socket in the kernel when
 * both ends are epoll sockets; chunked bodies are validated as they pass;
 * `Expect: 100-continue` and WebSocket upgrades are relayed.
 *
 * Decisions (rules, pools, servers) come from router.ts; this file only moves bytes,
 * enforces timeouts and limits, and answers errors with short bodies that say why.
 * @module
 */
import type { ListenerConfig } from "../config/schema.ts";
import type { Logger } from "../log.ts";
import {
  ChunkedScanner,
  detachHead,
  encodeLatin1,
  type Framing,
  type Head,
  headerCount,
  headerValue,
  nameAt,
  parseRequestHead,
  parseResponseHead,
  requestFraming,
  responseFraming,
  valueAt,
  writeHead,
} from "./codec.ts";
import {
  connectTcp,
  listenTcp,
  SpliceError,
  spliceExactly,
  tcpAvailable,
  TcpConn,
} from "../sys/tcp.ts";
import { type ByteConn, type Deadlines, Reader, type Timed, writeAll } from "./io.ts";
import type { L7Metrics } from "./metrics.ts";
import type { PoolRuntime, ServerRuntime } from "./pool.ts";
import { decide, parseTarget, viewOf } from "./router.ts";
import type { RuleTable } from "./rules.ts";

/** What a listener routes with; replaced as a whole on reload (atomic swap). */
export interface RouteState {
  readonly config: ListenerConfig;
  readonly table: RuleTable;
  readonly pools: ReadonlyMap<string, PoolRuntime>;
}

/** Shared by every listener: idle server connections, deadlines, metrics, log. */
export interface ProxyShared {
  readonly upstreams: Upstreams;
  readonly deadlines: Deadlines;
  readonly metrics: L7Metrics;
  readonly log: Logger;
  /** Which sockets plain-TCP listeners use (see {@link SocketKind}). */
  readonly sockets: SocketKind;
}

/**
 * `epoll`: Fulcrum's own nonblocking sockets (sys/tcp.ts), served in the kernel's
 * readiness order (fair under full load; needs `--allow-ffi`); `deno`: Deno's
 * sockets. TLS listeners always use Deno's.
 */
export type SocketKind = "epoll" | "deno";

/** `epoll` when FFI is allowed here, else `deno`. */
export function defaultSockets(): SocketKind {
  return tcpAvailable() ? "epoll" : "deno";
}

/** A connection as the proxy uses it (a `Deno.Conn` or a sys/tcp.ts socket). */
export interface NetConn extends ByteConn {
  readonly remoteAddr: Deno.Addr | { readonly hostname: string; readonly port: number };
}

/** A listening socket (a `Deno.Listener` or a sys/tcp.ts listener). */
interface NetListener {
  readonly addr: Deno.Addr | { readonly hostname: string; readonly port: number };
  accept(): Promise<NetConn>;
  close(): void;
}

const VIA = "1.1 fulcrum";
const VIA_LINE = `via: ${VIA}\r\n`;
const VIA_CLOSE_LINES = `via: ${VIA}\r\nconnection: close\r\n`;
const STATUS_200 = "HTTP/1.1 200 OK";
/** Limits on a server's response head. */
const RESPONSE_LIMITS = { maxBytes: 65536, maxHeaders: 1000 };
/** Bytes per client for building forwarded request heads (larger ones get their own). */
const REQUEST_SCRATCH = 1024;
/**
 * Where response heads are built before they are copied in front of the body in the
 * server connection's read buffer (synchronously: shared by every connection).
 */
const RESPONSE_SCRATCH = new Uint8Array(8192);
/** Scratch flags for head serialization (heads have at most 1000 fields). */
const KEEP = new Uint8Array(1024);
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);
const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "te",
  "upgrade",
  "proxy-authorization",
  "proxy-authenticate",
]);
const REASONS: Record<number, string> = {
  400: "Bad Request",
  404: "Not Found",
  408: "Request Timeout",
  431: "Request Header Fields Too Large",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

/**
 * The answer timeout of a server connection, made once per connection: an exchange
 * arms it, pushes it back as bytes arrive (`refresh`) and disarms it; firing closes
 * the connection.
 */
class ServerTimer implements Timed {
  deadline = 0;
  slot = -1;
  fired = false;
  /** The timeout (ms) `refresh` applies. */
  ms = 0;
  readonly #conn: NetConn;

  constructor(conn: NetConn) {
    this.#conn = conn;
  }

  /** Sets the deadline `ms` from now. */
  refresh(): void {
    this.deadline = Date.now() + this.ms;
  }

  fire(): void {
    this.fired = true;
    closeQuietly(this.#conn);
  }
}

/** A connection to a server with its read buffer. */
export interface Upstream {
  readonly conn: NetConn;
  /** Its answer timeout (see {@link ServerTimer}). */
  readonly timer: ServerTimer;
  readonly reader: Reader;
  readonly address: string;
  /** Requests this connection has carried. */
  uses: number;
  /** Epoch ms when it went idle. */
  idleSince?: number;
}

/**
 * Read buffer per server exchange: a 100 KiB response arrives in two reads (fewer ops,
 * fewer writes to the client) instead of four with 32 KiB. 128 KiB was ~5% faster on
 * 100 KiB bodies but cost ~9 MB of RSS at 50 requests in flight (bench/l7_speed.ts).
 */
const UPSTREAM_READ = 64 * 1024;
/** Space before a server connection's unread bytes where the response head is rebuilt. */
const UPSTREAM_HEADROOM = 1024;
/**
 * Read buffers of server connections, lent for one exchange at a time: idle pooled
 * connections hold none, so memory follows the requests in flight, not the pool.
 */
const READ_BUFFERS: Uint8Array[] = [];
/** Free read buffers kept for reuse. */
const READ_BUFFERS_KEPT = 64;

function lendReadBuffer(): Uint8Array {
  return READ_BUFFERS.pop() ?? new Uint8Array(UPSTREAM_HEADROOM + UPSTREAM_READ);
}

function returnReadBuffer(buf: Uint8Array): void {
  if (READ_BUFFERS.length < READ_BUFFERS_KEPT) READ_BUFFERS.push(buf);
}

/** Idle server connections older than this are closed, not reused (servers time out too). */
export const UPSTREAM_IDLE_MS = 15_000;

/** Idle keep-alive connections to servers, newest first per server. */
export class Upstreams {
  #idle = new Map<string, Upstream[]>();
  readonly maxIdle: number;
  /** Connections opened so far (for tests and status). */
  opened = 0;
  readonly #sockets: SocketKind;

  /**
   * A pool keeping at most `maxIdle` idle connections per server, opening them with
   * `options.sockets` (default: {@link defaultSockets}).
   */
  constructor(maxIdle = 256, options: { sockets?: SocketKind } = {}) {
    this.maxIdle = maxIdle;
    this.#sockets = options.sockets ?? defaultSockets();
  }

  /** An idle connection to `address`, if any. */
  take(address: string): Upstream | undefined {
    const list = this.#idle.get(address);
    if (!list?.length) return undefined;
    const now = Date.now();
    // oldest first: those the server may have closed already
    while (list.length && now - (list[0].idleSince ?? now) > UPSTREAM_IDLE_MS) {
      closeQuietly(list.shift()!.conn);
    }
    return list.pop();
  }

  /** Returns a connection after a complete exchange. */
  give(up: Upstream): void {
    let list = this.#idle.get(up.address);
    if (!list) this.#idle.set(up.address, list = []);
    if (list.length >= this.maxIdle) {
      closeQuietly(up.conn);
      return;
    }
    up.idleSince = Date.now();
    list.push(up);
  }

  /** Opens a new connection, failing after `timeout` ms. */
  async open(server: ServerRuntime, timeout: number): Promise<Upstream> {
    const conn = this.#sockets === "epoll"
      ? await connectTcp({ hostname: server.host, port: server.port }, { timeout })
      : await connectWithin(server.host, server.port, timeout);
    this.opened++;
    // no room of its own: each exchange lends it a read buffer
    const reader = new Reader(conn, 0, { headroom: UPSTREAM_HEADROOM });
    return { conn, reader, address: server.address, uses: 0, timer: new ServerTimer(conn) };
  }

  /** Idle connections held now. */
  get idle(): number {
    let n = 0;
    for (const list of this.#idle.values()) n += list.length;
    return n;
  }

  /** Closes the idle connections of servers not in `keep` (all when omitted). */
  close(keep?: ReadonlySet<string>): void {
    for (const [address, list] of this.#idle) {
      if (keep?.has(address)) continue;
      for (const up of list) closeQuietly(up.conn);
      this.#idle.delete(address);
    }
  }
}

async function connectWithin(hostname: string, port: number, ms: number): Promise<Deno.Conn> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const attempt = Deno.connect({ hostname, port, transport: "tcp" });
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  try {
    const conn = await Promise.race([attempt, timeout]);
    conn.setNoDelay(true);
    return conn;
  } catch (err) {
    attempt.then((c) => c.close(), () => {});
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

function closeQuietly(conn: { close(): void }): void {
  try {
    conn.close();
  } catch {
    // already closed
  }
}

/** One client connection's state. */
interface Client extends Timed {
  readonly conn: NetConn;
  readonly reader: Reader;
  readonly ip: string;
  closed: boolean;
  /** Waiting for a request head with nothing buffered: safe to close on drain. */
  idle: boolean;
  /** Fired by the deadline wheel. */
  onTimeout: () => void;
  /** Where this client's forwarded request heads are built (one request at a time). */
  scratch: Uint8Array;
  /** The header/idle timeout handler (made once per connection). */
  onHeadTimeout: () => void;
  /**
   * The lines added to the last forwarded head that carried no forwarding headers of
   * its own, with what they were made from: the next request of the connection
   * usually reuses them.
   */
  added?: { config: unknown; host: string | undefined; text: string };
}

/** A short plain-text error response; `close` adds `connection: close`. */
export function errorResponse(
  status: number,
  why: string,
  options: { close: boolean },
): Uint8Array {
  const close = options.close;
  const body = `fulcrum: ${why}\n`;
  const bytes = encodeLatin1(body.replace(/[^\x20-\x7e\n]/g, "?"));
  return encodeLatin1(
    `HTTP/1.1 ${status} ${
      REASONS[status] ?? "Error"
    }\r\ncontent-type: text/plain; charset=utf-8\r\n` +
      `content-length: ${bytes.length}\r\nvia: ${VIA}\r\n${
        close ? "connection: close\r\n" : ""
      }\r\n` +
      body.replace(/[^\x20-\x7e\n]/g, "?"),
  );
}

const NO_TOKENS: readonly string[] = [];
const NO_LABELS: readonly string[] = [];

/** Tokens of every Connection header, lowercased. */
function connectionTokens(head: Head): readonly string[] {
  let out: string[] | undefined;
  const count = headerCount(head);
  for (let i = 0; i < count; i++) {
    if (nameAt(head, i) === "connection") {
      out ??= [];
      const value = valueAt(head, i);
      if (value.indexOf(",") < 0) out.push(value.trim().toLowerCase());
      else for (const t of value.split(",")) out.push(t.trim().toLowerCase());
    }
  }
  return out ?? NO_TOKENS;
}

function formatForwardedFor(ip: string): string {
  return ip.includes(":") ? `"[${ip}]"` : ip;
}

/** One listener: accepts clients and proxies their requests. */
export class ProxyListener {
  readonly name: string;
  /** The routing state; replaced as a whole by `swap`. */
  state: RouteState;
  #shared: ProxyShared;
  #listener: NetListener | undefined;
  #clients = new Set<Client>();
  #draining = false;
  #accepting: Promise<void> | undefined;
  #tls: boolean;
  #inflight = 0;
  #loggedFailure = new Map<string, number>();
  /** Head limits of the config in use (rebuilt when the config is swapped). */
  #limits: { config?: ListenerConfig; limits: { maxBytes: number; maxHeaders: number } } = {
    limits: { maxBytes: 0, maxHeaders: 0 },
  };

  /** A listener for `state.config`; call `start()` to open it. */
  constructor(state: RouteState, shared: ProxyShared) {
    this.name = state.config.name;
    this.state = state;
    this.#shared = shared;
    this.#tls = state.config.tls !== undefined;
  }

  /** The bound address (after start). */
  get addr(): Deno.NetAddr | undefined {
    const addr = this.#listener?.addr as { hostname: string; port: number } | undefined;
    return addr && { transport: "tcp", hostname: addr.hostname, port: addr.port };
  }

  /** Client connections open now. */
  get clients(): number {
    return this.#clients.size;
  }

  /** Requests being proxied now. */
  get inflight(): number {
    return this.#inflight;
  }

  /** Opens the socket; throws with an operator-facing message when it cannot. */
  start(): void {
    const c = this.state.config;
    const where = { hostname: c.listen.host, port: c.listen.port, transport: "tcp" as const };
    try {
      if (c.tls) {
        this.#listener = Deno.listenTls({
          ...where,
          cert: Deno.readTextFileSync(c.tls.cert),
          key: Deno.readTextFileSync(c.tls.key),
        });
      } else if (this.#shared.sockets === "epoll") {
        this.#listener = listenTcp(where);
      } else {
        this.#listener = Deno.listen(where);
      }
    } catch (err) {
      throw new Error(
        `listener ${c.name} cannot listen on ${c.listen.text}: ${(err as Error).message}; ` +
          `free the port or change l7.listeners[].listen`,
      );
    }
    this.#accepting = this.#accept(this.#listener);
  }

  /** Replaces the routing state; requests already routed keep the old one. */
  swap(state: RouteState): void {
    this.state = state;
  }

  /**
   * Stops accepting, closes idle clients, lets requests in flight finish (their
   * responses carry `connection: close`) and closes whatever is left after `ms`.
   */
  async drain(ms: number): Promise<void> {
    await this.closeSocket();
    const until = Date.now() + ms;
    while (this.#clients.size && Date.now() < until) {
      for (const c of this.#clients) if (c.idle) this.#close(c);
      if (!this.#clients.size) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    for (const c of this.#clients) this.#close(c);
    while (this.#clients.size) await new Promise((r) => setTimeout(r, 5));
  }

  /** Stops accepting and frees the listening socket; open clients are left to `drain`. */
  async closeSocket(): Promise<void> {
    this.#draining = true;
    if (this.#listener) closeQuietly(this.#listener);
    await this.#accepting;
  }

  async #accept(listener: NetListener): Promise<void> {
    while (true) {
      let conn: NetConn;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (this.#draining) return;
        this.#shared.log.warn("accept failed", { listener: this.name, error: String(err) });
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      if (this.#draining) {
        closeQuietly(conn);
        continue;
      }
      this.#serve(conn);
    }
  }

  #close(c: Client): void {
    if (c.closed) return;
    c.closed = true;
    this.#shared.deadlines.disarm(c);
    closeQuietly(c.conn);
  }

  async #serve(conn: NetConn): Promise<void> {
    try {
      // sys/tcp.ts sockets come with TCP_NODELAY set
      if (!this.#tls && this.#shared.sockets === "deno") (conn as Deno.TcpConn).setNoDelay(true);
    } catch { /* not a TCP socket */ }
    const remote = conn.remoteAddr as Deno.NetAddr;
    const c: Client = {
      conn,
      reader: new Reader(conn, 16 * 1024),
      ip: remote.hostname,
      closed: false,
      idle: true,
      deadline: 0,
      slot: -1,
      onTimeout: () => {},
      scratch: new Uint8Array(REQUEST_SCRATCH),
      onHeadTimeout: () => this.#headTimeout(c),
      fire() {
        this.onTimeout();
      },
    };
    this.#clients.add(c);
    this.#shared.metrics.connections(this.name, 1);
    try {
      while (!c.closed) {
        const head = await this.#readHead(c);
        if (!head) break;
        const keep = await this.#exchange(c, head);
        if (!keep || this.#draining) break;
      }
    } catch (err) {
      if (!c.closed) this.#shared.log.debug("client connection failed", { error: String(err) });
    } finally {
      this.#close(c);
      this.#clients.delete(c);
      this.#shared.metrics.connections(this.name, -1);
    }
  }

  /**
   * The header or idle timeout of a client waiting for a request head: 408 when part
   * of a head arrived, a plain close when nothing did.
   */
  #headTimeout(c: Client): void {
    if (c.idle) {
      this.#close(c);
      return;
    }
    const cfg = this.state.config;
    this.#shared.metrics.reject(this.name, "header_timeout");
    this.#shared.metrics.request({
      listener: this.name,
      rule: "-",
      pool: "-",
      server: "-",
      status: 408,
      seconds: cfg.timeouts.header / 1000,
    });
    const bytes = errorResponse(
      408,
      `the request head did not arrive within ${cfg.timeouts.header} ms`,
      { close: true },
    );
    c.closed = true;
    this.#shared.deadlines.disarm(c);
    c.conn.write(bytes).catch(() => {}).finally(() => closeQuietly(c.conn));
  }

  /** Reads one request head; answers 400/408/431/505 itself and returns undefined then. */
  async #readHead(c: Client): Promise<Head | undefined> {
    const cfg = this.state.config;
    if (this.#limits.config !== cfg) {
      this.#limits = {
        config: cfg,
        limits: { maxBytes: cfg.limits.header_bytes, maxHeaders: cfg.limits.headers },
      };
    }
    const limits = this.#limits.limits;
    const wheel = this.#shared.deadlines;
    let started = c.reader.available > 0;
    c.idle = !started;
    c.deadline = Date.now() + (started ? cfg.timeouts.header : cfg.timeouts.idle);
    c.onTimeout = c.onHeadTimeout;
    wheel.arm(c);
    try {
      while (true) {
        if (c.reader.available) {
          const r = parseRequestHead(c.reader.view(), limits);
          if (r.kind === "ok") {
            c.idle = false;
            return r.head;
          }
          if (r.kind === "error") {
            c.idle = false;
            wheel.disarm(c);
            this.#shared.metrics.reject(this.name, r.status === 431 ? "header_limit" : "malformed");
            this.#count(r.status);
            await this.#answer(c, r.status, r.reason, true);
            return undefined;
          }
        }
        if (this.#draining && !c.reader.available) return undefined;
        const more = await c.reader.fill(limits.maxBytes + 1);
        if (!more || c.closed) return undefined;
        if (!started) {
          started = true;
          c.idle = false;
          c.deadline = Date.now() + cfg.timeouts.header;
        }
      }
    } finally {
      wheel.disarm(c);
    }
  }

  /** Counts a response to a routed request (`o`: its labels and start time). */
  #record(o: { labels: string[]; startedAt: number }, status: number): void {
    const labels = o.labels;
    this.#count(status, labels[0], labels[1], labels[2], (performance.now() - o.startedAt) / 1000);
  }

  #count(status: number, rule = "-", pool = "-", server = "-", seconds = 0): void {
    this.#shared.metrics.request({ listener: this.name, rule, pool, server, status, seconds });
  }

  async #answer(c: Client, status: number, why: string, close: boolean): Promise<void> {
    if (c.closed) return;
    try {
      await writeAll(c.conn, errorResponse(status, why, { close }));
    } catch {
      this.#close(c);
    }
  }

  /**
   * Answers a request with an error and counts it; returns whether the connection may
   * carry another request (`keepable`: no body was left unread and the client keeps).
   */
  async #fail(
    c: Client,
    req: { startedAt: number; keepable: boolean },
    status: number,
    why: string,
    labels: readonly string[] = NO_LABELS,
  ): Promise<boolean> {
    this.#count(
      status,
      labels[0],
      labels[1],
      labels[2],
      (performance.now() - req.startedAt) / 1000,
    );
    const close = !req.keepable || this.#draining || status === 400 || status === 501;
    await this.#answer(c, status, why, close);
    return !close;
  }

  /** Proxies one request; returns whether the client connection may carry another. */
  async #exchange(c: Client, parsed: Head): Promise<boolean> {
    let head = parsed;
    c.reader.consume(head.length);
    const startedAt = performance.now();
    const state = this.state;
    const cfg = state.config;
    const framing = requestFraming(head);
    if (framing.kind === "error") {
      this.#shared.metrics.reject(this.name, "smuggling");
      this.#count(400);
      await this.#answer(c, 400, framing.reason, true);
      return false;
    }
    const hasBody = framing.kind !== "none";
    const tokens = connectionTokens(head);
    // HTTP/1.0 clients get one response per connection (no keep-alive dialect)
    const clientKeep = head.version === "HTTP/1.1" && !tokens.includes("close");
    const keepable = !hasBody && clientKeep;
    if (head.method === "CONNECT") {
      this.#shared.metrics.reject(this.name, "malformed");
      return await this.#fail(
        c,
        { startedAt, keepable },
        501,
        "CONNECT is not supported by an HTTP listener",
      );
    }
    const target = parseTarget(head.target);
    if (!target) {
      this.#shared.metrics.reject(this.name, "malformed");
      return await this.#fail(c, { startedAt, keepable }, 400, "invalid request target");
    }
    let hosts = 0;
    const count = headerCount(head);
    for (let i = 0; i < count; i++) {
      if (nameAt(head, i) === "host") hosts++;
    }
    if (hosts > 1 || (hosts === 0 && head.version === "HTTP/1.1")) {
      this.#shared.metrics.reject(this.name, "malformed");
      return await this.#fail(
        c,
        { startedAt, keepable },
        400,
        hosts ? "more than one Host header" : "an HTTP/1.1 request needs a Host header",
      );
    }
    const upgrade = tokens.includes("upgrade") ? headerValue(head, "upgrade") : undefined;
    // built now: the head's bytes are a view of the client's read buffer, which the
    // chunked precheck may refill
    const outHead = this.#requestHead(c, head, { upgrade, listed: tokens });
    if (framing.kind === "chunked") {
      // the precheck reads on: keep the head's fields, not views of the buffer
      head = detachHead(head);
      const expect = headerValue(head, "expect")?.toLowerCase() === "100-continue";
      const why = await this.#precheckChunked(c, expect);
      if (why !== undefined) {
        this.#shared.metrics.reject(this.name, "smuggling");
        return await this.#fail(c, { startedAt, keepable }, 400, `bad request body: ${why}`);
      }
      if (c.closed) return false;
    }
    const view = viewOf(head, target);
    let exclude: Set<ServerRuntime> | undefined;
    const retries = IDEMPOTENT.has(head.method) ? cfg.retries : 0;
    let lastError = "";
    let lastStatus = 503;
    for (let attempt = 0; attempt <= retries; attempt++) {
      const d = decide(view, state, { source: c.ip, exclude });
      if (!d.rule) {
        return await this.#fail(
          c,
          { startedAt, keepable },
          404,
          `no rule of listener ${cfg.name} matches ${target.path}`,
        );
      }
      const labels = [String(d.rule.index), d.rule.pool];
      if (!d.pool) {
        return await this.#fail(
          c,
          { startedAt, keepable },
          503,
          `pool ${d.rule.pool} does not exist`,
          labels,
        );
      }
      if (!d.pick) {
        if (attempt === 0) {
          return await this.#fail(
            c,
            { startedAt, keepable },
            503,
            `no server of pool ${d.pool.name} is available (all down, draining, disabled or at max_conns)`,
            labels,
          );
        }
        return await this.#fail(c, { startedAt, keepable }, lastStatus, lastError, labels);
      }
      const pool = d.pool;
      const server = d.pick.server;
      labels.push(server.address);
      pool.acquire(server, d.pick.hash);
      this.#inflight++;
      this.#shared.metrics.inflight(this.name, 1);
      try {
        const outcome = await this.#forward(c, head, {
          outHead,
          server,
          framing,
          view: { host: view.host },
          upgrade,
          clientKeep,
          labels,
          startedAt,
        });
        if (outcome.kind === "done") return outcome.keep;
        // connect failed: nothing was sent, try the next server
        (exclude ??= new Set()).add(server);
        lastError = outcome.why;
        lastStatus = outcome.status;
        this.#shared.metrics.reject(this.name, "connect_failed");
        const now = Date.now();
        if (now - (this.#loggedFailure.get(server.address) ?? 0) > 10_000) {
          this.#loggedFailure.set(server.address, now);
          this.#shared.log.warn("server connect failed (logged once per 10 s per server)", {
            listener: this.name,
            pool: pool.name,
            server: server.address,
            error: outcome.why,
          });
        }
      } finally {
        pool.release(server);
        this.#inflight--;
        this.#shared.metrics.inflight(this.name, -1);
      }
    }
    return await this.#fail(c, { startedAt, keepable }, lastStatus, lastError);
  }

  /**
   * Validates the chunked body bytes that came with the head (and waits for the first
   * chunk-size line unless the client waits for 100-continue), so a malformed body is
   * answered with 400 before anything is sent to a server. Returns why it is bad.
   */
  async #precheckChunked(c: Client, expect: boolean): Promise<string | undefined> {
    const cfg = this.state.config;
    const wheel = this.#shared.deadlines;
    c.deadline = Date.now() + cfg.timeouts.header;
    c.onTimeout = () => this.#close(c);
    wheel.arm(c);
    try {
      while (true) {
        const r = new ChunkedScanner().feed(c.reader.buf, c.reader.start, c.reader.end);
        if (r.error) return r.error;
        if (r.done || c.reader.view().includes(10)) return undefined;
        if (expect && !c.reader.available) return undefined;
        if (c.reader.available > 4096) return undefined;
        if (!(await c.reader.fill()) || c.closed) return undefined;
      }
    } finally {
      wheel.disarm(c);
    }
  }

  /** Builds the request head sent to a server; `listed`: its Connection tokens. */
  #requestHead(
    c: Client,
    head: Head,
    o: { upgrade: string | undefined; listed: readonly string[] },
  ): Uint8Array {
    const cfg = this.state.config;
    const { upgrade, listed } = o;
    const target = head.target.startsWith("/") || head.target === "*" ? head.target : (() => {
      const t = parseTarget(head.target);
      return t ? t.path + (t.query ? `?${t.query}` : "") : "/";
    })();
    let xff: string | undefined;
    let forwarded: string | undefined;
    let via: string | undefined;
    let hostValue: string | undefined;
    const keep = KEEP;
    const count = headerCount(head);
    for (let i = 0; i < count; i++) {
      keep[i] = 0;
      const lower = nameAt(head, i);
      if (HOP_BY_HOP.has(lower) || (listed.length && listed.includes(lower))) continue;
      if (cfg.forwarded_headers) {
        if (lower === "x-forwarded-for") {
          const value = valueAt(head, i);
          xff = xff === undefined ? value : `${xff}, ${value}`;
          continue;
        }
        if (lower === "forwarded") {
          const value = valueAt(head, i);
          forwarded = forwarded === undefined ? value : `${forwarded}, ${value}`;
          continue;
        }
        if (lower === "x-forwarded-proto" || lower === "x-forwarded-host") continue;
      }
      if (lower === "via") {
        const value = valueAt(head, i);
        via = via === undefined ? value : `${via}, ${value}`;
        continue;
      }
      if (lower === "host") hostValue = valueAt(head, i);
      keep[i] = 1;
    }
    const plain = xff === undefined && forwarded === undefined && via === undefined &&
      upgrade === undefined;
    const added = c.added;
    let out: string;
    if (plain && added !== undefined && added.config === cfg && added.host === hostValue) {
      out = added.text;
    } else {
      out = this.#addedLines(c, { xff, forwarded, via, hostValue, upgrade });
      if (plain) c.added = { config: cfg, host: hostValue, text: out };
    }
    return writeHead(`${head.method} ${target} HTTP/1.1`, head, {
      keep,
      extra: out,
      into: c.scratch,
    });
  }

  /** The lines a forwarded request head gets: X-Forwarded-*, Forwarded, Via, Upgrade. */
  #addedLines(
    c: Client,
    o: {
      xff: string | undefined;
      forwarded: string | undefined;
      via: string | undefined;
      hostValue: string | undefined;
      upgrade: string | undefined;
    },
  ): string {
    const { xff, forwarded, via, hostValue, upgrade } = o;
    let out = "";
    if (this.state.config.forwarded_headers) {
      const proto = this.#tls ? "https" : "http";
      out += `x-forwarded-for: ${xff === undefined ? c.ip : `${xff}, ${c.ip}`}\r\n`;
      out += `x-forwarded-proto: ${proto}\r\n`;
      if (hostValue !== undefined) out += `x-forwarded-host: ${hostValue}\r\n`;
      const mine = `for=${formatForwardedFor(c.ip)};proto=${proto}` +
        (hostValue !== undefined ? `;host="${hostValue.replace(/["\\]/g, "")}"` : "");
      out += `forwarded: ${forwarded === undefined ? mine : `${forwarded}, ${mine}`}\r\n`;
    }
    out += `via: ${via === undefined ? VIA : `${via}, ${VIA}`}\r\n`;
    if (upgrade !== undefined) out += `connection: upgrade\r\nupgrade: ${upgrade}\r\n`;
    return out;
  }

  /** Builds the response head sent to the client (in `into` when given and it fits). */
  #responseHead(
    head: Head,
    close: boolean,
    upgrade: boolean,
    o: { into?: Uint8Array; listed?: readonly string[] } = {},
  ): Uint8Array {
    const listed = o.listed ?? connectionTokens(head);
    const into = o.into;
    let via: string | undefined;
    const keep = KEEP;
    const count = headerCount(head);
    for (let i = 0; i < count; i++) {
      keep[i] = 0;
      const lower = nameAt(head, i);
      if (HOP_BY_HOP.has(lower) || (listed.length && listed.includes(lower))) {
        if (!(upgrade && lower === "upgrade")) continue;
      }
      if (lower === "via") {
        const value = valueAt(head, i);
        via = via === undefined ? value : `${via}, ${value}`;
        continue;
      }
      keep[i] = 1;
    }
    let out: string;
    if (via === undefined && !upgrade) out = close ? VIA_CLOSE_LINES : VIA_LINE; // the usual case
    else {
      out = `via: ${via === undefined ? VIA : `${via}, ${VIA}`}\r\n`;
      if (upgrade) out += "connection: upgrade\r\n";
      else if (close) out += "connection: close\r\n";
    }
    const first = head.status === 200 && head.reason === "OK"
      ? STATUS_200
      : `HTTP/1.1 ${head.status} ${head.reason}`;
    return writeHead(first, head, { keep, extra: out, into });
  }

  /**
   * Sends one request to one server and relays the answer. Returns `retry` only when
   * nothing reached the server (connect failure), else `done` with keep-alive.
   */
  async #forward(
    c: Client,
    head: Head,
    o: {
      outHead: Uint8Array;
      server: ServerRuntime;
      framing: Framing;
      view: { host: string };
      upgrade: string | undefined;
      clientKeep: boolean;
      labels: string[];
      startedAt: number;
    },
  ): Promise<{ kind: "done"; keep: boolean } | { kind: "retry"; status: number; why: string }> {
    const cfg = this.state.config;
    const shared = this.#shared;
    const server = o.server;
    const hasBody = o.framing.kind !== "none";
    const outHead = o.outHead;

    // A pooled connection may have been closed by the server meanwhile: a request
    // without a body is replayed once on a fresh connection when that happens.
    let up: Upstream | undefined = o.upgrade === undefined
      ? shared.upstreams.take(server.address)
      : undefined;
    let fresh = !up;
    for (let tries = 0;; tries++) {
      if (!up) {
        try {
          up = await shared.upstreams.open(server, cfg.timeouts.connect);
          fresh = true;
        } catch (err) {
          const timeout = (err as Error).message.startsWith("no answer");
          return {
            kind: "retry",
            status: timeout ? 504 : 502,
            why: `cannot connect to ${server.address}: ${(err as Error).message}`,
          };
        }
      }
      const result = await this.#roundTrip(c, head, up, outHead, o, fresh);
      if (result === "stale" && !fresh && !hasBody && tries < 2) {
        closeQuietly(up.conn);
        up = undefined;
        continue;
      }
      if (result === "stale") {
        this.#record(o, 502);
        await this.#answer(
          c,
          502,
          `server ${server.address} closed the connection before answering`,
          true,
        );
        return { kind: "done", keep: false };
      }
      return { kind: "done", keep: result };
    }
  }

  /**
   * One request/response on `up`. Returns whether the client may continue, or
   * `stale` when a reused connection turned out closed before any answer byte.
   */
  async #roundTrip(
    c: Client,
    head: Head,
    up: Upstream,
    outHead: Uint8Array,
    o: {
      server: ServerRuntime;
      framing: Framing;
      upgrade: string | undefined;
      clientKeep: boolean;
      labels: string[];
      startedAt: number;
    },
    fresh: boolean,
  ): Promise<boolean | "stale"> {
    const cfg = this.state.config;
    const shared = this.#shared;
    const server = o.server;
    up.uses++;
    const readBefore = up.reader.total;
    const lent = lendReadBuffer();
    const own = up.reader.swap(lent);
    if (!own) returnReadBuffer(lent);
    let upstreamOk = false;
    const timer = up.timer;
    timer.fired = false;
    timer.ms = cfg.timeouts.server;
    timer.refresh();
    try {
      try {
        await writeAll(up.conn, outHead);
      } catch {
        if (!fresh) return "stale";
        this.#record(o, 502);
        await this.#answer(c, 502, `server ${server.address} closed the connection`, true);
        return false;
      }
      // Request body: streamed concurrently so 100-continue and early answers work.
      let bodyDone = o.framing.kind === "none";
      let bodyError: string | undefined;
      const pump = bodyDone ? Promise.resolve() : copyBody(c.reader, up.conn, o.framing, {
        progress: {
          refresh() {
            c.deadline = Date.now() + cfg.timeouts.idle;
          },
        },
      }).then(() => {
        bodyDone = true;
      }, (err) => {
        bodyError = (err as Error).message;
        closeQuietly(up.conn);
      });
      if (!bodyDone) {
        c.deadline = Date.now() + cfg.timeouts.idle;
        c.onTimeout = () => this.#close(c);
        shared.deadlines.arm(c);
      }
      shared.deadlines.arm(timer);
      // Response head(s).
      const limits = RESPONSE_LIMITS;
      let resp: Head;
      while (true) {
        let parsed = up.reader.available
          ? parseResponseHead(up.reader.view(), limits)
          : { kind: "incomplete" as const };
        while (parsed.kind === "incomplete") {
          let more = false;
          try {
            more = await up.reader.fill(limits.maxBytes + 1);
          } catch {
            more = false;
          }
          if (!more) {
            shared.deadlines.disarm(timer);
            await pump;
            if (bodyError && bodyError.startsWith("bad request body")) {
              shared.metrics.reject(this.name, "smuggling");
              this.#record(o, 400);
              await this.#answer(c, 400, bodyError, true);
              return false;
            }
            if (timer.fired) {
              shared.metrics.reject(this.name, "server_timeout");
              this.#record(o, 504);
              await this.#answer(
                c,
                504,
                `server ${server.address} did not answer within ${cfg.timeouts.server} ms`,
                true,
              );
              return false;
            }
            if (up.reader.total === readBefore && !fresh && o.framing.kind === "none") {
              return "stale";
            }
            shared.metrics.reject(this.name, "server_closed");
            this.#record(o, 502);
            await this.#answer(
              c,
              502,
              `server ${server.address} closed the connection before answering`,
              true,
            );
            return false;
          }
          parsed = parseResponseHead(up.reader.view(), limits);
        }
        if (parsed.kind === "error") {
          shared.deadlines.disarm(timer);
          shared.metrics.reject(this.name, "bad_response");
          this.#record(o, 502);
          await this.#answer(c, 502, `server ${server.address} sent ${parsed.reason}`, true);
          return false;
        }
        resp = parsed.head;
        up.reader.consume(resp.length);
        if (resp.status >= 100 && resp.status < 200 && resp.status !== 101) {
          await writeAll(c.conn, this.#responseHead(resp, false, false));
          continue;
        }
        break;
      }
      if (resp.status === 101 && o.upgrade !== undefined) {
        shared.deadlines.disarm(timer);
        this.#record(o, 101);
        await writeAll(c.conn, this.#responseHead(resp, false, true));
        await tunnel(c.reader, up.reader);
        return false;
      }
      const framing = responseFraming(resp, head.method);
      if (framing.kind === "error") {
        shared.deadlines.disarm(timer);
        shared.metrics.reject(this.name, "bad_response");
        this.#record(o, 502);
        await this.#answer(c, 502, `server ${server.address} sent ${framing.reason}`, true);
        return false;
      }
      const listed = connectionTokens(resp);
      const serverKeep = resp.version === "HTTP/1.1" && !listed.includes("close") &&
        framing.kind !== "close";
      const clientKeep = o.clientKeep && framing.kind !== "close" && !this.#draining;
      const respHead = this.#responseHead(resp, !clientKeep, false, {
        into: RESPONSE_SCRATCH,
        listed,
      });
      // Relay the response body, head and the first bytes in one write.
      let ok = true;
      try {
        await copyResponse(up.reader, c.conn, framing, respHead, timer);
      } catch (err) {
        ok = false;
        const reason = err instanceof ClientGone
          ? "client_aborted"
          : timer.fired
          ? "server_timeout"
          : "short_response";
        shared.metrics.reject(this.name, reason);
        shared.log.debug("response relay failed", { server: server.address, error: String(err) });
      }
      shared.deadlines.disarm(timer);
      this.#record(o, resp.status);
      if (!ok) return false;
      // The request body must be complete before the connection can be reused.
      if (!bodyDone && bodyError === undefined) {
        // the server answered before reading the whole body: stop here
        closeQuietly(up.conn);
        this.#close(c);
        await pump;
        return false;
      }
      await pump;
      if (bodyError !== undefined) return false;
      upstreamOk = serverKeep;
      return clientKeep;
    } finally {
      // every read of `up` has settled here: the buffer goes back unless bytes are left
      if (own && up.reader.buf === lent && up.reader.swap(own)) returnReadBuffer(lent);
      shared.deadlines.disarm(timer);
      if (o.framing.kind !== "none") shared.deadlines.disarm(c);
      if (upstreamOk && o.upgrade === undefined) shared.upstreams.give(up);
      else closeQuietly(up.conn);
    }
  }
}

/** Copies a request body of `framing` from `src` to `dst`, validating chunked bodies. */
async function copyBody(
  src: Reader,
  dst: ByteConn,
  framing: Framing,
  options: { progress?: { refresh(): void } } = {},
): Promise<void> {
  if (framing.kind === "length") {
    let left = framing.length;
    while (left > 0) {
      if (!src.available) {
        if (left >= SPLICE_MIN && src.conn instanceof TcpConn && dst instanceof TcpConn) {
          return await spliceRequestBody(src.conn, dst, { length: left, ...options });
        }
        const more = await src.fill();
        options.progress?.refresh();
        if (!more) throw new Error("client closed before sending the whole body");
      }
      const take = Math.min(left, src.available);
      await writeAll(dst, src.buf.subarray(src.start, src.start + take));
      src.consume(take);
      left -= take;
    }
    return;
  }
  if (framing.kind === "chunked") {
    const scanner = new ChunkedScanner();
    while (true) {
      if (!src.available) {
        const more = await src.fill();
        options.progress?.refresh();
        if (!more) throw new Error("client closed before the last chunk");
      }
      const r = scanner.feed(src.buf, src.start, src.end);
      if (r.error) throw new Error(`bad request body: ${r.error}`);
      if (r.used) await writeAll(dst, src.buf.subarray(src.start, src.start + r.used));
      src.consume(r.used);
      if (r.done) return;
    }
  }
}

/**
 * Writes `head` and relays a response body of `framing` from `src` to `dst`. Throws
 * when the server ends early (short body) or sends a malformed chunked body. The head
 * goes out in one write with the first body bytes (placed in the reader's headroom
 * right before them), so a response already read whole takes one write and no copy.
 */
async function copyResponse(
  src: Reader,
  to: ByteConn,
  framing: Framing,
  head: Uint8Array,
  progress: { refresh(): void },
): Promise<void> {
  let pending: Uint8Array | undefined = placeBefore(src, head);
  // Fast path: nothing or all of the body is here already (small responses)
  const whole = framing.kind === "none"
    ? 0
    : framing.kind === "length" && src.available >= framing.length
    ? framing.length
    : -1;
  if (whole >= 0) {
    const start = src.start;
    const bytes = inPlace(src, pending)
      ? src.buf.subarray(start - pending.length, start + whole)
      : undefined;
    src.consume(whole);
    try {
      if (bytes) await writeAll(to, bytes);
      else {
        await writeAll(to, pending);
        if (whole) await writeAll(to, src.buf.subarray(start, start + whole));
      }
    } catch (err) {
      throw new ClientGone(String(err));
    }
    return;
  }
  if (framing.kind === "length") {
    let left = framing.length;
    while (left > 0) {
      if (!src.available) {
        if (pending) await toClient(to, pending);
        pending = undefined;
        if (left >= SPLICE_MIN && src.conn instanceof TcpConn && to instanceof TcpConn) {
          return await spliceResponseBody(src.conn, to, { length: left, progress });
        }
        const more = await src.fill();
        progress.refresh();
        if (!more) throw new Error(`server closed with ${left} bytes of the body missing`);
      }
      const take = Math.min(left, src.available);
      await sendAfter(to, src, pending, take);
      pending = undefined;
      src.consume(take);
      left -= take;
    }
    return;
  }
  if (framing.kind === "chunked") {
    const scanner = new ChunkedScanner();
    while (true) {
      if (!src.available) {
        if (pending) await toClient(to, pending);
        pending = undefined;
        const more = await src.fill();
        progress.refresh();
        if (!more) throw new Error("server closed before the last chunk");
      }
      const r = scanner.feed(src.buf, src.start, src.end);
      if (r.error) throw new Error(`server sent a bad chunked body: ${r.error}`);
      if (r.used) {
        await sendAfter(to, src, pending, r.used);
        pending = undefined;
      }
      src.consume(r.used);
      if (r.done) return;
    }
  }
  // until close
  while (true) {
    if (src.available) {
      const n = src.available;
      await sendAfter(to, src, pending, n);
      pending = undefined;
      src.consume(n);
    }
    if (pending) await toClient(to, pending);
    pending = undefined;
    const more = await src.fill();
    progress.refresh();
    if (!more) return;
  }
}

/**
 * The rest of a response body moves socket to socket in the kernel (splice) when at
 * least this much is still to come and both ends are sys/tcp.ts sockets: no copy
 * through JavaScript (HAProxy's `option splice-response`).
 */
const SPLICE_MIN = 16 * 1024;

/** Splices the rest of a request body; failures read like those of the copying path. */
async function spliceRequestBody(
  from: TcpConn,
  to: TcpConn,
  o: { length: number; progress?: { refresh(): void } },
): Promise<void> {
  try {
    await spliceExactly(from, to, o);
  } catch (err) {
    if (err instanceof SpliceError && err.side === "source") {
      throw new Error("client closed before sending the whole body");
    }
    throw err;
  }
}

/** Splices the rest of a response body; failures read like those of the copying path. */
async function spliceResponseBody(
  from: TcpConn,
  to: TcpConn,
  o: { length: number; progress: { refresh(): void } },
): Promise<void> {
  try {
    await spliceExactly(from, to, o);
  } catch (err) {
    if (err instanceof SpliceError && err.side === "destination") {
      throw new ClientGone(err.message);
    }
    throw new Error(`server ${(err as Error).message} of the body`);
  }
}

/**
 * Copies `head` into the consumed space right before the unread bytes of `src` and
 * returns that view, or a copy of `head` when it does not fit there.
 */
function placeBefore(src: Reader, head: Uint8Array): Uint8Array {
  const at = src.start - head.length;
  if (at < 0) return head.slice();
  src.buf.set(head, at);
  return src.buf.subarray(at, src.start);
}

/**
 * Sends `head` (when given) and the next `n` unread bytes of `src`: in one write when
 * the head sits right before them (see {@link placeBefore}), else in two.
 */
async function sendAfter(
  to: ByteConn,
  src: Reader,
  head: Uint8Array | undefined,
  n: number,
): Promise<void> {
  const start = src.start;
  if (head) {
    if (inPlace(src, head)) {
      return await toClient(to, src.buf.subarray(start - head.length, start + n));
    }
    await toClient(to, head);
  }
  if (n) await toClient(to, src.buf.subarray(start, start + n));
}

/** True when `head` sits in `src`'s buffer right before its unread bytes. */
function inPlace(src: Reader, head: Uint8Array): boolean {
  const buf = src.buf;
  return head.buffer === buf.buffer && head.byteOffset + head.length === buf.byteOffset + src.start;
}

/** Writes to the client; a failure becomes {@link ClientGone}. */
async function toClient(to: ByteConn, bytes: Uint8Array): Promise<void> {
  try {
    await writeAll(to, bytes);
  } catch (err) {
    throw new ClientGone(String(err));
  }
}

/** The client went away while its response was being written. */
class ClientGone extends Error {}

/** Pipes raw bytes both ways until either side ends, then closes both. */
async function tunnel(a: Reader, b: Reader): Promise<void> {
  const pipe = async (from: Reader, to: Reader) => {
    try {
      while (true) {
        if (from.available) {
          await writeAll(to.conn, from.view());
          from.consume(from.available);
        }
        if (!(await from.fill())) break;
      }
    } catch {
      // either side failed
    } finally {
      closeQuietly(a.conn);
      closeQuietly(b.conn);
    }
  };
  await Promise.all([pipe(a, b), pipe(b, a)]);
}
