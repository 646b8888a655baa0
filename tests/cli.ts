/**
 * Runs the fulcrum CLI as a user would: `deno run` with exactly the permission flags
 * of the `run` task in deno.json, from source or from the bundle.
 * @module
 */
import assert from "node:assert/strict";
import meta from "../deno.json" with { type: "json" };

/** The repository root. */
export const ROOT: string = new URL("..", import.meta.url).pathname;

/** The `--allow-*` and `--v8-flags` of the `run` task, the same the compile task bakes in. */
export const RUN_FLAGS: string[] = meta.tasks.run.command.split(/\s+/).filter((w) =>
  w.startsWith("--allow-") || w.startsWith("--v8-flags=")
);

/** Output of one CLI run. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `fulcrum ARGS` (main.ts, or `entry` such as dist/fulcrum.js) and waits for it. */
export async function fulcrum(
  args: string[],
  options: { entry?: string; cwd?: string } = {},
): Promise<CliResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...RUN_FLAGS, options.entry ?? `${ROOT}main.ts`, ...args],
    cwd: options.cwd ?? ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** Starts `fulcrum ARGS` in the background; the caller stops it. */
export function spawnFulcrum(
  args: string[],
  options: { cwd?: string; prefix?: string[] } = {},
): Deno.ChildProcess {
  const argv = [
    ...(options.prefix ?? []),
    Deno.execPath(),
    "run",
    ...RUN_FLAGS,
    `${ROOT}main.ts`,
    ...args,
  ];
  return new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: options.cwd ?? ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
}

/**
 * Stops a {@link spawnFulcrum} child with SIGTERM, as an operator's `systemctl stop`
 * would, asserts that it exited 0, and returns what it logged on stderr.
 */
export async function stopFulcrum(child: Deno.ChildProcess): Promise<string> {
  child.kill("SIGTERM");
  const out = await child.output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  return stderr;
}

/** Polls `url` until it answers (any status) or `timeoutMs` passes. */
export async function waitForHttp(url: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    try {
      const response = await fetch(url);
      await response.body?.cancel();
      return;
    } catch (error) {
      last = (error as Error).message;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms: ${last}`);
}

/** A free TCP port on 127.0.0.1 (bound and released). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}
