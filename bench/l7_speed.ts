/**
 * Speed of the L7 switch against nginx `proxy_pass` and HAProxy, each in front of the
 * same two nginx static backends on loopback, each proxy pinned to CPU 0 and alone
 * there during its rounds (the others are stopped), wrk -c50 for 10 s on a 1 KiB and a
 * 100 KiB body. Prints req/s, p99 (and p50/p90) and RSS with
 * ratios. Fulcrum is the product itself: `deno run` with the flags of deno.json's `run`
 * task on `main.ts run -c fulcrum.yaml`, admin API included.
 *
 * Run: `npx -y deno@2.9.6 run -A bench/l7_speed.ts [--duration 10] [--rounds 3]`.
 * While iterating: `--only fulcrum` (nginx stays as the base), `--path /1k`,
 * `--alt DIR [--alt-v8 FLAGS]` (a second Fulcrum from another checkout, e.g. a
 * `git worktree` of the previous commit, measured in the same run: A/B on a noisy
 * host), `--v8 FLAGS|none`, `--fulcrum-flags "--cpu-prof --cpu-prof-dir=D"`,
 * `--fulcrum-stdout` (with `--v8 …,--trace-gc`). Needs nginx, haproxy, wrk and taskset. Everything runs in a temp dir on 127.0.0.1
 * ports 18xxx and is killed at the end. Not part of the test suite.
 * @module
 */
import { productRunFlags, spawn, waitPort } from "./_process.ts";

const BACKENDS = [18101, 18102];
/** `--v8 FLAGS|none`: V8 flags instead of those the product ships with. */
const V8_ARG = Deno.args.includes("--v8") ? Deno.args[Deno.args.indexOf("--v8") + 1] : undefined;
const V8_FLAGS = V8_ARG === "none" ? "" : V8_ARG;
const PORTS = {
  nginx: 18081,
  haproxy: 18082,
  fulcrum: 18083,
  plain: 18084,
  alt: 18085,
  fulcrumAdmin: 18086,
  altAdmin: 18087,
};
/** V8 flags of the `--alt` process (`--alt-v8 FLAGS`; default: those of Fulcrum). */
const ALT_V8 = Deno.args.includes("--alt-v8")
  ? Deno.args[Deno.args.indexOf("--alt-v8") + 1]
  : V8_FLAGS;
/**
 * Another checkout of Fulcrum to measure in the same run (`--alt DIR`, e.g. a git
 * worktree of the previous commit): an A/B comparison on a noisy host.
 */
const ALT = Deno.args.includes("--alt") ? Deno.args[Deno.args.indexOf("--alt") + 1] : undefined;
/** Extra `deno run` flags for the Fulcrum process (`--fulcrum-flags "--cpu-prof"`). */
const EXTRA_ARG = Deno.args.includes("--fulcrum-flags")
  ? Deno.args[Deno.args.indexOf("--fulcrum-flags") + 1].split(" ").filter((f) => f)
  : [];
/** Measure only these proxies (`--only fulcrum,nginx`); all by default. */
const ONLY = Deno.args.includes("--only")
  ? Deno.args[Deno.args.indexOf("--only") + 1].split(",")
  : undefined;

/** Parsed wrk output. */
interface WrkResult {
  readonly rps: number;
  readonly p99ms: number;
  /** Median and 90th percentile latency (ms): the shape of the tail. */
  readonly p50ms: number;
  readonly p90ms: number;
  readonly errors: number;
  /** CPU time the proxy spent per request (µs): steadier than req/s on a busy host. */
  readonly cpuUs: number;
  /** The user-space part of it (µs). */
  readonly userUs: number;
}

/** user + system CPU seconds of a process tree (`user: true`: user time only). */
function cpuSeconds(pid: number, options: { user?: boolean } = {}): number {
  let ticks = 0;
  for (const p of treePids(pid)) {
    try {
      const stat = Deno.readTextFileSync(`/proc/${p}/stat`);
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + (options.user ? 0 : Number(fields[12]));
    } catch { /* gone */ }
  }
  return ticks / 100;
}

/**
 * The floor from DESIGN.md: a bare `Deno.serve` + `fetch` proxy, round-robin over the
 * backends, no rules. Run in the same process layout as Fulcrum for comparison.
 */
async function plainMode(port: number): Promise<void> {
  let next = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, (req) => {
    const url = new URL(req.url);
    next = (next + 1) % BACKENDS.length;
    return fetch(`http://127.0.0.1:${BACKENDS[next]}${url.pathname}${url.search}`, {
      method: req.method,
      headers: req.headers,
      body: req.body,
    }).catch(() => new Response("bad gateway", { status: 502 }));
  });
  console.log("ready");
  await new Promise<void>((resolve) => Deno.addSignalListener("SIGTERM", () => resolve()));
  await server.shutdown();
  Deno.exit(0);
}

/**
 * `fulcrum run` from checkout `dir` on `config`, pinned to CPU 0 (the proxies' core),
 * with the product's flags (`v8` replaces its V8 flags: "" for none).
 */
function fulcrumOnCore0(dir: string, config: string, v8: string | undefined): string[] {
  return [
    "taskset",
    "-c",
    "0",
    Deno.execPath(),
    "run",
    ...productRunFlags({ v8 }),
    ...EXTRA_ARG,
    `${dir}/main.ts`,
    "run",
    "-c",
    config,
    "--log-level",
    "warn",
  ];
}

/** This module as the bare Deno proxy (`--plain`) on CPU 0, with Fulcrum's V8 flags. */
function plainOnCore0(): string[] {
  const v8 = productRunFlags({ v8: V8_FLAGS }).filter((f) => f.startsWith("--v8-flags="));
  const self = new URL(import.meta.url).pathname;
  return ["taskset", "-c", "0", Deno.execPath(), "run", "-A", ...v8, self, "--plain"];
}

function rssOf(pid: number): number {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = /VmRSS:\s+(\d+) kB/.exec(status);
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Sends `signal` to every process of a tree (gone ones are skipped). */
function signalTree(pid: number, signal: "SIGSTOP" | "SIGCONT"): void {
  for (const p of treePids(pid)) {
    try {
      Deno.kill(p, signal);
    } catch { /* gone */ }
  }
}

/** All PIDs of a process tree (nginx master + worker). */
function treePids(pid: number): number[] {
  const out = [pid];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid === pid) out.push(Number(entry.name));
    } catch { /* gone */ }
  }
  return out;
}

async function wrk(
  port: number,
  path: string,
  seconds: number,
  pid?: number,
): Promise<WrkResult & { rss: number }> {
  let rss = 0;
  const cpuBefore = pid === undefined ? 0 : cpuSeconds(pid);
  const userBefore = pid === undefined ? 0 : cpuSeconds(pid, { user: true });
  const sampler = setInterval(() => {
    if (pid === undefined) return;
    const now = treePids(pid).map(rssOf).filter((x) => !isNaN(x)).reduce((a, b) => a + b, 0);
    rss = Math.max(rss, now);
  }, 500);
  const out = await new Deno.Command("taskset", {
    args: [
      "-c",
      "1",
      "wrk",
      "-t2",
      "-c50",
      `-d${seconds}s`,
      "--latency",
      `http://127.0.0.1:${port}${path}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  clearInterval(sampler);
  const cpu = pid === undefined ? 0 : cpuSeconds(pid) - cpuBefore;
  const user = pid === undefined ? 0 : cpuSeconds(pid, { user: true }) - userBefore;
  const text = new TextDecoder().decode(out.stdout);
  const total = Number(/(\d+) requests in/.exec(text)?.[1] ?? NaN);
  const cpuUs = (cpu * 1e6) / total;
  const userUs = (user * 1e6) / total;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? NaN);
  const pct = (q: string) => {
    const m = new RegExp(`${q}%\\s+([\\d.]+)(us|ms|s)`).exec(text);
    return m ? Number(m[1]) * (m[2] === "us" ? 0.001 : m[2] === "s" ? 1000 : 1) : NaN;
  };
  const p99ms = pct("99");
  const p50ms = pct("50");
  const p90ms = pct("90");
  const err = /Non-2xx or 3xx responses: (\d+)/.exec(text);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const errors = Number(err?.[1] ?? 0) +
    (sock ? Number(sock[1]) + Number(sock[2]) + Number(sock[3]) + Number(sock[4]) : 0);
  return { rps, p99ms, p50ms, p90ms, errors, rss, cpuUs, userUs };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function main(): Promise<void> {
  const args = Deno.args;
  if (args.includes("--plain")) return await plainMode(PORTS.plain);
  const seconds = args.includes("--duration") ? Number(args[args.indexOf("--duration") + 1]) : 10;
  const rounds = args.includes("--rounds") ? Number(args[args.indexOf("--rounds") + 1]) : 3;
  for (const port of [...BACKENDS, ...Object.values(PORTS)]) {
    try {
      Deno.listen({ hostname: "127.0.0.1", port }).close();
    } catch {
      throw new Error(`port 127.0.0.1:${port} is in use; stop what listens there and run again`);
    }
  }
  // The driver (this process: wrk's parent, the /proc sampler) joins wrk and the
  // backends on CPU 1, so its bursts never preempt the proxy under test on CPU 0.
  await new Deno.Command("taskset", {
    args: ["-a", "-p", "-c", "1", String(Deno.pid)],
    stdout: "null",
  })
    .output();
  const dir = await Deno.makeTempDir({ prefix: "fulcrum-l7-bench-" });
  const procs: Deno.ChildProcess[] = [];
  try {
    await Deno.chmod(dir, 0o755); // nginx workers run unprivileged
    await Deno.mkdir(`${dir}/www`, { mode: 0o755 });
    await Deno.writeFile(`${dir}/www/1k`, new Uint8Array(1024).fill(97));
    await Deno.writeFile(`${dir}/www/100k`, new Uint8Array(100 * 1024).fill(98));
    const common = `pid ${dir}/PID; error_log ${dir}/error.log warn; daemon off;`;
    await Deno.writeTextFile(
      `${dir}/backends.conf`,
      `${common.replace("PID", "backends.pid")} worker_processes 1;
events { worker_connections 4096; }
http { access_log off; sendfile on; tcp_nopush on; keepalive_requests 100000;
  ${BACKENDS.map((p) => `server { listen 127.0.0.1:${p}; root ${dir}/www; }`).join("\n  ")}
}`,
    );
    await Deno.writeTextFile(
      `${dir}/proxy.conf`,
      `${common.replace("PID", "proxy.pid")} worker_processes 1;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 100000;
  upstream be { ${BACKENDS.map((p) => `server 127.0.0.1:${p};`).join(" ")} keepalive 64; }
  server { listen 127.0.0.1:${PORTS.nginx};
    location / { proxy_pass http://be; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_buffer_size 16k; proxy_buffers 8 16k; } }
}`,
    );
    await Deno.writeTextFile(
      `${dir}/haproxy.cfg`,
      `global
  nbthread 1
  maxconn 4096
defaults
  mode http
  timeout connect 3s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend fe
  bind 127.0.0.1:${PORTS.haproxy}
  default_backend be
backend be
  balance uri
  hash-type consistent
  hash-balance-factor 125
  http-reuse always
  ${BACKENDS.map((p, i) => `server s${i} 127.0.0.1:${p}`).join("\n  ")}
`,
    );
    const fulcrumConfig = (port: number, admin: number) =>
      JSON.stringify({
        admin: { listen: `127.0.0.1:${admin}` },
        pools: { html: { servers: BACKENDS.map((p) => ({ address: `127.0.0.1:${p}` })) } },
        l7: {
          listeners: [{
            name: "web",
            listen: `127.0.0.1:${port}`,
            rules: [
              { match: { path_suffix: [".jpg", ".png", ".gif"] }, pool: "html" },
              { match: { path_prefix: "/cgi-bin/" }, pool: "html" },
              { pool: "html" },
            ],
            balance: { hash: "uri", load_bound: 1.25 },
          }],
        },
      });
    await Deno.writeTextFile(
      `${dir}/fulcrum.json`,
      fulcrumConfig(PORTS.fulcrum, PORTS.fulcrumAdmin),
    );
    await Deno.writeTextFile(`${dir}/alt.json`, fulcrumConfig(PORTS.alt, PORTS.altAdmin));
    procs.push(spawn(["taskset", "-c", "1", "nginx", "-c", `${dir}/backends.conf`, "-p", dir]));
    for (const p of BACKENDS) await waitPort(p);
    const nginx = spawn(["taskset", "-c", "0", "nginx", "-c", `${dir}/proxy.conf`, "-p", dir]);
    const haproxy = spawn(["taskset", "-c", "0", "haproxy", "-f", `${dir}/haproxy.cfg`]);
    const checkout = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
    const fulcrum = spawn(fulcrumOnCore0(checkout, `${dir}/fulcrum.json`, V8_FLAGS), {
      quiet: !Deno.args.includes("--fulcrum-stdout"),
    });
    const plain = spawn(plainOnCore0());
    procs.push(nginx, haproxy, fulcrum, plain);
    const alt = ALT === undefined
      ? undefined
      : spawn(fulcrumOnCore0(ALT, `${dir}/alt.json`, ALT_V8));
    if (alt) {
      procs.push(alt);
      await waitPort(PORTS.alt, 30_000);
    }
    await waitPort(PORTS.nginx);
    await waitPort(PORTS.haproxy);
    await waitPort(PORTS.fulcrum, 30_000);
    await waitPort(PORTS.plain, 30_000);
    const proxies = ([
      ["nginx", PORTS.nginx, nginx.pid],
      ["haproxy", PORTS.haproxy, haproxy.pid],
      ["fulcrum", PORTS.fulcrum, fulcrum.pid],
      ["deno-plain", PORTS.plain, plain.pid],
      ...(alt ? [["fulcrum-alt", PORTS.alt, alt.pid] as const] : []),
    ] as const).filter(([name]) =>
      !ONLY || ONLY.includes(name) || name === "nginx" || name === "fulcrum-alt"
    );
    console.log(
      `wrk -c50 -d${seconds}s, proxies pinned to CPU 0 (the others stopped during each one's round), wrk, backends and this driver on CPU 1; ` +
        `${rounds} interleaved rounds, medians; fulcrum: deno run ${
          productRunFlags({ v8: V8_FLAGS }).join(" ")
        }`,
    );
    const paths = args.includes("--path") ? [args[args.indexOf("--path") + 1]] : ["/1k", "/100k"];
    const runs = new Map<string, (WrkResult & { rss: number })[]>();
    // warm up: 3 s per path lets V8 finish optimizing Fulcrum's hot code before the rounds
    for (const path of paths) for (const [, port] of proxies) await wrk(port, path, 3);
    for (let round = 0; round < rounds; round++) {
      for (const path of paths) {
        for (const [name, port, pid] of proxies) {
          // alone on CPU 0: an idle proxy's own work (a Deno process collects its
          // heap a while after its load ends) must not land in another's round
          const others = proxies.filter(([other]) => other !== name).map(([, , p]) => p);
          for (const other of others) signalTree(other, "SIGSTOP");
          let r: WrkResult & { rss: number };
          try {
            r = await wrk(port, path, seconds, pid);
          } finally {
            for (const other of others) signalTree(other, "SIGCONT");
          }
          const key = `${path} ${name}`;
          if (!runs.has(key)) runs.set(key, []);
          runs.get(key)!.push(r);
        }
      }
    }
    for (const path of paths) {
      const results = new Map<string, WrkResult & { rss: number }>();
      for (const [name] of proxies) {
        const list = runs.get(`${path} ${name}`)!;
        results.set(name, {
          rps: median(list.map((r) => r.rps)),
          p99ms: median(list.map((r) => r.p99ms)),
          p50ms: median(list.map((r) => r.p50ms)),
          p90ms: median(list.map((r) => r.p90ms)),
          errors: list.reduce((a, r) => a + r.errors, 0),
          cpuUs: median(list.map((r) => r.cpuUs)),
          userUs: median(list.map((r) => r.userUs)),
          rss: Math.max(...list.map((r) => r.rss)),
        });
      }
      const base = results.get("nginx")!;
      const hap = results.get("haproxy") ?? base;
      console.log(
        `\nbody ${path.slice(1)} (each round, fulcrum/nginx: req/s ${
          runs.get(`${path} fulcrum`)!.map((r, i) =>
            (r.rps / runs.get(`${path} nginx`)![i].rps).toFixed(2)
          )
            .join(" ")
        }, p99 ${
          runs.get(`${path} fulcrum`)!.map((r, i) =>
            (r.p99ms / runs.get(`${path} nginx`)![i].p99ms).toFixed(2)
          )
            .join(" ")
        }):`,
      );
      console.log(
        "proxy      req/s      p99 ms  max RSS MB  errors  vs nginx  vs haproxy  p99 vs nginx" +
          "  CPU µs/req  CPU vs nginx  user µs/req  p50/p90 ms",
      );
      for (const [name, r] of results) {
        console.log(
          `${name.padEnd(10)} ${r.rps.toFixed(0).padStart(8)} ${r.p99ms.toFixed(2).padStart(9)} ` +
            `${r.rss.toFixed(1).padStart(11)} ${String(r.errors).padStart(7)} ` +
            `${(r.rps / base.rps).toFixed(2).padStart(9)} ${
              (r.rps / hap.rps).toFixed(2).padStart(11)
            } ` +
            `${(r.p99ms / base.p99ms).toFixed(2).padStart(13)} ${
              r.cpuUs.toFixed(1).padStart(11)
            } ` +
            `${(r.cpuUs / base.cpuUs).toFixed(2).padStart(13)} ${
              r.userUs.toFixed(1).padStart(12)
            }` +
            `  ${r.p50ms.toFixed(2)}/${r.p90ms.toFixed(2)}`,
        );
      }
    }
  } finally {
    for (const p of procs) {
      try {
        p.kill("SIGTERM");
      } catch { /* gone */ }
    }
    for (const p of procs) await p.status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) await main();
