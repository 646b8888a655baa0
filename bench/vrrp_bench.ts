/**
 * VRRP failover benchmark (not part of the test suite):
 *
 * 1. Failover time, Fulcrum→Fulcrum against keepalived→keepalived in the same netns
 *    set-up (two routers and a client on one bridge), VRRPv3 with advert_interval 1 s
 *    and 100 ms: from kill -9 of the master to the first ARP reply for the VIP from the
 *    backup's MAC, as seen by a client asking every 10 ms. Runs interleaved.
 * 2. False failovers while the box runs busy loops on 2× its cores, for a bounded
 *    window, at 100 ms adverts.
 * 3. Interop without flapping for 60 s: the keepalived interop tests (v2 and v3, both
 *    priority orders) with their sampling window stretched to VRRP_BENCH_STRESS_MS.
 *
 *   deno run -A bench/vrrp_bench.ts        (VRRP_BENCH_RUNS=20 VRRP_BENCH_STRESS_MS=60000)
 * @module
 */
import { canUseNetns } from "../tests/netns.ts";
import { type FulcrumProc, type KeepalivedProc, Lab, Proc, until } from "../tests/vrrp_lab.ts";

const RUNS = Number(Deno.env.get("VRRP_BENCH_RUNS") ?? 20);
const STRESS_MS = Number(Deno.env.get("VRRP_BENCH_STRESS_MS") ?? 60_000);
const VIP = "10.77.0.100";

type Kind = "fulcrum" | "keepalived";

function fulcrumConf(priority: number, intervalMs: number) {
  return {
    instances: [{
      name: "vi",
      interface: "eth0",
      vrid: 51,
      version: 3,
      priority,
      advert_interval: `${intervalMs}ms`,
      virtual_ipaddress: [`${VIP}/24`],
    }],
  };
}

function keepalivedConf(priority: number, intervalMs: number): string {
  return `global_defs {
  router_id ka${priority}
  vrrp_version 3
  vrrp_garp_master_repeat 1
  vrrp_garp_master_delay 0
}
vrrp_instance vi {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority ${priority}
  advert_int ${intervalMs / 1000}
  virtual_ipaddress {
    ${VIP}/24
  }
}
`;
}

/** Two routers (0 master, 1 backup) and a client (2) probing the VIP by ARP. */
class Pair {
  readonly kind: Kind;
  readonly intervalMs: number;
  lab!: Lab;
  master?: FulcrumProc | KeepalivedProc;
  backup?: FulcrumProc | KeepalivedProc;
  probe!: Proc;

  constructor(kind: Kind, intervalMs: number) {
    this.kind = kind;
    this.intervalMs = intervalMs;
  }

  async open(net: number): Promise<void> {
    this.lab = await Lab.create(3, { net });
    const backupMac = await this.lab.mac(1);
    this.probe = new Proc(this.lab.routers[2].ns, [
      Deno.execPath(),
      "run",
      "-A",
      new URL("../tests/vrrp_arp_probe.ts", import.meta.url).pathname,
      "eth0",
      this.lab.routers[2].ip,
      VIP,
      backupMac,
    ]);
    this.backup = await this.#start(1, 100);
    await this.startMaster();
  }

  async #start(i: number, priority: number): Promise<FulcrumProc | KeepalivedProc> {
    if (this.kind === "fulcrum") {
      const p = await this.lab.fulcrum(i, fulcrumConf(priority, this.intervalMs));
      await p.started();
      return p;
    }
    const p = await this.lab.keepalived(i, keepalivedConf(priority, this.intervalMs));
    await p.started();
    return p;
  }

  async startMaster(): Promise<void> {
    this.master = await this.#start(0, 200);
    await until(async () => (await this.lab.holders(VIP)).join() === "0", {
      timeoutMs: 30_000,
      everyMs: 50,
      what: `${this.kind}: VIP only on the master`,
    });
    // settle: the backup has heard several adverts
    await new Promise((r) => setTimeout(r, 4 * this.intervalMs + 200));
  }

  /** Kills the master with SIGKILL; returns ms until the backup answers ARP for the VIP. */
  async failover(): Promise<number> {
    const seen = this.probe.lines.length;
    const t0 = Date.now();
    const m = this.master!;
    if ("hardKill" in m) await m.hardKill();
    else await m.kill("SIGKILL");
    const line = await this.probe.waitLine(
      (l) => this.probe.lines.indexOf(l) >= seen && JSON.parse(l).t >= t0,
      30_000,
      `${this.kind}: the backup to answer ARP`,
    );
    return JSON.parse(line).t - t0;
  }

  async close(): Promise<void> {
    await this.probe?.kill("SIGKILL");
    await this.lab?.close();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function failoverTimes(intervalMs: number): Promise<Record<Kind, number[]>> {
  const pairs = {
    fulcrum: new Pair("fulcrum", intervalMs),
    keepalived: new Pair("keepalived", intervalMs),
  };
  const times: Record<Kind, number[]> = { fulcrum: [], keepalived: [] };
  try {
    await pairs.fulcrum.open(81);
    await pairs.keepalived.open(82);
    for (let run = 0; run < RUNS; run++) {
      for (const kind of ["fulcrum", "keepalived"] as const) {
        const p = pairs[kind];
        times[kind].push(await p.failover());
        await p.startMaster();
      }
    }
  } finally {
    await pairs.fulcrum.close();
    await pairs.keepalived.close();
  }
  return times;
}

async function falseFailovers(): Promise<
  Record<Kind, { samples: number; takeovers: number; roleEvents?: number }>
> {
  const out = {} as Record<Kind, { samples: number; takeovers: number; roleEvents?: number }>;
  const pairs = { fulcrum: new Pair("fulcrum", 100), keepalived: new Pair("keepalived", 100) };
  const cores = navigator.hardwareConcurrency;
  const burners: Deno.ChildProcess[] = [];
  try {
    await pairs.fulcrum.open(83);
    await pairs.keepalived.open(84);
    const started = Date.now();
    for (let i = 0; i < 2 * cores; i++) {
      // one self-bounded process per loop, so killing it really stops it
      burners.push(
        new Deno.Command(Deno.execPath(), {
          args: [
            "eval",
            `const end = Date.now() + ${STRESS_MS + 5000}; while (Date.now() < end) {}`,
          ],
          stdin: "null",
          stdout: "null",
          stderr: "null",
        }).spawn(),
      );
    }
    const state = {
      fulcrum: { was: false, samples: 0, takeovers: 0 },
      keepalived: { was: false, samples: 0, takeovers: 0 },
    };
    while (Date.now() - started < STRESS_MS) {
      for (const kind of ["fulcrum", "keepalived"] as const) {
        const has = await pairs[kind].lab.hasVip(1, VIP);
        const s = state[kind];
        s.samples++;
        if (has && !s.was) s.takeovers++;
        s.was = has;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    const fb = pairs.fulcrum.backup as FulcrumProc;
    const fm = pairs.fulcrum.master as FulcrumProc;
    for (const [who, p] of [["master", fm], ["backup", fb]] as const) {
      const s = (await p.status())[0] as { timerLatenessMs: unknown; state: string };
      console.log(
        `  fulcrum ${who}: state ${s.state}, timer lateness ms ${
          JSON.stringify(s.timerLatenessMs)
        }`,
      );
    }
    for (const e of fb.roles().filter((e) => e.t >= started)) {
      console.log(`  fulcrum backup transition to ${e.role} at +${e.t - started} ms: ${e.reason}`);
    }
    out.fulcrum = {
      samples: state.fulcrum.samples,
      takeovers: state.fulcrum.takeovers,
      roleEvents: fb.roles().filter((e) => e.t >= started && e.role === "master").length,
    };
    out.keepalived = { samples: state.keepalived.samples, takeovers: state.keepalived.takeovers };
  } finally {
    for (const b of burners) {
      try {
        b.kill("SIGKILL");
      } catch { /* done */ }
      await b.status;
    }
    await pairs.fulcrum.close();
    await pairs.keepalived.close();
  }
  return out;
}

if (import.meta.main) {
  if (!(await canUseNetns())) {
    console.log("vrrp bench: needs root and ip netns; skipped");
    Deno.exit(0);
  }
  console.log(
    `vrrp bench: N=${RUNS} failovers per implementation and interval (interleaved), VRRPv3`,
  );
  const only = Deno.env.get("VRRP_BENCH_ONLY"); // failover | stress | interop
  for (const intervalMs of !only || only === "failover" ? [1000, 100] : []) {
    const t = await failoverTimes(intervalMs);
    const mdi = 3 * intervalMs + ((256 - 100) * intervalMs) / 256;
    console.log(
      `advert_interval ${intervalMs} ms (Master_Down_Interval of the backup ${mdi.toFixed(0)} ms):`,
    );
    for (const kind of ["fulcrum", "keepalived"] as const) {
      const xs = t[kind];
      console.log(
        `  ${kind.padEnd(10)} kill -9 → VIP answers ARP on the backup: median ${
          median(xs)
        } ms, max ${Math.max(...xs)} ms, min ${Math.min(...xs)} ms (n=${xs.length})`,
      );
    }
    console.log(
      `  ratio fulcrum/keepalived: median ${
        (median(t.fulcrum) / median(t.keepalived)).toFixed(2)
      }, max ${(Math.max(...t.fulcrum) / Math.max(...t.keepalived)).toFixed(2)}`,
    );
  }
  if (!only || only === "stress") await stress();
  if (!only || only === "interop") await interop();
}

async function stress(): Promise<void> {
  const f = await falseFailovers();
  console.log(
    `false failovers during ${STRESS_MS / 1000} s of ${
      2 * navigator.hardwareConcurrency
    } busy loops (${navigator.hardwareConcurrency} cores), 100 ms adverts:`,
  );
  console.log(
    `  fulcrum    backup took the VIP ${f.fulcrum.takeovers} times (${f.fulcrum.samples} samples), master transitions logged ${f.fulcrum.roleEvents}`,
  );
  console.log(
    `  keepalived backup took the VIP ${f.keepalived.takeovers} times (${f.keepalived.samples} samples)`,
  );
}

async function interop(): Promise<void> {
  console.log(
    `interop with keepalived, VIP on exactly one side at every 100 ms sample for ${
      STRESS_MS / 1000
    } s:`,
  );
  const r = await new Deno.Command(Deno.execPath(), {
    args: [
      "test",
      "-A",
      "--filter",
      "no flapping",
      new URL("../tests/vrrp_keepalived_test.ts", import.meta.url).pathname,
    ],
    env: { VRRP_FLAP_WINDOW_MS: String(STRESS_MS), NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const out = new TextDecoder().decode(r.stdout);
  // a test running over a minute gets a "still running" note between its name and "ok"
  const lines = out.split("\n").filter((l) => /\.\.\.|passed|FAILED|ok \(/.test(l));
  for (const line of lines) console.log(`  ${line.trim()}`);
  if (!r.success) console.log(out.slice(-3000), new TextDecoder().decode(r.stderr).slice(-3000));
}
