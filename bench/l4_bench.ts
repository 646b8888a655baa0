/**
 * The userspace L4 plane against HAProxy `mode tcp` (nbthread 1), each pinned to CPU 1,
 * in front of the same two nginx static backends on loopback: wrk -c50 requests/s on a
 * 1 KiB body and bulk MB/s of a 1 GiB body fetched with curl, interleaved rounds,
 * ratios printed. Then the scheduler cost: ns per pick of each of the 14 schedulers
 * at 10 and 1,000 servers.
 *
 * Fulcrum runs with the product's flags (deno.json's `run` task). A second HAProxy with
 * `option splice-auto` (kernel splicing, as Fulcrum does for bulk flows) is measured
 * alongside as a reference; the goal's peer is the default `mode tcp` one.
 *
 * Run: `npx -y deno@2.9.6 run -A bench/l4_bench.ts [--duration 5] [--rounds 3]
 * [--bulk-runs 2]`.
 * Needs nginx, haproxy, wrk, curl and taskset. Everything runs in a temp dir on
 * 127.0.0.1 ports 19xxx and is killed at the end. Not part of the test suite.
 * @module
 */
import { buildModel } from "../config/model.ts";
import { configSchema, SCHEDULERS } from "../config/schema.ts";
import { ServerStates } from "../health/state.ts";
import { createLogger } from "../log.ts";
import { createUserspacePlane } from "../l4/proxy/mod.ts";
import { createScheduler, Dest } from "../l4/sched/mod.ts";
import { spawn, waitPort } from "./_process.ts";

const BACKENDS = [19101, 19102];
const PORTS = { haproxy: 19082, fulcrum: 19083, "haproxy+splice": 19084 };
/** The goal's peer, Fulcrum, and HAProxy with `option splice-auto` as a reference. */
const WHO = ["haproxy", "fulcrum", "haproxy+splice"] as const;
type Who = typeof WHO[number];
const arg = (name: string, fallback: number) =>
  Deno.args.includes(name) ? Number(Deno.args[Deno.args.indexOf(name) + 1]) : fallback;

async function serveMode(configPath: string): Promise<void> {
  const raw = JSON.parse(await Deno.readTextFile(configPath));
  const model = buildModel(configSchema.parse(raw), { path: configPath, hash: "bench" });
  const plane = createUserspacePlane({
    states: new ServerStates(),
    log: createLogger({ level: "warn" }),
  });
  await plane.start(model);
  console.log("ready");
  await new Promise<void>((resolve) => Deno.addSignalListener("SIGTERM", () => resolve()));
  await plane.stop();
  Deno.exit(0);
}

/**
 * The flags the product runs with (deno.json's `run` task), plus what serve mode needs
 * besides: reading the temp config and the process-wide signal handler.
 */
async function productFlags(): Promise<string[]> {
  const deno = JSON.parse(await Deno.readTextFile(new URL("../deno.json", import.meta.url)));
  const command: string = deno.tasks.run.command ?? deno.tasks.run;
  const words = command.split(/\s+/);
  return words.slice(words.indexOf("run") + 1, words.indexOf("main.ts"));
}

async function output(cmd: string[], timeoutMs: number): Promise<string> {
  const child = new Deno.Command(cmd[0], { args: cmd.slice(1), stdout: "piped", stderr: "piped" })
    .spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const out = await child.output();
  clearTimeout(timer);
  return new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
}

async function wrk(port: number, seconds: number): Promise<number> {
  const text = await output(
    ["taskset", "-c", "0", "wrk", "-t1", "-c50", `-d${seconds}s`, `http://127.0.0.1:${port}/1k`],
    (seconds + 10) * 1000,
  );
  const m = /Requests\/sec:\s+([\d.]+)/.exec(text);
  if (!m) throw new Error(`wrk gave no result: ${text}`);
  return Number(m[1]);
}

async function bulk(port: number): Promise<number> {
  const text = await output([
    "taskset",
    "-c",
    "0",
    "curl",
    "-s",
    "-o",
    "/dev/null",
    "-w",
    "%{size_download} %{time_total}",
    `http://127.0.0.1:${port}/1g`,
  ], 60_000);
  const [size, time] = text.trim().split(" ").map(Number);
  if (size !== 1 << 30) throw new Error(`bulk transfer got ${size} bytes, not 1 GiB`);
  return size / 1e6 / time;
}

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

async function proxies(): Promise<void> {
  const seconds = arg("--duration", 5);
  const rounds = arg("--rounds", 3);
  const bulkRuns = arg("--bulk-runs", 2);
  const dir = await Deno.makeTempDir({ prefix: "fulcrum-l4-bench-" });
  const children: Deno.ChildProcess[] = [];
  try {
    await Deno.writeFile(`${dir}/1k`, new Uint8Array(1024).fill(120));
    const big = await Deno.open(`${dir}/1g`, { write: true, create: true });
    await big.truncate(1 << 30);
    big.close();
    await Deno.writeTextFile(
      `${dir}/nginx.conf`,
      `worker_processes 1; daemon off; pid ${dir}/nginx.pid; error_log ${dir}/nginx.err;
events { worker_connections 4096; }
http { access_log off; sendfile on; keepalive_requests 100000;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir};
  uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  server { ${BACKENDS.map((p) => `listen 127.0.0.1:${p};`).join(" ")} root ${dir}; } }\n`,
    );
    const haproxyConfig = (port: number, splice: boolean) =>
      `global
  nbthread 1
  maxconn 4000
defaults
  mode tcp
${splice ? "  option splice-auto\n" : ""}  timeout connect 3s
  timeout client 60s
  timeout server 60s
frontend f
  bind 127.0.0.1:${port}
  default_backend b
backend b
  balance leastconn
${BACKENDS.map((p, i) => `  server s${i} 127.0.0.1:${p}`).join("\n")}\n`;
    await Deno.writeTextFile(`${dir}/haproxy.cfg`, haproxyConfig(PORTS.haproxy, false));
    await Deno.writeTextFile(
      `${dir}/haproxy-splice.cfg`,
      haproxyConfig(PORTS["haproxy+splice"], true),
    );
    await Deno.writeTextFile(
      `${dir}/fulcrum.json`,
      JSON.stringify({
        pools: { web: { servers: BACKENDS.map((p) => ({ address: `127.0.0.1:${p}` })) } },
        l4: {
          dataplane: "userspace",
          services: [{
            name: "web",
            vip: `127.0.0.1:${PORTS.fulcrum}`,
            pool: "web",
            scheduler: "wlc",
          }],
        },
      }),
    );
    children.push(spawn(["nginx", "-c", `${dir}/nginx.conf`]));
    const haproxy = spawn(["taskset", "-c", "1", "haproxy", "-f", `${dir}/haproxy.cfg`]);
    children.push(haproxy);
    const haproxySplice = spawn([
      "taskset",
      "-c",
      "1",
      "haproxy",
      "-f",
      `${dir}/haproxy-splice.cfg`,
    ]);
    children.push(haproxySplice);
    const fulcrum = spawn([
      "taskset",
      "-c",
      "1",
      Deno.execPath(),
      "run",
      ...await productFlags(),
      new URL(import.meta.url).pathname,
      "--serve",
      `${dir}/fulcrum.json`,
    ]);
    children.push(fulcrum);
    const pids: Record<Who, number> = {
      haproxy: haproxy.pid,
      fulcrum: fulcrum.pid,
      "haproxy+splice": haproxySplice.pid,
    };
    for (const p of [...BACKENDS, ...Object.values(PORTS)]) await waitPort(p);
    const series = () =>
      ({ haproxy: [], fulcrum: [], "haproxy+splice": [] }) as Record<
        Who,
        number[]
      >;
    const rps = series();
    const mbs = series();
    // CPU microseconds the proxy spent per request, and per MB of bulk: unlike the
    // rates, these hardly move when other work shares the machine.
    const usPerReq = series();
    const msPerMB = series();
    for (let r = 0; r < rounds; r++) {
      // Interleaved, the order rotating each round, so drift on the shared machine
      // falls on every proxy alike.
      const order = WHO.map((_, i) => WHO[(i + r) % WHO.length]);
      for (const who of order) {
        let cpu = cpuSeconds(pids[who]);
        const rate = await wrk(PORTS[who], seconds);
        rps[who].push(rate);
        usPerReq[who].push(((cpuSeconds(pids[who]) - cpu) * 1e6) / (rate * seconds));
        for (let k = 0; k < bulkRuns; k++) {
          cpu = cpuSeconds(pids[who]);
          mbs[who].push(await bulk(PORTS[who]));
          msPerMB[who].push(((cpuSeconds(pids[who]) - cpu) * 1e3) / ((1 << 30) / 1e6));
        }
      }
    }
    const best = (xs: number[]) => Math.max(...xs);
    const least = (xs: number[]) => Math.min(...xs);
    const median = (xs: number[]) => {
      const sorted = [...xs].sort((a, b) => a - b);
      const mid = sorted.length >> 1;
      return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    };
    console.log(`# userspace L4 vs HAProxy mode tcp (nbthread 1), all on CPU 1, clients on CPU 0`);
    console.log(
      `# ${rounds} interleaved rounds (best and median); wrk -t1 -c50 -d${seconds}s on a ` +
        `1 KiB body; ${bulkRuns} curl fetches of 1 GiB per round`,
    );
    console.log(
      `proxy            req/s best   median   1GiB MB/s best   median   CPU µs/req   CPU ms/MB`,
    );
    for (const who of WHO) {
      console.log(
        `${who.padEnd(16)} ${fmt(best(rps[who])).padStart(10)} ${
          fmt(median(rps[who])).padStart(8)
        }  ${fmt(best(mbs[who])).padStart(14)} ${fmt(median(mbs[who])).padStart(8)}  ${
          fmt(least(usPerReq[who]), 1).padStart(11)
        }  ${fmt(least(msPerMB[who]), 2).padStart(10)}`,
      );
    }
    const ratios = (peer: Who) =>
      `req/s ${fmt(best(rps.fulcrum) / best(rps[peer]), 2)}× (median ${
        fmt(median(rps.fulcrum) / median(rps[peer]), 2)
      }×), bulk ${fmt(best(mbs.fulcrum) / best(mbs[peer]), 2)}× (median ${
        fmt(median(mbs.fulcrum) / median(mbs[peer]), 2)
      }×); CPU haproxy/fulcrum per request ${
        fmt(least(usPerReq[peer]) / least(usPerReq.fulcrum), 2)
      }×, per MB ${fmt(least(msPerMB[peer]) / least(msPerMB.fulcrum), 2)}×`;
    console.log(`ratio fulcrum/haproxy: ${ratios("haproxy")} (goal ≥ 0.90× on the best)`);
    console.log(`ratio fulcrum/haproxy+splice (reference): ${ratios("haproxy+splice")}`);
    console.log(`# load average after the run: ${Deno.loadavg().map((x) => fmt(x, 2)).join(" ")}`);
  } finally {
    for (const c of children) {
      try {
        c.kill("SIGTERM");
      } catch { /* gone */ }
    }
    await Promise.allSettled(children.map((c) => c.status));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

function schedulerCost(): void {
  console.log(`\n# scheduler cost: ns per pick (each pick opens a connection on its server)`);
  console.log(`scheduler  10 servers  1000 servers`);
  for (const name of SCHEDULERS) {
    const cells: string[] = [];
    for (const n of [10, 1000]) {
      const dests = Array.from({ length: n }, (_, i) => {
        const d = new Dest(`10.${(i >> 8) & 255}.${i & 255}.1`, 80, 1 + (i % 5));
        d.activeConns = i % 7;
        return d;
      });
      const sched = createScheduler(name, { flags: ["sh-fallback", "mh-fallback"] });
      sched.update(dests);
      const contexts = Array.from({ length: 1024 }, (_, i) => ({
        client: { address: `192.168.${i >> 8}.${i & 255}`, port: 1024 + i },
        destination: { address: `172.16.${i >> 8}.${i & 255}` },
        now: 0,
      }));
      let picks = 0;
      const started = performance.now();
      while (performance.now() - started < 150) {
        for (let k = 0; k < 256; k++) {
          const d = sched.pick(contexts[picks & 1023]) as Dest | undefined;
          if (d) {
            d.activeConns++;
            if (d.activeConns > 50) d.activeConns = 0;
          }
          picks++;
        }
      }
      cells.push(fmt(((performance.now() - started) * 1e6) / picks).padStart(10));
    }
    console.log(`${name.padEnd(9)} ${cells[0]}  ${cells[1]}`);
  }
}

if (Deno.args[0] === "--serve") {
  await serveMode(Deno.args[1]);
} else {
  if (!Deno.args.includes("--sched-only")) await proxies();
  schedulerCost();
}
