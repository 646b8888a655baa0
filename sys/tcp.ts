/**
 * Nonblocking TCP sockets served by one epoll set, the way nginx and HAProxy run
 * theirs: reads and writes are plain system calls made on the main thread when a
 * socket is ready, and `epoll_wait` reports readiness for all of them in the kernel's
 * order. While busy the loop takes ready events on the main thread (up to 16 batches
 * or 2 ms), then waits through Deno's event loop (`epoll_wait` on its blocking thread
 * pool) so timers and other I/O get their turn. Every ready socket is served once per
 * batch, so under full load each connection waits about as long as the others: on
 * Deno's own socket ops the L7 switch's p99 was 2.2× nginx's at saturation (with a
 * lower median), on these it is at nginx's (bench/l7_speed.ts).
 *
 * The API mirrors the subset of `Deno.Listener`/`Deno.Conn` the L7 proxy uses, so a
 * caller can fall back to Deno's sockets where FFI is not allowed ({@link tcpAvailable}).
 * Sockets are edge-triggered (`EPOLLET`): a read or write is always tried first, and a
 * caller waits for the next edge only after `EAGAIN`. {@link spliceExactly} moves bytes
 * between two of them inside the kernel. The loop runs while a socket is registered;
 * {@link tcpIdle} resolves once it has stopped (tests wait on it).
 * @module
 */
import { formatIp, ipBytes, ipFamily } from "../config/address.ts";
import {
  acceptNow,
  AF_INET,
  AF_INET6,
  bindNow,
  close,
  connectNow,
  EINPROGRESS,
  EPOLL_CTL_ADD,
  epollCreate,
  epollCtlNow,
  epollWait,
  epollWaitNow,
  ffiAvailable,
  getsockname,
  listenNow,
  O_CLOEXEC,
  O_NONBLOCK,
  pipeNow,
  readNow,
  sendNow,
  setIntOptionNow,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  socketError,
  socketNow,
  SOL_SOCKET,
  SPLICE_F_MOVE,
  SPLICE_F_NONBLOCK,
  spliceNow,
  strerror,
  writeNow,
} from "./libc.ts";

const EINTR = 4;
const EAGAIN = 11;
const EPOLLIN = 0x1;
const EPOLLOUT = 0x4;
const EPOLLERR = 0x8;
const EPOLLHUP = 0x10;
const EPOLLRDHUP = 0x2000;
const EPOLLET = 0x80000000;
const READABLE = EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP;
/** Events after which reads never wait again: the peer closed, or the socket failed. */
const ENDED = EPOLLERR | EPOLLHUP | EPOLLRDHUP;
const WRITABLE = EPOLLOUT | EPOLLERR | EPOLLHUP;
const IPPROTO_TCP = 6;
const TCP_NODELAY = 1;
const SO_REUSEADDR = 2;
/** Events taken from the kernel per `epoll_wait`. */
const BATCH = 256;
/** Batches the loop takes on its own thread before it yields to Deno's event loop. */
const STREAK = 16;
/** …or milliseconds (whichever comes first). */
const YIELD_MS = 2;
/** How long a busy loop waits on its own thread for the next event before yielding. */
const BUSY_WAIT_MS = 1;
/**
 * Socket reads one round of the loop (one batch of events) grants before the next
 * reads wait for the next round: about a millisecond of work.
 */
const ROUND_READS = 64;
/** Pending connections the kernel queues per listener (Deno and Go use this too). */
const BACKLOG = 511;

/** Something registered with the loop: told the epoll events of its descriptor. */
interface Pollable {
  ready(events: number): void;
}

/** The one epoll set of the process and the loop that waits on it. */
class Poller {
  #ep = -1;
  #wakeRead = -1;
  #wakeWrite = -1;
  #targets = new Map<number, Pollable>();
  #events = new Uint8Array(BATCH * 12);
  #view = new DataView(this.#events.buffer);
  #running: Promise<void> | undefined;
  /** Reads left in this round (see {@link mayRead}). */
  #readsLeft = ROUND_READS;
  /** Connections whose read was put off to the next round. */
  #deferred: TcpConn[] = [];
  /** True while the loop waits for events without a time limit. */
  #blocked = false;
  #drain = new Uint8Array(64);
  #wakeByte = new Uint8Array(1);

  /** Watches `fd` for `events` (edge-triggered unless `level`); throws on failure. */
  add(fd: number, target: Pollable, options: { level?: boolean } = {}): void {
    if (this.#ep < 0) this.#open();
    const events = READABLE | WRITABLE | (options.level ? 0 : EPOLLET);
    const r = epollCtlNow(this.#ep, EPOLL_CTL_ADD, fd, events);
    if (r < 0) throw new Error(`cannot watch socket ${fd}: ${strerror(-r)}`);
    this.#targets.set(fd, target);
    this.#running ??= this.#run();
  }

  /** Forgets and closes `fd` (closing also takes it out of the epoll set). */
  release(fd: number): void {
    close(fd);
    if (!this.#targets.delete(fd)) return;
    if (this.#targets.size === 0) writeNow(this.#wakeWrite, this.#wakeByte);
  }

  /** Resolves when the loop has stopped (nothing registered). */
  idle(): Promise<void> {
    return this.#running ?? Promise.resolve();
  }

  #open(): void {
    this.#ep = epollCreate();
    const [r, w] = pipeNow(O_NONBLOCK | O_CLOEXEC);
    if (r < 0) throw new Error(`cannot open the epoll wake pipe: ${strerror(-r)}`);
    this.#wakeRead = r;
    this.#wakeWrite = w;
    const added = epollCtlNow(this.#ep, EPOLL_CTL_ADD, r, EPOLLIN);
    if (added < 0) throw new Error(`cannot watch the epoll wake pipe: ${strerror(-added)}`);
  }

  async #run(): Promise<void> {
    try {
      let streak = 0;
      let since = 0;
      while (this.#targets.size > 0) {
        // Busy: take what is ready on this thread and let the batch run (its
        // microtasks) before looking again; after a streak of batches or a few ms, or
        // when nothing is ready, wait through Deno's event loop so that timers and
        // other I/O (VRRP adverts, health checks, the admin API) get their turn. With
        // reads put off to the next round, that wait must not block.
        if (streak < STREAK && Date.now() - since <= YIELD_MS) {
          let ready = epollWaitNow(this.#ep, this.#events);
          if (ready === 0 && streak > 0 && this.#deferred.length === 0) {
            // busy, but the peers have not answered yet: a short wait here costs less
            // than handing the wait to another thread on the same core and back
            ready = epollWaitNow(this.#ep, this.#events, { timeoutMs: BUSY_WAIT_MS });
          }
          if (ready > 0 || this.#deferred.length > 0) {
            streak++;
            this.#round(ready);
            await undefined;
            continue;
          }
        }
        streak = 0;
        this.#blocked = this.#deferred.length === 0;
        const n = await epollWait(this.#ep, this.#events, this.#blocked ? -1 : 0);
        this.#blocked = false;
        since = Date.now();
        if (n < 0) await new Promise((r) => setTimeout(r, 10)); // EINTR or worse: no spin
        else this.#round(n);
      }
    } finally {
      this.#running = undefined;
    }
  }

  /**
   * True when `conn` may read now: a round grants {@link ROUND_READS} reads. Past them
   * a read is put off to the next round (the connection is told it is readable then):
   * a chain of exchanges whose peers answer at once (read a request, forward it, read
   * the answer, read the next request…) runs on microtasks and would otherwise keep
   * the loop from ever taking the next batch, while the other connections wait.
   */
  mayRead(conn: TcpConn): boolean {
    if (this.#readsLeft > 0) {
      this.#readsLeft--;
      return true;
    }
    if (!conn.deferred) {
      conn.deferred = true;
      this.#deferred.push(conn);
      // put off from outside a round while the loop sleeps: wake it for the next one
      if (this.#blocked && this.#deferred.length === 1) writeNow(this.#wakeWrite, this.#wakeByte);
    }
    return false;
  }

  /** A new round: wakes the reads put off in the last one, then the `n` new events. */
  #round(n: number): void {
    this.#readsLeft = ROUND_READS;
    const deferred = this.#deferred;
    if (deferred.length > 0) {
      this.#deferred = [];
      for (const conn of deferred) {
        conn.deferred = false;
        conn.ready(EPOLLIN);
      }
    }
    this.#dispatch(n);
  }

  #dispatch(n: number): void {
    const view = this.#view;
    for (let i = 0; i < n; i++) {
      const fd = view.getInt32(i * 12 + 4, true);
      if (fd === this.#wakeRead) {
        while (readNow(fd, this.#drain) > 0) { /* drained */ }
        continue;
      }
      const target = this.#targets.get(fd);
      if (target === undefined) continue; // closed while the batch was out
      try {
        target.ready(view.getUint32(i * 12, true));
      } catch {
        // one socket's failure must not stop the others
      }
    }
  }
}

const poller = new Poller();

let reads = 0;

/** Read system calls the connections of this process have made so far. */
export function tcpReads(): number {
  return reads;
}

/** True when the sockets of this module can be used (FFI allowed, Linux libc). */
export function tcpAvailable(): boolean {
  return ffiAvailable();
}

/** Resolves once no socket of this module is open and its loop has stopped. */
export function tcpIdle(): Promise<void> {
  return poller.idle();
}

/** Address of a socket, shaped like `Deno.NetAddr`. */
export interface TcpAddr {
  readonly transport: "tcp";
  readonly hostname: string;
  readonly port: number;
}

function sockaddr(hostname: string, port: number): Uint8Array<ArrayBuffer> {
  const family = ipFamily(hostname);
  if (family === undefined) {
    throw new Error(`"${hostname}" is not an IP address; sys/tcp sockets take IP literals`);
  }
  const ip = ipBytes(hostname);
  const out = new Uint8Array(family === 4 ? 16 : 28);
  const view = new DataView(out.buffer);
  view.setUint16(0, family === 4 ? AF_INET : AF_INET6, true);
  view.setUint16(2, port);
  out.set(ip, family === 4 ? 4 : 8);
  return out;
}

function addrOf(raw: Uint8Array): TcpAddr {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  const family = view.getUint16(0, true);
  const port = view.getUint16(2);
  const hostname = family === AF_INET6
    ? formatIp(raw.subarray(8, 24))
    : formatIp(raw.subarray(4, 8));
  return { transport: "tcp", hostname, port };
}

function failure(call: string, errno: number): Error {
  return new Error(`${call}: ${strerror(errno)} (os error ${errno})`);
}

/** A connected nonblocking TCP socket with `Deno.Conn`-like `read`/`write`/`close`. */
export class TcpConn implements Pollable {
  #fd: number;
  #readWaiter: (() => void) | undefined;
  #writeWaiter: (() => void) | undefined;
  /**
   * False after a read found the socket drained (a short read or `EAGAIN`) until the
   * next readable edge: a read then would only return `EAGAIN`, so it is not made (as
   * nginx's `ready` flag). Stays true once the peer closed or the socket failed, whose
   * edge has been reported already.
   */
  #readable = true;
  #ended = false;
  /** Whether the loop holds a put-off read of this connection (its bookkeeping). */
  deferred = false;
  /** The peer's address. */
  readonly remoteAddr: TcpAddr;

  /** Wraps a connected nonblocking socket (owned from now on) and registers it. */
  constructor(fd: number, remoteAddr: TcpAddr) {
    this.#fd = fd;
    this.remoteAddr = remoteAddr;
    poller.add(fd, this);
  }

  /** The descriptor (-1 once closed). */
  get fd(): number {
    return this.#fd;
  }

  /** Called by the loop with the socket's epoll events. */
  ready(events: number): void {
    if (events & READABLE) {
      this.#readable = true;
      if (events & ENDED) this.#ended = true;
    }
    if (events & READABLE && this.#readWaiter) {
      const wake = this.#readWaiter;
      this.#readWaiter = undefined;
      wake();
    }
    if (events & WRITABLE && this.#writeWaiter) {
      const wake = this.#writeWaiter;
      this.#writeWaiter = undefined;
      wake();
    }
  }

  /**
   * Reads what is there now into `p`: the byte count, 0 at end of stream (for a
   * non-empty `p`), -1 when nothing is there yet or the loop's round has no read left
   * ({@link whenReadable} waits for the next). Throws when the connection failed or
   * was closed here.
   */
  tryRead(p: Uint8Array): number {
    if (this.#fd >= 0 && (!this.#readable || !poller.mayRead(this))) return -1;
    while (true) {
      if (this.#fd < 0) throw new Error("the connection was closed");
      const n = readNow(this.#fd, p as Uint8Array<ArrayBuffer>);
      reads++;
      if (n >= 0) {
        if (n > 0 && n < p.byteLength && !this.#ended) this.#readable = false;
        return n;
      }
      if (n === -EAGAIN) {
        if (!this.#ended) this.#readable = false;
        return -1;
      }
      if (n !== -EINTR) throw failure("read", -n);
    }
  }

  /**
   * Writes what the socket takes now: the byte count (0 when its buffer is full;
   * {@link whenWritable} waits). Throws when the connection failed or was closed here.
   */
  tryWrite(p: Uint8Array): number {
    while (true) {
      if (this.#fd < 0) throw new Error("the connection was closed");
      const n = sendNow(this.#fd, p as Uint8Array<ArrayBuffer>);
      if (n >= 0) return n;
      if (n === -EAGAIN) return 0;
      if (n !== -EINTR) throw failure("write", -n);
    }
  }

  /** Resolves at the next readiness to read (or error, or local close). */
  whenReadable(): Promise<void> {
    return new Promise<void>((resolve) => this.#readWaiter = resolve);
  }

  /** Resolves at the next readiness to write (or error, or local close). */
  whenWritable(): Promise<void> {
    return new Promise<void>((resolve) => this.#writeWaiter = resolve);
  }

  /**
   * Reads into `p`: the byte count, `null` at end of stream. Throws when the
   * connection fails or is closed locally meanwhile.
   */
  async read(p: Uint8Array): Promise<number | null> {
    while (true) {
      const n = this.tryRead(p);
      if (n > 0) return n;
      if (n === 0) return p.byteLength === 0 ? 0 : null;
      await this.whenReadable();
    }
  }

  /** Writes some of `p` once the socket can take it: the byte count written. */
  async write(p: Uint8Array): Promise<number> {
    while (true) {
      const n = this.tryWrite(p);
      if (n > 0 || p.byteLength === 0) return n;
      await this.whenWritable();
    }
  }

  /** Sets or clears `TCP_NODELAY`. */
  setNoDelay(on = true): void {
    if (this.#fd >= 0) setIntOptionNow(this.#fd, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0);
  }

  /** Closes the socket; a read or write waiting on it throws. */
  close(): void {
    const fd = this.#fd;
    if (fd < 0) return;
    this.#fd = -1;
    poller.release(fd);
    this.ready(READABLE | WRITABLE);
  }

  /** Connect completion: waits until writable, then reads `SO_ERROR`. */
  async connected(): Promise<number> {
    while (this.#fd >= 0) {
      const err = socketError(this.#fd);
      if (err !== 0) return err;
      // writable with no error: connected; a zero-length send tells in-progress apart
      const n = sendNow(this.#fd, EMPTY);
      if (n >= 0) return 0;
      if (-n !== EAGAIN) return -n;
      await this.whenWritable();
    }
    return 9; // EBADF: closed while connecting
  }
}

const EMPTY = new Uint8Array(0);

/** A listening TCP socket with a `Deno.Listener`-like `accept`. */
export class TcpListener implements Pollable {
  #fd: number;
  #waiter: (() => void) | undefined;
  #addr = new Uint8Array(28);
  #addrLen = new Uint8Array(4);
  #lenView = new DataView(this.#addrLen.buffer);
  /** The bound address. */
  readonly addr: TcpAddr;

  constructor(fd: number, addr: TcpAddr) {
    this.#fd = fd;
    this.addr = addr;
    poller.add(fd, this, { level: true });
  }

  /** Called by the loop with the socket's epoll events. */
  ready(): void {
    const wake = this.#waiter;
    this.#waiter = undefined;
    wake?.();
  }

  /** The next connection (nonblocking, `TCP_NODELAY` set); throws once closed. */
  async accept(): Promise<TcpConn> {
    while (true) {
      if (this.#fd < 0) throw new Error("the listener was closed");
      this.#lenView.setUint32(0, this.#addr.byteLength, true);
      const fd = acceptNow(this.#fd, this.#addr, this.#addrLen);
      if (fd >= 0) {
        setIntOptionNow(fd, IPPROTO_TCP, TCP_NODELAY, 1);
        return new TcpConn(fd, addrOf(this.#addr));
      }
      if (fd === -EAGAIN) {
        await new Promise<void>((resolve) => this.#waiter = resolve);
      } else if (fd !== -EINTR) throw failure("accept", -fd);
    }
  }

  /** Stops listening; a waiting `accept` throws. */
  close(): void {
    const fd = this.#fd;
    if (fd < 0) return;
    this.#fd = -1;
    poller.release(fd);
    this.ready();
  }
}

/**
 * Listens on `hostname:port` (an IP literal; port 0 picks one). Throws with the
 * system's reason (e.g. "Address already in use") when it cannot. `::` takes IPv4
 * clients too unless the host's `net.ipv6.bindv6only` says otherwise (as with Deno's
 * and Rust's listeners).
 */
export function listenTcp(where: { hostname: string; port: number }): TcpListener {
  const sa = sockaddr(where.hostname, where.port);
  const family = sa.byteLength === 16 ? AF_INET : AF_INET6;
  const fd = socketNow(family, SOCK_STREAM | SOCK_NONBLOCK);
  if (fd < 0) throw failure("socket", -fd);
  try {
    setIntOptionNow(fd, SOL_SOCKET, SO_REUSEADDR, 1);
    let r = bindNow(fd, sa);
    if (r < 0) throw failure("bind", -r);
    r = listenNow(fd, BACKLOG);
    if (r < 0) throw failure("listen", -r);
    return new TcpListener(fd, addrOf(getsockname(fd)));
  } catch (err) {
    close(fd);
    throw err;
  }
}

/**
 * Connects to `hostname:port` (an IP literal) with `TCP_NODELAY`, failing after
 * `timeout` ms with "no answer within N ms" (the socket is closed then).
 */
export async function connectTcp(
  where: { hostname: string; port: number },
  options: { timeout: number },
): Promise<TcpConn> {
  const sa = sockaddr(where.hostname, where.port);
  const fd = socketNow(sa.byteLength === 16 ? AF_INET : AF_INET6, SOCK_STREAM | SOCK_NONBLOCK);
  if (fd < 0) throw failure("socket", -fd);
  setIntOptionNow(fd, IPPROTO_TCP, TCP_NODELAY, 1);
  const started = connectNow(fd, sa);
  if (started !== 0 && started !== EINPROGRESS) {
    close(fd);
    throw failure("connect", started);
  }
  const conn = new TcpConn(fd, { transport: "tcp", hostname: where.hostname, port: where.port });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    conn.close();
  }, options.timeout);
  try {
    const err = started === 0 ? 0 : await conn.connected();
    if (timedOut) throw new Error(`no answer within ${options.timeout} ms`);
    if (err !== 0) {
      conn.close();
      throw failure("connect", err);
    }
    return conn;
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------- splice between two sockets

/** Bytes a splice pipe holds (the kernel's default pipe size). */
const PIPE_BYTES = 65536;
/** Empty pipes kept for the next splice. */
const PIPES_KEPT = 64;
const pipes: [number, number][] = [];
const SPLICE_FLAGS = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
let spliced = 0;

/** Bytes moved by {@link spliceExactly} in this process so far. */
export function splicedBytes(): number {
  return spliced;
}

/** Which side of a splice failed. */
export class SpliceError extends Error {
  /** `source`: the socket read from (ended early or failed); `destination`: written to. */
  readonly side: "source" | "destination";
  /** A failure of `side`, with the system's reason. */
  constructor(side: "source" | "destination", message: string) {
    super(message);
    this.name = "SpliceError";
    this.side = side;
  }
}

/**
 * Moves exactly `length` bytes from `src` to `dst` inside the kernel (socket → pipe →
 * socket, never copied to JavaScript), waiting for each side as needed. Throws
 * {@link SpliceError} naming the side when `src` ends early or either side fails.
 * `options.progress.refresh()` runs after each chunk read (to push back a timeout).
 */
export async function spliceExactly(
  src: TcpConn,
  dst: TcpConn,
  options: { length: number; progress?: { refresh(): void } },
): Promise<void> {
  let pipe = pipes.pop();
  if (!pipe) {
    const [r, w] = pipeNow(O_NONBLOCK | O_CLOEXEC);
    if (r < 0) throw new SpliceError("destination", `cannot open a pipe: ${strerror(-r)}`);
    pipe = [r, w];
  }
  let left = options.length;
  let inPipe = 0;
  try {
    while (left > 0 || inPipe > 0) {
      let moved = false;
      if (left > 0 && inPipe < PIPE_BYTES && poller.mayRead(src)) {
        if (src.fd < 0) throw new SpliceError("source", "the connection was closed");
        const n = spliceNow(src.fd, pipe[1], Math.min(left, PIPE_BYTES - inPipe), SPLICE_FLAGS);
        if (n > 0) {
          left -= n;
          inPipe += n;
          moved = true;
          options.progress?.refresh();
        } else if (n === 0) {
          throw new SpliceError("source", `closed with ${left} bytes still to come`);
        } else if (n !== -EAGAIN && n !== -EINTR) {
          throw new SpliceError("source", `${strerror(-n)} (os error ${-n})`);
        }
      }
      if (inPipe > 0) {
        if (dst.fd < 0) throw new SpliceError("destination", "the connection was closed");
        const n = spliceNow(pipe[0], dst.fd, inPipe, SPLICE_FLAGS);
        if (n > 0) {
          inPipe -= n;
          spliced += n;
          moved = true;
        } else if (n !== -EAGAIN && n !== -EINTR) {
          throw new SpliceError("destination", `${strerror(-n)} (os error ${-n})`);
        }
      }
      // neither side could move: wait for the one that blocks (the pipe drains first)
      if (!moved) await (inPipe > 0 ? dst.whenWritable() : src.whenReadable());
    }
  } catch (err) {
    close(pipe[0]);
    close(pipe[1]);
    throw err;
  }
  if (pipes.length < PIPES_KEPT) pipes.push(pipe);
  else {
    close(pipe[0]);
    close(pipe[1]);
  }
}
