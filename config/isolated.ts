/**
 * Loads a config in a short-lived child process. The YAML parser and the zod schema,
 * with the module loading and the code V8 compiles for them, cost the appliance about
 * 15 MB of RSS for its whole life, while it needs them only for the moments it reads
 * the file: at start, on reload, for a plan. The child (`deno run --allow-read` on
 * this module, or the bundle or compiled binary with {@link LOADER_COMMAND}) reads the
 * request on stdin, loads the file, and writes the Model (plain JSON data) on stdout.
 * A worker would not do: the memory of a terminated worker stays with the process.
 *
 * Nothing that reaches this module statically loads `yaml` or `zod`; the loader is
 * imported dynamically, in the child only.
 * @module
 */
import type { ConfigError } from "./error.ts";
import type { Model } from "./model.ts";
import { type CrossCheckOptions, hostAddresses } from "./refs.ts";
import { readOwnProcFile } from "../sys/proc.ts";

/** The outcome of {@link loadConfigIsolated}. */
export type ModelResult =
  | { readonly ok: true; readonly model: Model }
  | { readonly ok: false; readonly errors: readonly ConfigError[] };

/** Options of {@link loadConfigIsolated}. */
export interface IsolatedLoadOptions extends CrossCheckOptions {
  /** Load this text instead of reading `path`; `path` then only names it in messages. */
  readonly text?: string;
}

/**
 * The hidden first argument that makes a bundled or compiled Fulcrum serve one load
 * request on stdin/stdout instead of starting (main.ts hands it to {@link serveLoader}).
 */
export const LOADER_COMMAND = "__load-config";

/** What the appliance asks of the child. */
interface LoadRequest {
  readonly path: string;
  readonly text?: string;
  /** The host's addresses, taken in the appliance (tests inject them as a function). */
  readonly localAddresses: readonly string[] | null;
}

/**
 * Reads `path` (or `options.text`) and builds its Model in a child process that exits
 * as soon as it answers (in this process when it may not start one: no `--allow-run`).
 * Same result as `loadConfigFile`/`loadConfigText` of load.ts, without the raw config.
 * Rejects only when the child itself fails (it cannot be started, or dies), never for
 * a bad file: that is `{ ok: false, errors }`.
 */
export async function loadConfigIsolated(
  path: string,
  options: IsolatedLoadOptions = {},
): Promise<ModelResult> {
  const request: LoadRequest = {
    path,
    text: options.text,
    localAddresses: (options.localAddresses ?? hostAddresses)() ?? null,
  };
  if (!mayStartChild()) return await answer(request); // without --allow-run: in-process
  const args = loaderArgs();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify(request)));
  await writer.close();
  const { code, stdout, stderr } = await child.output();
  const text = new TextDecoder().decode(stdout);
  if (code !== 0 || !text) {
    const why = new TextDecoder().decode(stderr).trim().split("\n").slice(-3).join(" | ");
    throw new Error(
      `the config loader (${Deno.execPath()} ${args.join(" ")}) exited with code ` +
        `${code}: ${why || "no message"}; check that Fulcrum's files are intact and readable`,
    );
  }
  return JSON.parse(text);
}

/** Whether this process may start the loader child (`--allow-run`). */
function mayStartChild(): boolean {
  return Deno.permissions.querySync({ name: "run", command: Deno.execPath() }).state === "granted";
}

/** Loads what `request` names; the loader is imported here, on first use. */
async function answer(request: LoadRequest): Promise<ModelResult> {
  const { loadConfigFile, loadConfigText } = await import("./load.ts");
  const locals = request.localAddresses ?? undefined;
  const options = { localAddresses: () => locals };
  const loaded = request.text === undefined
    ? await loadConfigFile(request.path, options)
    : loadConfigText(request.text, { ...options, path: request.path });
  return loaded.ok ? { ok: true, model: loaded.model } : loaded;
}

/**
 * How to start the child: `deno run` on this module from a source checkout (resolving
 * modules as this process does), on the bundle (which needs no resolving; main.ts
 * passes {@link LOADER_COMMAND} to {@link serveLoader}), or the compiled binary itself,
 * whose permissions are built in.
 */
function loaderArgs(): string[] {
  const runsOnDeno = /^deno(\.exe)?$/.test(Deno.execPath().split(/[\\/]/).pop() ?? "");
  if (!runsOnDeno) return [LOADER_COMMAND];
  // the yaml package reads LOG_TOKENS and LOG_STREAM (its debug switches)
  const base = [
    "run",
    "--quiet",
    "--no-prompt",
    "--allow-read",
    "--allow-env=LOG_TOKENS,LOG_STREAM",
  ];
  if (import.meta.url.endsWith("/config/isolated.ts")) {
    return [...base, ...resolutionFlags(), import.meta.url, LOADER_COMMAND];
  }
  return [...base, "--no-config", Deno.mainModule, LOADER_COMMAND];
}

/**
 * Flags of this process's command line that change how modules resolve (`--no-lock`,
 * `--cached-only`, `--config=…`…), so the child finds `yaml` and `zod` the same way: an
 * offline host run with `--no-lock` must not have its child try the registry.
 */
function resolutionFlags(): string[] {
  const argv = readOwnProcFile("cmdline")?.split("\0") ?? [];
  const script = argv.findIndex((arg, i) => i > 1 && !arg.startsWith("-"));
  return argv.slice(2, script < 0 ? argv.length : script).filter((flag) =>
    /^--(no-lock|lock=.+|cached-only|frozen(=.*)?|config=.+|no-config|import-map=.+|node-modules-dir(=.*)?|vendor(=.*)?|no-remote|no-npm)$/
      .test(flag)
  );
}

/**
 * The child's side: reads one {@link LoadRequest} (JSON) from stdin, writes the
 * {@link ModelResult} (JSON) to stdout. Returns the exit code.
 */
export async function serveLoader(): Promise<number> {
  const request: LoadRequest = JSON.parse(await new Response(Deno.stdin.readable).text());
  const bytes = new TextEncoder().encode(JSON.stringify(await answer(request)));
  for (let done = 0; done < bytes.length;) done += await Deno.stdout.write(bytes.subarray(done));
  return 0;
}

if (import.meta.main && import.meta.url.endsWith("/config/isolated.ts")) {
  Deno.exit(await serveLoader());
}
