/**
 * The `fulcrum` command line: run, check, plan, demo, schema, status, ipvs, version.
 *
 * Exit codes: 0 success, 1 an invalid config or a failed operation, 2 a usage error.
 * @module
 */
import { parseArgs } from "node:util";
import { Appliance, ConfigInvalidError } from "./appliance.ts";
import { describeDiff, diff } from "./config/diff.ts";
import { formatError } from "./config/error.ts";
import { loadConfigIsolated, LOADER_COMMAND, serveLoader } from "./config/isolated.ts";
import type { Model } from "./config/model.ts";
import { startDemoBackends } from "./demo/backends.ts";
import { statusCommand as l4StatusCommand } from "./l4/cli.ts";
import { ipvsCommand } from "./l4/ipvs/cli.ts";
import type { LogLevel } from "./log.ts";
import { createSubsystems } from "./subsystems.ts";
import { releaseStartupPages, startMemoryTrim, TRIM_INTERVAL_MS } from "./sys/memory.ts";
import { VERSION } from "./version.ts";

const DEFAULT_CONFIG = "appliance.yaml";

const USAGE: Record<string, string> = {
  main: `fulcrum ${VERSION} — LVS director, VRRP and an HTTP content switch in one binary

Usage: fulcrum COMMAND [options]

Commands:
  run      run the appliance                      fulcrum run [-c appliance.yaml]
  check    validate a config (like haproxy -c)     fulcrum check [FILE]
  plan     show what a reload would change         fulcrum plan [-c FILE] [--from OLD.yaml]
  demo     run appliance.yaml with demo backends   fulcrum demo
  schema   print the JSON Schema of the config     fulcrum schema > appliance.schema.json
  status   show a running appliance's L4 table     fulcrum status l4
  ipvs     show the kernel's IPVS table            fulcrum ipvs list | save
  version  print the version

Run "fulcrum COMMAND --help" for a command's options.`,
  run: `Usage: fulcrum run [-c FILE] [--log-level debug|info|warn|error]

Runs the appliance from FILE (default ${DEFAULT_CONFIG}). SIGHUP or POST /api/v1/reload
reloads it (an invalid file is refused and the running config stays); SIGTERM or
SIGINT stops gracefully (VRRP steps down first).`,
  check: `Usage: fulcrum check [FILE | -c FILE] [-q]

Validates FILE (default ${DEFAULT_CONFIG}). Exit 0 when valid; otherwise exit 1 with one
FILE:LINE:COL: message line per problem on stderr. -q prints nothing when valid.`,
  plan: `Usage: fulcrum plan [-c FILE] [--from OLD.yaml | --admin http://HOST:PORT]

Shows what loading FILE would change: against OLD.yaml when --from is given, otherwise
against the running appliance (asked through its admin API, at FILE's admin.listen
unless --admin says otherwise). Exit 1 when FILE is invalid.`,
  demo: `Usage: fulcrum demo [-c FILE] [--no-backends] [--log-level LEVEL]

Runs FILE (default ${DEFAULT_CONFIG}, the built-in demo) with demo backends on
loopback for every pool: HTTP servers that answer with x-served-by: POOL-N and
x-cache: HIT|MISS. Unprivileged; Ctrl-C stops it.`,
  schema: `Usage: fulcrum schema

Prints the JSON Schema of appliance.yaml (generated from the same schema the loader
uses), for editors: # yaml-language-server: $schema=./appliance.schema.json`,
  status:
    `Usage: fulcrum status l4 [-c FILE] [--admin http://127.0.0.1:9090] [--stats | --rate | --json]

Prints the L4 services of a running appliance as an ipvsadm -Ln style table, asking
its admin API (at FILE's admin.listen unless --admin says otherwise).`,
  ipvs: `Usage: fulcrum ipvs list [--stats | --rate] | fulcrum ipvs save

Reads the kernel's IPVS table over generic netlink: list prints it like ipvsadm -Ln,
save like ipvsadm-save -n. Needs root and the ip_vs module.`,
  version: "Usage: fulcrum version",
};

/** Where the CLI writes; tests capture it. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

const STD_IO: CliIo = {
  out: (text) => console.log(text),
  err: (text) => console.error(text),
};

class UsageError extends Error {}

type OptionSpec = Record<string, { type: "string" | "boolean"; short?: string }>;
type Parsed = { values: Record<string, string | boolean | undefined>; positionals: string[] };

function parse(args: string[], options: OptionSpec): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
    return { values: values as Parsed["values"], positionals };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

/** Runs the CLI with `args` (without the program name); resolves to the exit code. */
export async function main(args: string[], io: CliIo = STD_IO): Promise<number> {
  const [command, ...rest] = args;
  try {
    switch (command) {
      case undefined:
      case "help":
      case "--help":
      case "-h":
        io.out(USAGE.main);
        return command === undefined ? 2 : 0;
      case "version":
      case "--version":
        io.out(`fulcrum ${VERSION}`);
        return 0;
      case LOADER_COMMAND: // the bundle's or binary's own config loader (config/isolated.ts)
        return await serveLoader();
      case "check":
        return await checkCommand(rest, io);
      case "plan":
        return await planCommand(rest, io);
      case "schema":
        if (rest.includes("--help") || rest.includes("-h")) {
          io.out(USAGE.schema);
          return 0;
        }
        io.out(JSON.stringify((await import("./config/schema.ts")).jsonSchema(), null, 2));
        return 0;
      case "run":
        return await runCommand(rest, io, false);
      case "demo":
        return await runCommand(rest, io, true);
      case "status":
        return await statusCommand(rest, io);
      case "ipvs":
        return await ipvsMain(rest, io);
      default:
        throw new UsageError(`unknown command "${command}"; run "fulcrum --help" for the list`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`fulcrum: ${error.message}`);
      return 2;
    }
    io.err(`fulcrum: ${(error as Error).message}`);
    return 1;
  }
}

function configPathOf(values: Record<string, unknown>, positionals: string[]): string {
  if (positionals.length > 1) {
    throw new UsageError(`expected one config file, got ${positionals.join(" ")}`);
  }
  if (values.config && positionals.length) {
    throw new UsageError("give the config either as -c FILE or as FILE, not both");
  }
  return (values.config as string | undefined) ?? positionals[0] ?? DEFAULT_CONFIG;
}

function summary(model: Model): string {
  const pools = Object.values(model.pools);
  const servers = pools.reduce((n, p) => n + p.servers.length, 0);
  const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;
  return [
    plural(pools.length, "pool"),
    plural(servers, "server"),
    plural(model.l7.listeners.length, "listener"),
    plural(model.l4.services.length, "service"),
    plural(model.vrrp.instances.length, "VRRP instance"),
  ].join(", ");
}

async function checkCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {
    config: { type: "string", short: "c" },
    quiet: { type: "boolean", short: "q" },
  });
  if (values.help) {
    io.out(USAGE.check);
    return 0;
  }
  const path = configPathOf(values, positionals);
  const result = await loadConfigIsolated(path);
  if (!result.ok) {
    for (const error of result.errors) io.err(formatError(error));
    io.err(
      `${path}: ${result.errors.length} problem${
        result.errors.length === 1 ? "" : "s"
      }; nothing was changed`,
    );
    return 1;
  }
  if (!values.quiet) io.out(`${path}: configuration is valid (${summary(result.model)})`);
  return 0;
}

async function planCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {
    config: { type: "string", short: "c" },
    from: { type: "string" },
    admin: { type: "string" },
  });
  if (values.help) {
    io.out(USAGE.plan);
    return 0;
  }
  const path = configPathOf(values, positionals);
  const next = await loadConfigIsolated(path);
  if (!next.ok) {
    for (const error of next.errors) io.err(formatError(error));
    return 1;
  }
  if (values.from) {
    const before = await loadConfigIsolated(values.from as string);
    if (!before.ok) {
      for (const error of before.errors) io.err(formatError(error));
      return 1;
    }
    for (const line of describeDiff(diff(before.model, next.model))) io.out(line);
    return 0;
  }
  const base = (values.admin as string | undefined) ?? `http://${next.model.admin.listen.text}`;
  const headers: Record<string, string> = { "content-type": "application/yaml" };
  if (next.model.admin.token_file) {
    const { dirname, resolve } = await import("node:path");
    const token = (await Deno.readTextFile(resolve(dirname(path), next.model.admin.token_file)))
      .trim();
    headers.authorization = `Bearer ${token}`;
  }
  let response: Response;
  try {
    response = await fetch(`${base}/api/v1/plan`, {
      method: "POST",
      headers,
      body: await Deno.readTextFile(path),
    });
  } catch (error) {
    throw new Error(
      `cannot reach the running appliance at ${base} (${
        (error as Error).message
      }); start it, pass --admin URL, or compare files with --from OLD.yaml`,
    );
  }
  const body = await response.json();
  if (!body.ok) {
    for (const line of body.error?.details ?? [body.error?.message]) io.err(line);
    return 1;
  }
  for (const line of body.changes) io.out(line);
  return 0;
}

async function runCommand(args: string[], io: CliIo, demo: boolean): Promise<number> {
  const { values, positionals } = parse(args, {
    config: { type: "string", short: "c" },
    "log-level": { type: "string" },
    "no-backends": { type: "boolean" },
  });
  if (values.help) {
    io.out(demo ? USAGE.demo : USAGE.run);
    return 0;
  }
  const level = values["log-level"] as string | undefined;
  if (level && !["debug", "info", "warn", "error"].includes(level)) {
    throw new UsageError(`--log-level takes debug, info, warn or error, not "${level}"`);
  }
  const path = configPathOf(values, positionals);
  let backends: Awaited<ReturnType<typeof startDemoBackends>> | undefined;
  if (demo && !values["no-backends"]) {
    const loaded = await loadConfigIsolated(path);
    if (!loaded.ok) {
      for (const error of loaded.errors) io.err(formatError(error));
      return 1;
    }
    backends = startDemoBackends(loaded.model);
  }
  let appliance: Appliance;
  try {
    appliance = await Appliance.start(path, {
      subsystems: createSubsystems,
      logLevel: level as LogLevel | undefined,
    });
  } catch (error) {
    await backends?.close();
    if (error instanceof ConfigInvalidError) {
      for (const e of error.errors) io.err(formatError(e));
      io.err(`${path}: not started; fix the problems above`);
      return 1;
    }
    throw error;
  }
  if (demo) io.out(demoBanner(appliance, backends?.backends.length ?? 0));
  // glibc keeps what Deno's Rust side freed; a periodic malloc_trim hands it back.
  const trim = startMemoryTrim();
  if (trim.active) appliance.log.info("memory trim on", { every_ms: TRIM_INTERVAL_MS });
  else appliance.log.info("memory trim off: run with --allow-ffi to return freed C heap");
  // About half of the runtime binary's resident pages served only to start it.
  const released = releaseStartupPages();
  if (released > 0) {
    appliance.log.info("startup pages released", { rss_mb: Math.round(released / 2 ** 20) });
  }

  const done = Promise.withResolvers<void>();
  const stop = () => done.resolve();
  const reload = () => void appliance.reload("SIGHUP");
  Deno.addSignalListener("SIGTERM", stop);
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGHUP", reload);
  await done.promise;
  Deno.removeSignalListener("SIGTERM", stop);
  Deno.removeSignalListener("SIGINT", stop);
  Deno.removeSignalListener("SIGHUP", reload);
  appliance.log.info("stopping");
  trim.stop();
  await appliance.stop();
  await backends?.close();
  appliance.log.info("stopped");
  return 0;
}

function demoBanner(appliance: Appliance, backends: number): string {
  const model = appliance.model;
  const lines = [
    "",
    `Fulcrum ${VERSION} demo is running (${backends} demo backends on loopback).`,
    "",
  ];
  for (const listener of model.l7.listeners) {
    const base = `http://${listener.listen.text}`;
    lines.push(`  L7 switch "${listener.name}"  ${base}/`);
    lines.push(`    curl -i ${base}/a.jpg          → images pool (x-served-by: images-N, x-cache)`);
    lines.push(`    curl -i ${base}/cgi-bin/hello  → cgi pool`);
    lines.push(`    curl -i ${base}/index.html     → html pool; the same URL stays on one server`);
  }
  for (const service of model.l4.services) {
    if (service.vip) {
      lines.push(
        `  L4 service "${service.name}"  ${service.vip.text} (${service.scheduler} over pool ${service.pool})`,
      );
      lines.push(`    curl -i http://${service.vip.text}/`);
    }
  }
  const admin = `http://${appliance.adminAddress}`;
  lines.push(`  Admin        ${admin}/  (status page)`);
  lines.push(`    curl ${admin}/api/v1/status | ${admin}/api/v1/pools | ${admin}/metrics`);
  lines.push(`    curl '${admin}/api/v1/route?url=/a.jpg'   (explain a routing decision)`);
  lines.push(`  Stop a backend for 30 s:  curl -X POST 'http://127.0.0.1:8101/_demo/stop?for=30s'`);
  lines.push("", "Ctrl-C stops the demo.", "");
  return lines.join("\n");
}

async function statusCommand(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(args, {
    admin: { type: "string" },
    config: { type: "string", short: "c" },
    stats: { type: "boolean" },
    rate: { type: "boolean" },
    json: { type: "boolean" },
  });
  if (values.help || positionals[0] !== "l4" || positionals.length > 1) {
    io.out(USAGE.status);
    return values.help ? 0 : 2;
  }
  let adminUrl = values.admin as string | undefined;
  let token: string | undefined;
  const path = (values.config as string | undefined) ?? DEFAULT_CONFIG;
  const loaded = await loadConfigIsolated(path);
  if (loaded.ok) {
    adminUrl ??= `http://${loaded.model.admin.listen.text}`;
    if (loaded.model.admin.token_file) {
      const { dirname, resolve } = await import("node:path");
      token = (await Deno.readTextFile(resolve(dirname(path), loaded.model.admin.token_file)))
        .trim();
    }
  }
  const flags = ["stats", "rate", "json"].filter((f) => values[f]).map((f) => `--${f}`);
  return await l4StatusCommand(flags, { adminUrl: adminUrl ?? "http://127.0.0.1:9090", token });
}

function ipvsMain(args: string[], io: CliIo): Promise<number> {
  if (args.includes("--help") || args.includes("-h") || !args.length) {
    io.out(USAGE.ipvs);
    return Promise.resolve(args.length ? 0 : 2);
  }
  return ipvsCommand(args);
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
