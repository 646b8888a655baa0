/**
 * Kernel splice(2) between two connected TCP sockets: bytes move socket → pipe →
 * socket inside the kernel, never copied to JavaScript (what HAProxy does for
 * `mode tcp`). One {@link SplicePair} carries both directions of one connection.
 *
 * The sockets are nonblocking; splices run synchronously on the main thread until
 * they would block, and one `poll()` per pair waits on Deno's blocking thread pool
 * for the next readiness (so each pair holds one pool thread while idle: callers cap
 * the number of pairs with {@link spliceSlots}). A wake pipe ends that wait when the
 * owner closes the pair. Half-close is passed on (end of input → `shutdown(SHUT_WR)`
 * of the other side), and an error on one side resets the other, as the JS path does.
 *
 * The pair owns the two socket descriptors it is given (dups of the owner's), the
 * pipes and the wake pipe, and closes them all at the end.
 * @module
 */
import {
  close,
  F_SETPIPE_SZ,
  fcntlNow,
  ffiAvailable,
  lingerZeroNow,
  O_CLOEXEC,
  O_NONBLOCK,
  pipeNow,
  POLLIN,
  POLLOUT,
  pollWait,
  readNow,
  SHUT_WR,
  shutdownNow,
  SPLICE_F_MOVE,
  SPLICE_F_NONBLOCK,
  spliceNow,
  writeNow,
} from "./libc.ts";

const EAGAIN = 11;
const FLAGS = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;
/** Splices per direction before yielding to the event loop (re-armed by poll). */
const BUDGET = 64;

/** Which socket of a pair: 0 = `a`, 1 = `b`. */
export type Side = 0 | 1;

/** How a pair ended. */
export interface SpliceEnd {
  /** The side whose socket failed (reset, broken pipe); its peer was reset. */
  readonly failed?: Side;
  /** errno of that failure. */
  readonly errno?: number;
  /** True when the owner closed the pair ({@link SplicePair.close}). */
  readonly closed: boolean;
  /** True when the owner asked for a reset of both sides. */
  readonly reset: boolean;
}

/** What a pair tells its owner. */
export interface SpliceHooks {
  /** `bytes` arrived from `from` in `chunks` reads and were passed to the other side. */
  onBytes(from: Side, bytes: number, chunks: number): void;
  /** `from` ended its sending (FIN); the other side was shut for writing. */
  onEnd(from: Side): void;
  /**
   * The pair is over and its descriptors are closed: both directions ended, a side
   * failed, or the owner closed it. The owner now closes its own sockets (with an RST
   * for the failed side's peer or when `reset`).
   */
  onDone(end: SpliceEnd): void;
}

/** Limits and sizes of spliced connections. */
export interface SpliceOptions {
  /** Pipe capacity per direction in bytes (rounded by the kernel); 256 KiB by default. */
  pipeSize?: number;
}

/** The process-wide count of pairs and the cap on them. */
export interface SpliceSlots {
  /** Pairs open now. */
  active: number;
  /** Pairs opened since start. */
  opened: number;
  /** Connections that asked for a pair and were refused (cap reached, no pipes). */
  refused: number;
  /** At most this many pairs at once (each holds a pool thread while it waits). */
  max: number;
}

/** The process-wide slot counters (read for status; `max` may be lowered by tests). */
export const spliceSlots: SpliceSlots = { active: 0, opened: 0, refused: 0, max: 64 };

let available: boolean | undefined;

/** True when splice can be used here: Linux with FFI allowed. */
export function spliceAvailable(): boolean {
  if (available === undefined) available = Deno.build.os === "linux" && ffiAvailable();
  return available;
}

interface Direction {
  readonly from: Side;
  readonly src: number;
  readonly dst: number;
  readonly pipeR: number;
  readonly pipeW: number;
  readonly cap: number;
  inPipe: number;
  eof: boolean;
  done: boolean;
  /** The poll event this direction waits for: POLLIN on src or POLLOUT on dst. */
  wait: number;
}

function openPipe(size: number): [number, number, number] | undefined {
  const [r, w] = pipeNow(O_NONBLOCK | O_CLOEXEC);
  if (r < 0) return undefined;
  const cap = fcntlNow(w, F_SETPIPE_SZ, size);
  return [r, w, cap > 0 ? cap : 65536];
}

/** Both directions of one TCP connection spliced in the kernel. */
export class SplicePair {
  readonly #fds: [number, number];
  readonly #dirs: [Direction, Direction];
  readonly #wake: [number, number];
  readonly #hooks: SpliceHooks;
  readonly #pollfds = new Uint8Array(24);
  readonly #view = new DataView(this.#pollfds.buffer);
  #closing: { reset: boolean } | undefined;
  #over = false;
  #polling = false;

  private constructor(
    fds: [number, number],
    pipes: [[number, number, number], [number, number, number]],
    wake: [number, number],
    hooks: SpliceHooks,
  ) {
    this.#fds = fds;
    this.#wake = wake;
    this.#hooks = hooks;
    const dir = (from: Side, p: [number, number, number]): Direction => ({
      from,
      src: fds[from],
      dst: fds[from ^ 1],
      pipeR: p[0],
      pipeW: p[1],
      cap: p[2],
      inPipe: 0,
      eof: false,
      done: false,
      wait: POLLIN,
    });
    this.#dirs = [dir(0, pipes[0]), dir(1, pipes[1])];
  }

  /**
   * Starts splicing between connected sockets `a` and `b` (descriptors the pair now
   * owns). Returns `undefined` — and closes nothing — when splice is unavailable, the
   * cap {@link spliceSlots}`.max` is reached or pipes cannot be opened; the caller then
   * carries the bytes itself and closes `a` and `b`.
   */
  static open(
    fds: { a: number; b: number },
    hooks: SpliceHooks,
    options: SpliceOptions = {},
  ): SplicePair | undefined {
    if (!spliceAvailable() || spliceSlots.active >= spliceSlots.max) {
      spliceSlots.refused++;
      return undefined;
    }
    const size = options.pipeSize ?? 256 * 1024;
    const opened: number[] = [];
    const p0 = openPipe(size);
    if (p0) opened.push(p0[0], p0[1]);
    const p1 = p0 && openPipe(size);
    if (p1) opened.push(p1[0], p1[1]);
    const wake = p1 && pipeNow(O_NONBLOCK | O_CLOEXEC);
    if (!p0 || !p1 || !wake || wake[0] < 0) {
      for (const fd of opened) close(fd);
      spliceSlots.refused++;
      return undefined;
    }
    spliceSlots.active++;
    spliceSlots.opened++;
    const pair = new SplicePair([fds.a, fds.b], [p0, p1], [wake[0], wake[1]], hooks);
    pair.#run();
    return pair;
  }

  /**
   * Ends the pair: closes its descriptors (with `SO_LINGER` 0 on both sockets first
   * when `reset`) once its poll returns, then calls `onDone` with `closed: true`.
   */
  close(reset: boolean): void {
    if (this.#over || this.#closing) return;
    this.#closing = { reset };
    if (this.#polling) writeNow(this.#wake[1], new Uint8Array([1]));
    else this.#finish({ closed: true, reset });
  }

  /** True once the pair has ended. */
  get over(): boolean {
    return this.#over;
  }

  #run(): void {
    for (const d of this.#dirs) {
      const err = this.#pump(d);
      if (err) return this.#finish(err);
    }
    if (this.#dirs[0].done && this.#dirs[1].done) {
      return this.#finish({ closed: false, reset: false });
    }
    this.#poll();
  }

  #poll(): void {
    const v = this.#view;
    const events: [number, number] = [0, 0];
    for (const d of this.#dirs) {
      if (d.done) continue;
      if (d.wait === POLLIN) events[d.from] |= POLLIN;
      else events[d.from ^ 1] |= POLLOUT;
    }
    // Only sockets a direction waits on: an unwatched one would report POLLHUP again
    // and again once its peer has gone (its end is met when a direction reaches it).
    for (const side of [0, 1] as const) {
      v.setInt32(side * 8, events[side] ? this.#fds[side] : -1, true);
      v.setInt16(side * 8 + 4, events[side], true);
      v.setInt16(side * 8 + 6, 0, true);
    }
    v.setInt32(16, this.#wake[0], true);
    v.setInt16(20, POLLIN, true);
    v.setInt16(22, 0, true);
    this.#polling = true;
    pollWait(this.#pollfds, -1).then(() => this.#ready(), () => this.#ready());
  }

  #ready(): void {
    this.#polling = false;
    if (this.#closing) return this.#finish({ closed: true, reset: this.#closing.reset });
    const v = this.#view;
    const revents = [v.getInt16(6, true), v.getInt16(14, true)];
    for (const d of this.#dirs) {
      if (d.done) continue;
      const side = d.wait === POLLIN ? d.from : d.from ^ 1;
      if (revents[side] === 0) continue;
      const err = this.#pump(d);
      if (err) return this.#finish(err);
    }
    if (this.#dirs[0].done && this.#dirs[1].done) {
      return this.#finish({ closed: false, reset: false });
    }
    this.#poll();
  }

  /** Moves what it can for one direction; returns how the pair failed, if it did. */
  #pump(d: Direction): SpliceEnd | undefined {
    let bytes = 0;
    let chunks = 0;
    let failed: SpliceEnd | undefined;
    for (let budget = BUDGET; budget > 0 && !d.done; budget--) {
      if (d.inPipe > 0) {
        const n = spliceNow(d.pipeR, d.dst, d.inPipe, FLAGS);
        if (n > 0) {
          d.inPipe -= n;
          continue;
        }
        if (n === -EAGAIN) {
          d.wait = POLLOUT;
          break;
        }
        failed = { failed: (d.from ^ 1) as Side, errno: -n, closed: false, reset: false };
        break;
      }
      if (d.eof) {
        shutdownNow(d.dst, SHUT_WR);
        d.done = true;
        break;
      }
      const n = spliceNow(d.src, d.pipeW, d.cap, FLAGS);
      if (n > 0) {
        d.inPipe = n;
        bytes += n;
        chunks++;
        continue;
      }
      if (n === 0) {
        d.eof = true;
        continue;
      }
      if (n === -EAGAIN) {
        d.wait = POLLIN;
        break;
      }
      failed = { failed: d.from, errno: -n, closed: false, reset: false };
      break;
    }
    if (!d.done && !failed) d.wait = d.inPipe > 0 ? POLLOUT : POLLIN;
    if (bytes > 0) this.#hooks.onBytes(d.from, bytes, chunks);
    if (d.done) this.#hooks.onEnd(d.from);
    return failed;
  }

  #finish(end: SpliceEnd): void {
    if (this.#over) return;
    this.#over = true;
    spliceSlots.active--;
    if (end.reset) {
      lingerZeroNow(this.#fds[0]);
      lingerZeroNow(this.#fds[1]);
    } else if (end.failed !== undefined) lingerZeroNow(this.#fds[end.failed ^ 1]);
    const drain = new Uint8Array(16);
    readNow(this.#wake[0], drain);
    for (const d of this.#dirs) {
      close(d.pipeR);
      close(d.pipeW);
    }
    close(this.#wake[0]);
    close(this.#wake[1]);
    close(this.#fds[0]);
    close(this.#fds[1]);
    this.#hooks.onDone(end);
  }
}
