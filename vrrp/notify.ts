/**
 * Notify hooks: per transition, the configured command runs with `state instance
 * priority` appended. Runs of one queue are serialized in transition order: never
 * two at once for one instance, never out of order.
 * @module
 */
import type { Logger } from "../log.ts";

/** One finished hook run. */
export interface HookRun {
  readonly argv: readonly string[];
  readonly code: number;
  readonly ms: number;
}

/** A serialized queue of hook runs for one instance or sync group. */
export class NotifyQueue {
  readonly #log: Logger;
  readonly #timeoutMs: number;
  #tail: Promise<void> = Promise.resolve();
  #pending = 0;
  #runs: HookRun[] = [];

  /** `timeoutMs` bounds one run (the hook is killed after it). */
  constructor(log: Logger, options: { timeoutMs?: number } = {}) {
    this.#log = log;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
  }

  /** Queues `command` with `args` appended; returns when this run has finished. */
  enqueue(command: readonly string[], args: readonly string[]): Promise<void> {
    const argv = [...command, ...args];
    this.#pending++;
    const run = this.#tail.then(() => this.#exec(argv)).finally(() => this.#pending--);
    this.#tail = run.catch(() => undefined);
    return this.#tail;
  }

  /** Hook runs not finished yet (queued or running). */
  get pending(): number {
    return this.#pending;
  }

  /** The last runs (at most 20), oldest first. */
  get recent(): readonly HookRun[] {
    return this.#runs;
  }

  /** Resolves when every queued run has finished. */
  idle(): Promise<void> {
    return this.#tail;
  }

  async #exec(argv: string[]): Promise<void> {
    const started = performance.now();
    let code = -1;
    try {
      const child = new Deno.Command(argv[0], {
        args: argv.slice(1),
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
      }, this.#timeoutMs);
      const out = await child.output();
      clearTimeout(timer);
      code = out.code;
      if (code !== 0) {
        this.#log.warn("notify hook failed", {
          argv: argv.join(" "),
          code,
          stderr: new TextDecoder().decode(out.stderr).trim().slice(0, 200),
        });
      }
    } catch (error) {
      this.#log.warn("notify hook could not run; check the path and that it is executable", {
        argv: argv.join(" "),
        error: (error as Error).message,
      });
    }
    this.#runs.push({ argv, code, ms: performance.now() - started });
    if (this.#runs.length > 20) this.#runs.shift();
  }
}
