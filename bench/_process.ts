/**
 * Process helpers the benchmarks share: start a peer (nginx, HAProxy, Fulcrum) and
 * wait until it listens. Internal to bench/.
 * @module
 */

/** Starts `cmd` with stdin closed, stderr shown and stdout hidden unless `quiet: false`. */
export function spawn(cmd: string[], options: { quiet?: boolean } = {}): Deno.ChildProcess {
  return new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdout: options.quiet === false ? "inherit" : "null",
    stderr: "inherit",
    stdin: "null",
  }).spawn();
}

/** Resolves once something accepts on 127.0.0.1:`port`; throws after `ms`. */
export async function waitPort(port: number, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      const c = await Deno.connect({ hostname: "127.0.0.1", port });
      c.close();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${ms} ms`);
}

/**
 * The flags deno.json's `run` task gives `deno run` (V8 flags and permissions), so a
 * bench runs the product exactly as `deno task run` does. `v8` replaces the
 * `--v8-flags=` value ("" drops it).
 */
export function productRunFlags(options: { v8?: string } = {}): string[] {
  const json = JSON.parse(Deno.readTextFileSync(new URL("../deno.json", import.meta.url)));
  const command: string = json.tasks.run.command ?? json.tasks.run;
  const flags = command.split(/\s+/).filter((word) => word.startsWith("--"));
  if (options.v8 === undefined) return flags;
  const rest = flags.filter((flag) => !flag.startsWith("--v8-flags="));
  return options.v8 ? [`--v8-flags=${options.v8}`, ...rest] : rest;
}
