/**
 * Health-check CPU benchmark: 10,000 servers checked by TCP every 1 s against local
 * listeners, Fulcrum's checker against HAProxy's `check` (nbthread 1) and keepalived's
 * checker, measured side by side over the same window from /proc/PID/stat.
 *
 * The listeners are one HAProxy process (not measured) that binds 20 loopback
 * addresses × 500 ports and holds each accepted connection until the checker closes it. Also prints the
 * jitter spread of Fulcrum's probes: the most probes in any 100 ms window against the
 * mean per 100 ms.
 *
 * Run: `deno run -A bench/health_bench.ts [--servers 10000] [--window 20] [--warmup 5]`.
 * The measured child runs with the product's V8 flags (deno.json's `run` task);
 * `--cpu-prof DIR` has it write a V8 CPU profile into DIR.
 * Not part of the test suite. Needs haproxy; keepalived is tried and reported.
 *
 * keepalived's checker needs `ip_vs`. Where the kernel lacks it, `--vm` runs this bench
 * inside the IPVS VM (tests/ipvs_vm.sh: qemu TCG, one CPU, bounded to 300 s):
 *
 *   deno run -A bench/health_bench.ts --vm [--servers 300] [--window 20] [--warmup 5]
 *
 * Inside (`--in-vm`, or FULCRUM_IN_VM=1 which the VM script sets) keepalived must start,
 * and the three checkers run side by side over the same servers and interval on the
 * VM's one emulated CPU. The default there is 300 servers, few enough that every
 * checker keeps up with its interval (1,000 saturate the CPU): a checker starved of
 * CPU checks less often, and the ratios say nothing. The bench warns when a checker
 * made under 90% of the planned checks. Compare only ratios from one run: TCG makes
 * absolute numbers many times slower than hardware.
 * @module
 */
import { buildModel } from "../config/model.ts";
import { configSchema } from "../config/schema.ts";
import { createHealth } from "../health/mod.ts";
import { burstiness } from "../health/schedule.ts";
import { ServerStates } from "../health/state.ts";
import { createLogger } from "../log.ts";
import { RoleBoard } from "../vrrp/role.ts";
import { productRunFlags } from "./_process.ts";

const ADDRS = 20;
const BASE_PORT = 21000;

/** Servers checked inside the IPVS VM unless `--servers` says otherwise. */
const VM_SERVERS = 300;
/** Bound on the whole VM run, boot to power-off, in seconds. */
const VM_TIMEOUT = 300;

/** Command-line options. */
interface BenchOptions {
  servers: number;
  window: number;
  warmup: number;
  /** Inside the IPVS VM: keepalived must run, and the report says so. */
  inVm: boolean;
  /** `--cpu-prof DIR`: the Fulcrum child writes a V8 CPU profile there. */
  cpuProf?: string;
}

function parseArgs(args: string[]): BenchOptions & { child: boolean; vm: boolean } {
  const get = (name: string, fallback: number): number => {
    const i = args.indexOf(`--${name}`);
    return i >= 0 ? Number(args[i + 1]) : fallback;
  };
  const inVm = args.includes("--in-vm") || Deno.env.get("FULCRUM_IN_VM") === "1";
  const vm = args.includes("--vm");
  return {
    servers: get("servers", inVm || vm ? VM_SERVERS : 10_000),
    window: get("window", 20),
    warmup: get("warmup", 5),
    inVm,
    cpuProf: args.includes("--cpu-prof") ? args[args.indexOf("--cpu-prof") + 1] : undefined,
    child: args.includes("--child"),
    vm,
  };
}

function endpoints(n: number): { host: string; port: number }[] {
  const perAddr = Math.ceil(n / ADDRS);
  return Array.from({ length: n }, (_, i) => ({
    host: `127.0.9.${1 + Math.floor(i / perAddr)}`,
    port: BASE_PORT + (i % perAddr),
  }));
}

/** CPU seconds (user + system) of a process, from /proc. */
function cpuSeconds(pid: number): number {
  const t = cpuSplit(pid);
  return t.user + t.sys;
}

/** User and system CPU seconds of a process, from /proc/PID/stat. */
function cpuSplit(pid: number): { user: number; sys: number } {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is state (field 3); utime is field 14, stime 15.
  return { user: Number(fields[11]) / 100, sys: Number(fields[12]) / 100 };
}

/** Busy and total jiffies of the whole machine, from /proc/stat. */
function machineTicks(): { busy: number; total: number } {
  const cpu = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1)
    .map(Number);
  const total = cpu.reduce((a, b) => a + b, 0);
  return { busy: total - cpu[3] - (cpu[4] ?? 0), total };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The measured process: Fulcrum's health subsystem with `servers` TCP checks. */
async function child(options: BenchOptions): Promise<void> {
  const eps = endpoints(options.servers);
  const perPool = 1000;
  const pools: Record<string, unknown> = {};
  for (let i = 0; i < eps.length; i += perPool) {
    pools[`p${i / perPool}`] = {
      check: { type: "tcp" },
      servers: eps.slice(i, i + perPool).map((e) => ({ address: `${e.host}:${e.port}` })),
    };
  }
  const config = configSchema.parse({
    defaults: { check: { interval: "1s", timeout: "1s", rise: 2, fall: 3 } },
    pools,
  });
  const model = buildModel(config, { path: "bench.yaml", hash: "0" });
  const states = new ServerStates();
  const times: number[] = [];
  const due: number[] = [];
  let recording = false;
  const health = createHealth({
    states,
    roles: new RoleBoard(),
    log: createLogger({ level: "error" }),
  }, {
    onProbe: (_pool, _address, dueAt) => {
      if (!recording) return;
      times.push(Date.now());
      due.push(dueAt);
    },
  });
  await health.start(model);
  console.log("started");
  await sleep(options.warmup * 1000);
  recording = true;
  console.log("window");
  await sleep(options.window * 1000);
  recording = false;
  const up = states.list().filter((s) => s.health === "up").length;
  const reasons: Record<string, number> = {};
  for (const s of states.list()) {
    if (s.health === "down") reasons[s.reason] = (reasons[s.reason] ?? 0) + 1;
  }
  const spread = burstiness(times, 100);
  const planned = burstiness(due, 100);
  // How late probes started: a stalled or starved process shows here.
  const late = times.map((t, i) => t - due[i]).sort((a, b) => a - b);
  const lateness = {
    p50: late[Math.floor(0.5 * (late.length - 1))] ?? 0,
    p99: late[Math.floor(0.99 * (late.length - 1))] ?? 0,
    max: late.at(-1) ?? 0,
  };
  // Keep checking while the parent takes its last CPU sample.
  await sleep(2000);
  await health.stop();
  console.log(
    JSON.stringify({ probes: times.length, up, reasons, ...spread, planned, lateness }),
  );
}

function haproxyListeners(n: number): string {
  const perAddr = Math.ceil(n / ADDRS);
  const binds = Array.from(
    { length: ADDRS },
    (_, a) => `  bind 127.0.9.${a + 1}:${BASE_PORT}-${BASE_PORT + perAddr - 1}`,
  );
  return [
    "global",
    "  maxconn 3000",
    "  nbthread 2",
    "defaults",
    "  mode tcp",
    "  timeout client 5s",
    "  timeout connect 1s",
    "  timeout server 5s",
    "frontend sink",
    ...binds,
    // Hold each connection until the checker hangs up (an immediate reject would reset
    // it, which a checker may see before the connect completes).
    "  tcp-request inspect-delay 3s",
    "  tcp-request content reject if WAIT_END",
    "",
  ].join("\n");
}

function haproxyChecker(n: number, dir: string): string {
  const servers = endpoints(n).map((e, i) =>
    `  server s${i} ${e.host}:${e.port} check inter 1s rise 2 fall 3`
  );
  servers.unshift(`  source ${SOURCES.haproxy}`);
  return [
    "global",
    "  maxconn 1000",
    "  nbthread 1",
    "defaults",
    "  mode tcp",
    "  timeout client 5s",
    "  timeout connect 1s",
    "  timeout server 5s",
    "  timeout check 1s",
    "frontend fe",
    `  bind unix@${dir}/fe.sock`,
    "  default_backend be",
    "backend be",
    ...servers,
    "",
  ].join("\n");
}

function keepalivedChecker(n: number): string {
  const servers = endpoints(n).map((e) =>
    `  real_server ${e.host} ${e.port} {\n    weight 1\n    TCP_CHECK {\n      connect_timeout 1\n      bindto ${SOURCES.keepalived}\n    }\n  }`
  );
  return [
    "global_defs { router_id bench }",
    "virtual_server 10.255.0.1 80 {",
    "  delay_loop 1",
    "  lb_algo rr",
    "  lb_kind NAT",
    "  protocol TCP",
    ...servers,
    "}",
    "",
  ].join("\n");
}

async function lines(stream: ReadableStream<Uint8Array>, onLine: (l: string) => void) {
  let buf = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    buf += chunk;
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  }
}

function waitFor(pred: () => boolean, ms: number): Promise<boolean> {
  return (async () => {
    const end = performance.now() + ms;
    while (!pred()) {
      if (performance.now() > end) return false;
      await sleep(50);
    }
    return true;
  })();
}

/** Tries to start keepalived's checker; returns its pids or why it would not run. */
async function startKeepalived(
  dir: string,
  n: number,
  spawn: (cmd: string, args: string[], io: Deno.CommandOptions) => Deno.ChildProcess,
): Promise<{ proc?: Deno.ChildProcess; pids: number[]; note: string; log: string[] }> {
  const conf = `${dir}/keepalived.conf`;
  await Deno.writeTextFile(conf, keepalivedChecker(n));
  const log: string[] = [];
  let proc: Deno.ChildProcess;
  try {
    proc = spawn("keepalived", [
      "--check",
      "-n",
      "-l",
      "-f",
      conf,
      "-p",
      `${dir}/ka.pid`,
      "-c",
      `${dir}/ka-check.pid`,
    ], { stdout: "piped", stderr: "piped" });
  } catch (error) {
    return { pids: [], note: `keepalived not run: ${(error as Error).message}`, log };
  }
  lines(proc.stdout, (l) => log.push(l)).catch(() => {});
  lines(proc.stderr, (l) => log.push(l)).catch(() => {});
  // Without ip_vs the checker child logs "Can't initialize ipvs" and then spends its
  // time removing every service before it exits: that is not checking, so stop there.
  const failed = (l: string) => /Can't initialize ipvs|FATAL/i.test(l);
  let exited = false;
  proc.status.then(() => exited = true);
  await waitFor(() => exited || log.some(failed), 5000);
  if (exited || log.some(failed)) {
    const why = log.find(failed) ?? log.at(-1) ?? "";
    if (!exited) await stopProc(proc);
    return {
      pids: [],
      note: `keepalived --check cannot start its checker here: ${why.replace(/^.*?\d{4}: /, "")}`,
      log,
    };
  }
  let checker: number | undefined;
  try {
    checker = Number((await Deno.readTextFile(`${dir}/ka-check.pid`)).trim());
  } catch { /* not written */ }
  return {
    proc,
    pids: [proc.pid, ...(checker ? [checker] : [])],
    note: "keepalived running",
    log,
  };
}

function stopProc(proc: Deno.ChildProcess | undefined): Promise<unknown> {
  if (!proc) return Promise.resolve();
  try {
    proc.kill("SIGTERM");
  } catch { /* gone */ }
  const timer = setTimeout(() => {
    try {
      proc.kill("SIGKILL");
    } catch { /* gone */ }
  }, 3000);
  return proc.status.finally(() => clearTimeout(timer));
}

/** Source addresses that tell the checkers' SYNs apart in the netns's counters. */
const SOURCES = { fulcrum: "127.0.0.1", haproxy: "127.0.0.2", keepalived: "127.0.0.3" } as const;

async function sh(cmd: string[]): Promise<string> {
  const out = await new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(`${cmd.join(" ")} failed: ${new TextDecoder().decode(out.stderr).trim()}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** SYNs sent per checker source address so far (iptables counters in the netns). */
async function synCounts(ns: string): Promise<Record<keyof typeof SOURCES, number>> {
  const text = await sh(["ip", "netns", "exec", ns, "iptables", "-S", "OUTPUT", "-v"]);
  const counts = { fulcrum: 0, haproxy: 0, keepalived: 0 };
  for (const line of text.split("\n")) {
    const m = /-s (\S+)\/32 .*-c (\d+) \d+/.exec(line);
    if (!m) continue;
    for (const [k, addr] of Object.entries(SOURCES)) {
      if (m[1] === addr) counts[k as keyof typeof counts] = Number(m[2]);
    }
  }
  return counts;
}

async function main(options: BenchOptions): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "fulcrum-health-bench-" });
  const ns = `fhbench${Deno.pid % 100000}`;
  const procs: (Deno.ChildProcess | undefined)[] = [];
  const inNs = (cmd: string, args: string[], io: Deno.CommandOptions = {}) =>
    new Deno.Command("ip", { args: ["netns", "exec", ns, cmd, ...args], ...io }).spawn();
  try {
    console.log(
      `health bench${options.inVm ? " (inside the IPVS VM, qemu TCG)" : ""}: ` +
        `${options.servers} servers, TCP check every 1s, warmup ${options.warmup}s, ` +
        `window ${options.window}s, ${navigator.hardwareConcurrency} cores, all inside netns ${ns}`,
    );
    // Everything runs in a fresh netns: loopback only, and SYN counters per checker.
    await sh(["ip", "netns", "add", ns]);
    await sh(["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
    for (const addr of Object.values(SOURCES)) {
      await sh([
        "ip",
        "netns",
        "exec",
        ns,
        "iptables",
        "-A",
        "OUTPUT",
        "-s",
        addr,
        "-d",
        "127.0.9.0/24",
        "-p",
        "tcp",
        "--syn",
      ]);
    }

    await Deno.writeTextFile(`${dir}/sink.cfg`, haproxyListeners(options.servers));
    const sink = inNs("haproxy", ["-f", `${dir}/sink.cfg`, "-db", "-q"], {
      stdout: "null",
      stderr: "inherit",
    });
    procs.push(sink);
    await sleep(1500);

    await Deno.writeTextFile(`${dir}/checker.cfg`, haproxyChecker(options.servers, dir));
    const haproxy = inNs("haproxy", ["-f", `${dir}/checker.cfg`, "-db", "-q"], {
      stdout: "null",
      stderr: "inherit",
    });
    procs.push(haproxy);
    await sleep(1000);
    for (const [what, p] of [["listener", sink], ["checker", haproxy]] as const) {
      try {
        cpuSeconds(p.pid);
      } catch {
        throw new Error(`haproxy ${what} exited at start; see its messages above`);
      }
    }

    const ka = await startKeepalived(dir, options.servers, (cmd, args, io) => inNs(cmd, args, io));
    procs.push(ka.proc);
    if (options.inVm && !ka.pids.length) {
      for (const l of ka.log.slice(-10)) console.error(`keepalived: ${l}`);
      throw new Error(`${ka.note}; the VM has ip_vs, so this is a bench or keepalived fault`);
    }

    const run = [
      Deno.execPath(),
      "run",
      ...productRunFlags().filter((f) => f.startsWith("--v8-flags=")),
      ...(options.cpuProf ? ["--cpu-prof", `--cpu-prof-dir=${options.cpuProf}`] : []),
      "-A",
      new URL(import.meta.url).pathname,
      "--child",
      "--servers",
      String(options.servers),
      "--window",
      String(options.window),
      "--warmup",
      String(options.warmup),
    ];
    const io = { stdout: "piped", stderr: "inherit" } as const;
    // The VM's shell keeps the kernel's default soft limit of 1024 descriptors; `exec`
    // keeps the pid, so the CPU read is Fulcrum's.
    const fulcrum = options.inVm
      ? inNs("sh", ["-c", 'ulimit -n "$(ulimit -Hn)" && exec "$0" "$@"', ...run], io)
      : inNs(run[0], run.slice(1), io);
    procs.push(fulcrum);
    const out: string[] = [];
    const reading = lines(fulcrum.stdout!, (l) => out.push(l));
    if (!await waitFor(() => out.includes("window"), (options.warmup + 30) * 1000)) {
      throw new Error("the Fulcrum checker did not start; run with --child to see why");
    }
    const pids = { fulcrum: fulcrum.pid, haproxy: haproxy.pid };
    const sample = () => ({
      fulcrum: cpuSplit(pids.fulcrum),
      haproxy: cpuSplit(pids.haproxy),
      keepalived: ka.pids.map(cpuSplit).reduce(
        (s, t) => ({ user: s.user + t.user, sys: s.sys + t.sys }),
        { user: 0, sys: 0 },
      ),
    });
    const c0 = sample();
    const syn0 = await synCounts(ns);
    const m0 = machineTicks();
    const t0 = performance.now();
    await sleep(options.window * 1000);
    const c1 = sample();
    const syn1 = await synCounts(ns);
    const m1 = machineTicks();
    const secs = (performance.now() - t0) / 1000;
    await fulcrum.status;
    await reading;
    const result = JSON.parse(out.at(-1)!);
    const busy = (m1.busy - m0.busy) / (m1.total - m0.total);
    console.log(
      `window ${secs.toFixed(1)}s; whole machine ${
        (100 * busy).toFixed(0)
      }% busy over ${navigator.hardwareConcurrency} cores (the listener haproxy and any other work on the machine included)`,
    );
    const rows: Record<string, { pct: number; perCheck: number; rate: number }> = {};
    const measured = ka.pids.length
      ? ["fulcrum", "haproxy", "keepalived"] as const
      : ["fulcrum", "haproxy"] as const;
    for (const k of measured) {
      const user = c1[k].user - c0[k].user;
      const sys = c1[k].sys - c0[k].sys;
      const checks = syn1[k] - syn0[k];
      const pct = 100 * (user + sys) / secs;
      const perCheck = checks ? 1e6 * (user + sys) / checks : NaN;
      rows[k] = { pct, perCheck, rate: checks / secs };
      console.log(
        `${k.padEnd(10)} cpu ${pct.toFixed(1).padStart(5)}% of one core ` +
          `(user ${(100 * user / secs).toFixed(1)}% + system ${(100 * sys / secs).toFixed(1)}%), ` +
          `${(checks / secs).toFixed(0)} checks/s (SYNs counted), ${
            perCheck.toFixed(1)
          } µs CPU per check`,
      );
    }
    console.log(
      `fulcrum: ${(result.probes / options.window).toFixed(0)} probes/s started in its ` +
        `window, started after their due time by ${result.lateness.p50.toFixed(0)} ms (median), ` +
        `${result.lateness.p99.toFixed(0)} ms (p99), ${result.lateness.max.toFixed(0)} ms (max); ` +
        `${result.up}/${options.servers} servers up at the end` +
        (result.up < options.servers ? `; down reasons: ${JSON.stringify(result.reasons)}` : ""),
    );
    const starved = measured.filter((k) => rows[k].rate < 0.9 * options.servers);
    if (starved.length) {
      console.log(
        `WARNING: ${starved.join(", ")} checked under 90% of the ${options.servers} checks/s ` +
          `planned, with the machine ${(100 * busy).toFixed(0)}% busy: a checker starved of ` +
          `CPU checks less often, so the ratios are skewed; rerun with fewer --servers`,
      );
    }
    if (!ka.pids.length) console.log(`keepalived: not measured: ${ka.note}`);
    for (const peer of measured.slice(1)) {
      console.log(
        `ratio fulcrum/${peer}: cpu ${(rows.fulcrum.pct / rows[peer].pct).toFixed(2)}, ` +
          `cpu per check ${(rows.fulcrum.perCheck / rows[peer].perCheck).toFixed(2)}, ` +
          `checks/s ${(rows.fulcrum.rate / rows[peer].rate).toFixed(2)}`,
      );
    }
    console.log(
      `jitter spread (fulcrum): max ${result.max} probes in a 100 ms window, mean ${
        result.mean.toFixed(1)
      }, ratio max/mean ${(result.max / result.mean).toFixed(2)} as started (goal <= 2); ` +
        `as scheduled ${(result.planned.max / result.planned.mean).toFixed(2)}`,
    );
    if (rows.keepalived) {
      const met = rows.fulcrum.pct <= rows.keepalived.pct &&
        rows.fulcrum.perCheck <= rows.keepalived.perCheck;
      console.log(
        `goal CPU <= keepalived's: ${met ? "met" : "NOT met"} (cpu and cpu per check)`,
      );
    }
    if (options.inVm) {
      console.log(
        "goal under 25% of one core: not judged in the VM (TCG is many times slower than " +
          "hardware); run without --vm for it",
      );
    } else {
      const at10k = rows.fulcrum.perCheck * 10_000 / 1e4;
      console.log(
        `goal under 25% of one core: ${rows.fulcrum.pct < 25 ? "met" : "NOT met"} at the rate ` +
          `reached; ${
            at10k.toFixed(1)
          }% of one core projected at 10,000 checks/s from the cost per check`,
      );
    }
  } finally {
    for (const p of procs.reverse()) await stopProc(p);
    await sh(["ip", "netns", "del", ns]).catch(() => {});
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/**
 * Runs this bench inside the IPVS VM (tests/ipvs_vm.sh) with the same options, its
 * output passed through; returns the VM's exit code (124 past {@link VM_TIMEOUT}).
 */
async function runInVm(options: BenchOptions): Promise<number> {
  const root = new URL("..", import.meta.url).pathname;
  const args = `--in-vm --servers ${options.servers} --window ${options.window} ` +
    `--warmup ${options.warmup}` + (options.cpuProf ? ` --cpu-prof ${options.cpuProf}` : "");
  // The run stays inside the bound: boot ~15 s, start ~15 s, warmup, window, stop.
  const needed = 60 + options.warmup + options.window;
  if (needed > VM_TIMEOUT) {
    throw new Error(
      `--warmup ${options.warmup} and --window ${options.window} do not fit the VM's ` +
        `${VM_TIMEOUT} s bound; keep their sum under ${VM_TIMEOUT - 60}`,
    );
  }
  const { code } = await new Deno.Command(`${root}tests/ipvs_vm.sh`, {
    args: [
      "--",
      "sh",
      "-c",
      `exec "$DENO" run -A --no-check bench/health_bench.ts ${args}`,
    ],
    cwd: root,
    env: { IPVS_VM_DENO: Deno.execPath(), IPVS_VM_TIMEOUT: String(VM_TIMEOUT) },
    stdin: "null",
    stdout: "inherit",
    stderr: "inherit",
  }).spawn().status;
  return code;
}

if (import.meta.main) {
  const options = parseArgs(Deno.args);
  if (options.child) await child(options);
  else if (options.vm) Deno.exit(await runInVm(options));
  else await main(options);
}
