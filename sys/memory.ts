/**
 * Keeps the C heap of the Fulcrum process small. Deno's Rust side (hyper, tokio, the
 * FFI layer) allocates with glibc malloc, and glibc keeps what was freed in its arenas:
 * after a burst of load the process holds megabytes of free heap pages it will not use
 * again soon. {@link startMemoryTrim} calls `malloc_trim(0)` every few seconds on a
 * worker thread (never on the event loop), which hands those pages back to the kernel.
 *
 * {@link releaseStartupPages} drops, once the appliance has started, the pages of the
 * runtime's own executable that starting it read: about half of the binary's code and
 * read-only data is used only to load modules and set up the runtime.
 *
 * Without `--allow-ffi` (or off Linux) both do nothing: the appliance runs the same,
 * with a larger resident set.
 * @module
 */
import { ffiAvailable, MADV_DONTNEED, madviseNow, mallocTrim } from "./libc.ts";
import { readOwnProcFile } from "./proc.ts";

/** The default interval between two trims (ms). */
export const TRIM_INTERVAL_MS = 1000;

/** A running periodic trim, from {@link startMemoryTrim}. */
export interface MemoryTrim {
  /** False when FFI is unavailable and nothing is trimmed. */
  readonly active: boolean;
  /** Trims done so far (those that released memory and those that found none). */
  readonly trims: number;
  /** Trims that handed memory back to the kernel. */
  readonly released: number;
  /** Stops trimming (idempotent); a trim in flight still finishes on its thread. */
  stop(): void;
}

/** Options of {@link startMemoryTrim}. */
export interface MemoryTrimOptions {
  /** Milliseconds between two trims (default {@link TRIM_INTERVAL_MS}, at least 10). */
  readonly intervalMs?: number;
}

/**
 * Starts trimming the C heap every `intervalMs`: each trim is one `malloc_trim(0)` on
 * Deno's blocking thread pool, the next one scheduled when it has finished. The timer
 * does not keep the process alive. Returns an inactive handle without FFI.
 */
export function startMemoryTrim(options: MemoryTrimOptions = {}): MemoryTrim {
  const intervalMs = options.intervalMs ?? TRIM_INTERVAL_MS;
  if (!Number.isFinite(intervalMs) || intervalMs < 10) {
    throw new RangeError(`memory trim interval must be at least 10 ms, not ${intervalMs}`);
  }
  const active = Deno.build.os === "linux" && ffiAvailable();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const state = {
    active,
    trims: 0,
    released: 0,
    stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    },
  };
  const schedule = () => {
    if (stopped) return;
    const next = setTimeout(tick, intervalMs);
    Deno.unrefTimer(next);
    timer = next;
  };
  const tick = async () => {
    timer = undefined;
    try {
      if (await mallocTrim()) state.released++;
      state.trims++;
    } catch {
      stopped = true; // libc without malloc_trim: nothing to do, nothing to report
      return;
    }
    schedule();
  };
  if (active) schedule();
  return state;
}

/** A mapping of a file that was never written here: its pages can be read again from the file. */
export interface CleanMapping {
  readonly start: bigint;
  readonly end: bigint;
}

/**
 * The mappings of `path` in `smaps` (the text of `/proc/PID/smaps`) that are not
 * writable and hold no page of their own (`Private_Dirty: 0 kB`): dropping their pages
 * loses nothing. Relocated read-only data (RELRO) has private dirty pages and is left out.
 */
export function cleanMappings(smaps: string, path: string): CleanMapping[] {
  const out: CleanMapping[] = [];
  let current: CleanMapping | undefined;
  for (const line of smaps.split("\n")) {
    const header = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      const [, start, end, perms, name] = header;
      current = perms[1] !== "w" && name === path
        ? { start: BigInt(`0x${start}`), end: BigInt(`0x${end}`) }
        : undefined;
    } else if (current && line.startsWith("Private_Dirty:")) {
      if (/^Private_Dirty:\s+0 kB/.test(line)) out.push(current);
      current = undefined;
    }
  }
  return out;
}

/**
 * Drops this process's resident pages of its own executable (the Deno runtime, or the
 * compiled binary) in its clean mappings ({@link cleanMappings}) with
 * `madvise(MADV_DONTNEED)`. Pages used again fault back in from the page cache; those
 * only startup used stop counting against the resident set. Returns how much the resident
 * set shrank, in bytes (0 without FFI or off Linux).
 */
export function releaseStartupPages(): number {
  if (Deno.build.os !== "linux" || !ffiAvailable()) return 0;
  const before = Deno.memoryUsage().rss;
  const smaps = readOwnProcFile("smaps") ?? "";
  for (const { start, end } of cleanMappings(smaps, Deno.execPath())) {
    madviseNow(start, Number(end - start), MADV_DONTNEED);
  }
  return Math.max(0, before - Deno.memoryUsage().rss);
}
