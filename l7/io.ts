/**
 * Small IO helpers of the proxy shell: a growable read buffer over a connection, a
 * write-everything loop, and one coarse timer that expires many deadlines (cheaper
 * than a setTimeout per request on the hot path).
 * @module
 */

/**
 * Anything with `read` and `write` like a Deno.Conn. Sockets that can also try a read
 * or write without waiting (sys/tcp.ts) offer `tryRead`/`tryWrite` and the readiness
 * waits: the helpers here then skip a promise per call when the bytes move at once.
 */
export interface ByteConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
  /** Reads what is there now: bytes, 0 at end of stream, -1 when nothing is there yet. */
  tryRead?(p: Uint8Array): number;
  /** Writes what fits now: bytes (0 when full). */
  tryWrite?(p: Uint8Array): number;
  /** Resolves at the next readiness to read. */
  whenReadable?(): Promise<void>;
  /** Resolves at the next readiness to write. */
  whenWritable?(): Promise<void>;
}

const TRUE: Promise<boolean> = Promise.resolve(true);
const FALSE: Promise<boolean> = Promise.resolve(false);
const DONE: Promise<void> = Promise.resolve();

/**
 * A read buffer over a connection; bytes in `[start, end)` are unread. Reads land
 * after `headroom` bytes of the buffer when it is empty, so a caller can put a few
 * bytes (a rewritten message head) right before the unread bytes and send both with
 * one write, without copying the body.
 */
export class Reader {
  readonly conn: ByteConn;
  buf: Uint8Array;
  /** Bytes kept free before the data when the buffer is empty. */
  readonly headroom: number;
  start: number;
  end: number;
  /** Total bytes read from the connection. */
  total = 0;

  /** A reader with room for `size` bytes of data (plus `options.headroom` in front). */
  constructor(conn: ByteConn, size = 32 * 1024, options: { headroom?: number } = {}) {
    this.conn = conn;
    this.headroom = options.headroom ?? 0;
    this.buf = new Uint8Array(size + this.headroom);
    this.start = this.end = this.headroom;
  }

  /** Unread byte count. */
  get available(): number {
    return this.end - this.start;
  }

  /** The unread bytes (a view, valid until the next fill). */
  view(): Uint8Array {
    return this.buf.subarray(this.start, this.end);
  }

  /**
   * Replaces the buffer (of `headroom` + data size) when nothing is unread, and
   * returns the old one; returns undefined and keeps the buffer otherwise.
   */
  swap(next: Uint8Array): Uint8Array | undefined {
    if (this.end !== this.start || next.length <= this.headroom) return undefined;
    const old = this.buf;
    this.buf = next;
    this.start = this.end = this.headroom;
    return old;
  }

  /** Marks `n` unread bytes as used. */
  consume(n: number): void {
    this.start += n;
    if (this.start === this.end) this.start = this.end = this.headroom;
  }

  /**
   * Reads more bytes, growing the buffer up to `max` bytes of unread data. Returns
   * false at end of stream; throws when the connection fails. Bytes already waiting
   * in the socket are taken at once (the promise is settled already).
   */
  fill(max = this.buf.length - this.headroom): Promise<boolean> {
    if (!this.#makeRoom(max)) return TRUE;
    const conn = this.conn;
    if (conn.tryRead === undefined) return this.#fillAsync();
    const n = conn.tryRead(this.end === 0 ? this.buf : this.buf.subarray(this.end));
    if (n < 0) return this.#fillLater(max);
    if (n === 0) return FALSE;
    this.end += n;
    this.total += n;
    return TRUE;
  }

  async #fillLater(max: number): Promise<boolean> {
    await this.conn.whenReadable!();
    return await this.fill(max);
  }

  async #fillAsync(): Promise<boolean> {
    const n = await this.conn.read(this.end === 0 ? this.buf : this.buf.subarray(this.end));
    if (n === null) return false;
    this.end += n;
    this.total += n;
    return true;
  }

  /** Makes room after the unread bytes; false when the buffer is full at `max`. */
  #makeRoom(max: number): boolean {
    if (this.end === this.buf.length) {
      const room = this.headroom;
      if (this.start > room) {
        this.buf.copyWithin(room, this.start, this.end);
        this.end -= this.start - room;
        this.start = room;
      } else if (this.buf.length - room < max) {
        const bigger = new Uint8Array(room + Math.min(max, (this.buf.length - room) * 2));
        bigger.set(this.buf.subarray(room, this.end), room);
        this.buf = bigger;
      } else {
        return false;
      }
    }
    return true;
  }
}

/**
 * Writes all of `data`, looping over short writes. When the socket takes it all at
 * once (the usual case) the returned promise is settled already.
 */
export function writeAll(conn: ByteConn, data: Uint8Array): Promise<void> {
  if (conn.tryWrite === undefined) return writeAllAsync(conn, data, 0);
  const n = conn.tryWrite(data);
  return n === data.length ? DONE : writeAllLater(conn, data, n);
}

async function writeAllLater(conn: ByteConn, data: Uint8Array, off: number): Promise<void> {
  while (off < data.length) {
    await conn.whenWritable!();
    off += conn.tryWrite!(data.subarray(off));
  }
}

async function writeAllAsync(conn: ByteConn, data: Uint8Array, off: number): Promise<void> {
  while (off < data.length) off += await conn.write(off === 0 ? data : data.subarray(off));
}

/** Something with a deadline (epoch ms) and what to do when it passes. */
export interface Timed {
  deadline: number;
  fire(): void;
  /**
   * Where a {@link Deadlines} wheel keeps the entry while armed (-1 or absent when
   * not armed); owned by the wheel. Start it at -1 in long-lived objects so their
   * shape never changes.
   */
  slot?: number;
}

/**
 * Expires deadlines with one interval timer of `tick` ms. Entries are checked every
 * tick, so a deadline fires up to one tick late (two when another entry's `fire`
 * disarms entries). Arming and disarming allocate nothing: entries sit in a dense
 * array and remember their index, so a request that arms and disarms its timers
 * leaves no garbage (a Set's add/delete reallocates its table every few hundred
 * calls, and those tables outlived young-generation collections). An entry is
 * armed on one wheel at a time.
 */
export class Deadlines {
  #entries: (Timed | undefined)[] = [];
  #count = 0;
  #timer: ReturnType<typeof setInterval> | undefined;
  readonly tick: number;

  /** A wheel that ticks every `tick` ms once something is armed. */
  constructor(tick = 100) {
    this.tick = tick;
  }

  /** Armed entries. */
  get size(): number {
    return this.#count;
  }

  /** Starts watching `entry` (set `entry.deadline` before or after); armed twice is once. */
  arm(entry: Timed): void {
    if (this.#has(entry)) return;
    entry.slot = this.#count;
    this.#entries[this.#count++] = entry;
    if (this.#timer === undefined) {
      const timer = setInterval(() => this.#check(), this.tick);
      Deno.unrefTimer(timer);
      this.#timer = timer;
    }
  }

  /** Stops watching `entry` (nothing happens when it is not armed). */
  disarm(entry: Timed): void {
    if (!this.#has(entry)) return;
    const at = entry.slot!;
    const last = this.#entries[--this.#count]!;
    this.#entries[at] = last;
    last.slot = at;
    this.#entries[this.#count] = undefined;
    entry.slot = -1;
  }

  /** Stops the timer; entries are forgotten. */
  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    for (let i = 0; i < this.#count; i++) this.#entries[i]!.slot = -1;
    this.#entries = [];
    this.#count = 0;
  }

  #has(entry: Timed): boolean {
    const at = entry.slot;
    return at !== undefined && at >= 0 && at < this.#count && this.#entries[at] === entry;
  }

  #check(): void {
    const now = Date.now();
    let i = 0;
    while (i < this.#count) {
      const entry = this.#entries[i]!;
      if (entry.deadline > now) {
        i++;
        continue;
      }
      this.disarm(entry); // the last entry moves into slot i: look at i again
      try {
        entry.fire();
      } catch {
        // a firing entry must not stop the others
      }
    }
  }
}
