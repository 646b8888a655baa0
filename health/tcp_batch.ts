/**
 * A TCP checker for thousands of servers: nonblocking connects through libc, all
 * pending connects polled together on one short timer, each socket closed with an
 * RST (HAProxy's checks do the same) so no TIME_WAIT piles up. About a fifth of the
 * CPU of `Deno.connect` per check. Falls back to {@link checkTcp} where FFI is not
 * allowed.
 * @module
 */
import { ipBytes } from "../config/address.ts";
import {
  AF_INET,
  AF_INET6,
  closeAbortive,
  connectNow,
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

interface Pending {
  readonly fd: number;
  readonly deadline: number;
  readonly timeout: number;
  readonly resolve: (outcome: CheckOutcome) => void;
  readonly signal?: AbortSignal;
}

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

/** Runs TCP checks with batched nonblocking connects. */
export class TcpBatchChecker {
  #pending: Pending[] = [];
  #timer?: ReturnType<typeof setTimeout>;
  #addrs = new Map<string, Uint8Array<ArrayBuffer>>();
  #pollfds = new Uint8Array(8 * 64);
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
    if (options.signal?.aborted) return Promise.resolve({ ok: false, reason: "check stopped" });
    const key = `${target.host}|${target.port}`;
    let addr = this.#addrs.get(key);
    if (!addr) {
      addr = sockaddr(target.host, target.port);
      if (this.#addrs.size > 100_000) this.#addrs.clear();
      this.#addrs.set(key, addr);
    }
    let fd: number;
    try {
      fd = socket(addr.length === 28 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    } catch (error) {
      return Promise.resolve({ ok: false, reason: `socket failed: ${(error as Error).message}` });
    }
    const errno = connectNow(fd, addr);
    if (errno === 0) {
      closeAbortive(fd);
      return Promise.resolve(SUCCESS);
    }
    if (errno !== EINPROGRESS) {
      closeAbortive(fd);
      return Promise.resolve({ ok: false, reason: errnoReason(errno) });
    }
    return new Promise((resolve) => {
      this.#pending.push({
        fd,
        deadline: performance.now() + options.timeout,
        timeout: options.timeout,
        resolve,
        signal: options.signal,
      });
      this.#timer ??= setTimeout(() => this.#poll(), this.#tick);
    });
  }

  #poll(): void {
    this.#timer = undefined;
    const list = this.#pending;
    if (this.#pollfds.length < list.length * 8) {
      this.#pollfds = new Uint8Array(list.length * 16);
    }
    const pfd = this.#pollfds.subarray(0, list.length * 8);
    const view = new DataView(pfd.buffer, pfd.byteOffset, pfd.byteLength);
    for (let i = 0; i < list.length; i++) {
      view.setInt32(i * 8, list[i].fd, true);
      view.setInt16(i * 8 + 4, POLLOUT, true);
      view.setInt16(i * 8 + 6, 0, true);
    }
    pollNow(pfd);
    const now = performance.now();
    const still: Pending[] = [];
    for (let i = 0; i < list.length; i++) {
      const p = list[i];
      const revents = view.getInt16(i * 8 + 6, true);
      if (revents & (POLLOUT | POLLERR | POLLHUP)) {
        const err = socketError(p.fd);
        closeAbortive(p.fd);
        p.resolve(err === 0 ? SUCCESS : { ok: false, reason: errnoReason(err) });
      } else if (p.signal?.aborted) {
        closeAbortive(p.fd);
        p.resolve({ ok: false, reason: "check stopped" });
      } else if (now >= p.deadline) {
        closeAbortive(p.fd);
        p.resolve({ ok: false, reason: timeoutReason(p.timeout) });
      } else {
        still.push(p);
      }
    }
    this.#pending = still;
    if (still.length) this.#timer = setTimeout(() => this.#poll(), this.#tick);
  }

  /** Fails every pending connect as stopped and closes its socket. */
  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const p of this.#pending) {
      closeAbortive(p.fd);
      p.resolve({ ok: false, reason: "check stopped" });
    }
    this.#pending = [];
  }
}

/**
 * A TCP check function backed by one shared {@link TcpBatchChecker} when FFI is
 * allowed, else by `Deno.connect`.
 */
export function tcpChecker(): {
  check: (target: Target, options: ProbeOptions) => Promise<CheckOutcome>;
  close: () => void;
} {
  if (!ffiAvailable()) return { check: checkTcp, close: () => {} };
  const batch = new TcpBatchChecker();
  return { check: (t, o) => batch.check(t, o), close: () => batch.close() };
}
