/**
 * A TCP checker for thousands of servers: nonblocking connects through libc, all
 * pending connects polled together on one short timer, each connection ended with an
 * RST (HAProxy's checks do the same) so no TIME_WAIT piles up. Sockets hold back the
 * handshake's last ACK ({@link delayAckNow}), so the RST comes first and the server
 * never accepts a check's connection (no accept, no wake-up, nothing in its logs). A socket whose connect
 * succeeded is disconnected with `connect(AF_UNSPEC)` (which sends the RST) and kept,
 * one per target, for that target's next check: a check then costs a connect, a share
 * of a poll and a disconnect. Sockets are closed when a target is
 * {@link TcpBatchChecker.release released} or the checker is closed. Falls back to
 * {@link checkTcp} where FFI is not allowed.
 * @module
 */
import { ipBytes } from "../config/address.ts";
import {
  AF_INET,
  AF_INET6,
  closeAbortive,
  connectNow,
  delayAckNow,
  EINPROGRESS,
  ffiAvailable,
  POLLERR,
  POLLHUP,
  pollNow,
  POLLOUT,
  SOCK_NONBLOCK,
  SOCK_STREAM,
  socket,
  socketError,
  strerror,
} from "../sys/libc.ts";
import type { CheckOutcome } from "./machine.ts";
import { timeoutReason } from "./reason.ts";
import { checkTcp, type ProbeOptions, type Target } from "./tcp.ts";

/** Called once with a connect's outcome. */
export type TcpDone = (outcome: CheckOutcome) => void;

/** One target's cached address and the socket kept for its next check (-1: none). */
interface Slot {
  readonly addr: Uint8Array<ArrayBuffer>;
  idle: number;
  /** Released or dropped from the cache: sockets coming back are closed, not kept. */
  dead: boolean;
}

/** A connect under way; recycled once finished, so a check allocates nothing here. */
interface Pending {
  fd: number;
  slot: Slot;
  deadline: number;
  timeout: number;
  done: TcpDone;
  signal?: AbortSignal;
}

/** `struct sockaddr` with family `AF_UNSPEC`: connecting to it disconnects a socket. */
const UNSPEC = new Uint8Array(16);

const ECONNREFUSED = 111;
const ECONNRESET = 104;
const ETIMEDOUT = 110;
const ENETUNREACH = 101;
const EHOSTUNREACH = 113;

/** The reason for a connect that failed with `errno`. */
export function errnoReason(errno: number): string {
  switch (errno) {
    case ECONNREFUSED:
      return "connect refused";
    case ECONNRESET:
      return "connection reset";
    case ETIMEDOUT:
      return "connect timed out";
    case ENETUNREACH:
    case EHOSTUNREACH:
      return `unreachable: ${strerror(errno)}`;
    default:
      return `connect failed: ${strerror(errno)}`;
  }
}

/** Builds a `sockaddr_in` or `sockaddr_in6` for `host:port`. */
export function sockaddr(host: string, port: number): Uint8Array<ArrayBuffer> {
  const ip = ipBytes(host);
  const v6 = ip.length === 16;
  const buf = new Uint8Array(v6 ? 28 : 16);
  const view = new DataView(buf.buffer);
  view.setUint16(0, v6 ? AF_INET6 : AF_INET, true);
  view.setUint16(2, port, false);
  buf.set(ip, v6 ? 8 : 4);
  return buf;
}

const SUCCESS: CheckOutcome = { ok: true, reason: "connected" };
const STOPPED: CheckOutcome = { ok: false, reason: "check stopped" };

/** Runs TCP checks with batched nonblocking connects. */
export class TcpBatchChecker {
  #pending: Pending[] = [];
  #spare: Pending[] = [];
  /** Finished {@link Pending} records for reuse. */
  #free: Pending[] = [];
  #timer?: ReturnType<typeof setTimeout>;
  #slots = new Map<string, Map<number, Slot>>();
  #slotCount = 0;
  #pollfds = new Uint8Array(8 * 64);
  /** Views of {@link TcpBatchChecker.#pollfds}: fd+events as i32 pairs, revents as i16. */
  #words = new Int32Array(this.#pollfds.buffer);
  #halves = new Int16Array(this.#pollfds.buffer);
  #failures = new Map<number, CheckOutcome>();
  #timeouts = new Map<number, CheckOutcome>();
  readonly #tick: number;

  /** `tick`: ms between polls of pending connects (a check's result is late by at most this). */
  constructor(options: { tick?: number } = {}) {
    this.#tick = options.tick ?? 5;
  }

  /** How many connects are under way. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Runs one check. Never throws. */
  check(target: Target, options: ProbeOptions): Promise<CheckOutcome> {
    return new Promise((resolve) => {
      this.start(target, options, resolve);
      if (this.#pending.length) this.#timer ??= setTimeout(() => this.#pollTimer(), this.#tick);
    });
  }

  /**
   * Starts one check and calls `done` with its outcome exactly once: at once when the
   * connect fails or completes on the spot, else from a later {@link poll} (the caller
   * polls, typically on its own timer; {@link check} arms one itself). Never throws.
   */
  start(target: Target, options: ProbeOptions, done: TcpDone): void {
    if (options.signal?.aborted) return done(STOPPED);
    const slot = this.#slot(target.host, target.port);
    const addr = slot.addr;
    let fd = slot.idle;
    let errno = -1;
    if (fd >= 0) {
      slot.idle = -1;
      errno = connectNow(fd, addr);
      if (errno !== 0 && errno !== EINPROGRESS) {
        // Whatever the kept socket's trouble, a fresh socket gives the real answer.
        closeAbortive(fd);
        fd = -1;
      }
    }
    if (fd < 0) {
      try {
        fd = socket(addr.length === 28 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
      } catch (error) {
        return done({ ok: false, reason: `socket failed: ${(error as Error).message}` });
      }
      delayAckNow(fd);
      errno = connectNow(fd, addr);
    }
    if (errno === 0) {
      this.#connected(fd, slot);
      return done(SUCCESS);
    }
    if (errno !== EINPROGRESS) {
      closeAbortive(fd);
      return done(this.#failure(errno));
    }
    const p = this.#free.pop();
    const deadline = performance.now() + options.timeout;
    if (p) {
      p.fd = fd;
      p.slot = slot;
      p.deadline = deadline;
      p.timeout = options.timeout;
      p.done = done;
      p.signal = options.signal;
      this.#pending.push(p);
    } else {
      this.#pending.push({
        fd,
        slot,
        deadline,
        timeout: options.timeout,
        done,
        signal: options.signal,
      });
    }
  }

  /**
   * Closes the socket kept for `target`'s next check, if any, and forgets its address
   * (call when a server is removed or its check moves elsewhere). A check of it still
   * under way closes its socket when it ends.
   */
  release(target: Target): void {
    const ports = this.#slots.get(target.host);
    const slot = ports?.get(target.port);
    if (!ports || !slot) return;
    ports.delete(target.port);
    if (ports.size === 0) this.#slots.delete(target.host);
    this.#slotCount--;
    this.#drop(slot);
  }

  /** How many sockets are kept between checks. */
  get idle(): number {
    let n = 0;
    for (const ports of this.#slots.values()) {
      for (const slot of ports.values()) if (slot.idle >= 0) n++;
    }
    return n;
  }

  #drop(slot: Slot): void {
    slot.dead = true;
    if (slot.idle >= 0) closeAbortive(slot.idle);
    slot.idle = -1;
  }

  #dropAll(): void {
    for (const ports of this.#slots.values()) {
      for (const slot of ports.values()) this.#drop(slot);
    }
    this.#slots.clear();
    this.#slotCount = 0;
  }

  /** Ends a connected socket's connection with an RST and keeps it for the target's next check. */
  #connected(fd: number, slot: Slot): void {
    if (slot.dead || slot.idle >= 0 || connectNow(fd, UNSPEC) !== 0) closeAbortive(fd);
    else slot.idle = fd;
  }

  #slot(host: string, port: number): Slot {
    let ports = this.#slots.get(host);
    if (!ports) {
      if (this.#slotCount > 100_000) this.#dropAll();
      ports = new Map();
      this.#slots.set(host, ports);
    }
    let slot = ports.get(port);
    if (!slot) {
      slot = { addr: sockaddr(host, port), idle: -1, dead: false };
      ports.set(port, slot);
      this.#slotCount++;
    }
    return slot;
  }

  #failure(errno: number): CheckOutcome {
    let outcome = this.#failures.get(errno);
    if (!outcome) {
      outcome = { ok: false, reason: errnoReason(errno) };
      this.#failures.set(errno, outcome);
    }
    return outcome;
  }

  #timeout(ms: number): CheckOutcome {
    let outcome = this.#timeouts.get(ms);
    if (!outcome) {
      outcome = { ok: false, reason: timeoutReason(ms) };
      if (this.#timeouts.size > 1000) this.#timeouts.clear();
      this.#timeouts.set(ms, outcome);
    }
    return outcome;
  }

  #pollTimer(): void {
    this.#timer = undefined;
    this.poll();
    if (this.#pending.length) this.#timer = setTimeout(() => this.#pollTimer(), this.#tick);
  }

  /**
   * Polls every pending connect once without waiting and finishes those that
   * completed, failed, were aborted or ran out of time. Returns how many remain.
   */
  poll(): number {
    const list = this.#pending;
    const n = list.length;
    if (n === 0) return 0;
    if (this.#pollfds.length < n * 8) {
      this.#pollfds = new Uint8Array(n * 16);
      this.#words = new Int32Array(this.#pollfds.buffer);
      this.#halves = new Int16Array(this.#pollfds.buffer);
    }
    const pfd = this.#pollfds.subarray(0, n * 8);
    const words = this.#words;
    for (let i = 0; i < n; i++) {
      words[i * 2] = list[i].fd;
      words[i * 2 + 1] = POLLOUT; // events = POLLOUT, revents = 0 (little-endian)
    }
    const ready = pollNow(pfd);
    const now = performance.now();
    // A callback may start new checks: they land on a fresh list, polled next time.
    const still = this.#spare;
    this.#pending = still;
    const flags = this.#halves;
    const free = this.#free;
    for (let i = 0; i < n; i++) {
      const p = list[i];
      const revents = ready > 0 ? flags[i * 4 + 3] : 0;
      let outcome: CheckOutcome;
      if (revents & (POLLERR | POLLHUP)) {
        const err = socketError(p.fd);
        closeAbortive(p.fd);
        outcome = err === 0 ? SUCCESS : this.#failure(err);
      } else if (revents & POLLOUT) {
        this.#connected(p.fd, p.slot);
        outcome = SUCCESS;
      } else if (p.signal?.aborted) {
        closeAbortive(p.fd);
        outcome = STOPPED;
      } else if (now >= p.deadline) {
        closeAbortive(p.fd);
        outcome = this.#timeout(p.timeout);
      } else {
        still.push(p);
        continue;
      }
      this.#finish(p, outcome, free);
    }
    list.length = 0;
    this.#spare = list;
    if (this.#pending !== still) {
      // A callback closed the checker: what was still under way is stopped too.
      for (const p of still.splice(0)) {
        closeAbortive(p.fd);
        p.done(STOPPED);
      }
    }
    return this.#pending.length;
  }

  /** Recycles `p` and then calls its callback (which may start a check reusing it). */
  #finish(p: Pending, outcome: CheckOutcome, free: Pending[]): void {
    const done = p.done;
    p.signal = undefined;
    free.push(p);
    done(outcome);
  }

  /** Fails every pending connect as stopped and closes every socket, kept ones too. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const list = this.#pending;
    this.#pending = [];
    this.#dropAll();
    for (const p of list) {
      closeAbortive(p.fd);
      p.done(STOPPED);
    }
  }
}

/** A TCP check function and, when FFI is allowed, the batch behind it. */
export interface TcpChecker {
  check: (target: Target, options: ProbeOptions) => Promise<CheckOutcome>;
  close: () => void;
  /** The shared batch (FFI allowed): callers may {@link TcpBatchChecker.start} and poll it directly. */
  batch?: TcpBatchChecker;
}

/**
 * A TCP check function backed by one shared {@link TcpBatchChecker} when FFI is
 * allowed, else by `Deno.connect`.
 */
export function tcpChecker(): TcpChecker {
  if (!ffiAvailable()) return { check: checkTcp, close: () => {} };
  const batch = new TcpBatchChecker();
  return { check: (t, o) => batch.check(t, o), close: () => batch.close(), batch };
}
