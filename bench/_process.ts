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
