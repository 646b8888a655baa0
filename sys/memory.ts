/**
 * Keeps the C heap of the Fulcrum process small. Deno's Rust side (hyper, tokio, the
 * FFI layer) allocates with glibc malloc, and glibc keeps what was freed in its arenas:
 * after a burst of load the process holds megabytes of free heap pages it will not use
 * again soon. {@link startMemoryTrim} calls `malloc_trim(0)` every few seconds on a
 * worker thread (never on the event loop), which hands those pages back to the kernel.
 *
 * Without `--allow-ffi` (or off Linux) it does nothing: the appliance runs the same,
 * with a larger resident set.
 * @module
 */
import { ffiAvailable, mallocTrim } from "./libc.ts";

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
