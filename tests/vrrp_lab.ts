/**
 * A VRRP lab for integration tests and the benchmark: routers in their own network
 * namespaces on one bridged LAN, each running Fulcrum's VRRP (through the
 * `tests/vrrp_node.ts` driver) or keepalived, plus helpers to watch VIPs and the wire.
 * @module
 */
import { lan, Netns, run } from "./netns.ts";

/** One router of the lab. */
export interface Router {
  readonly ns: Netns;
  /** Primary address on eth0. */
  readonly ip: string;
}

/** A LAN of routers; `close()` removes every namespace and process. */
export class Lab {
  readonly routers: Router[];
  readonly hub: Netns;
  readonly dir: string;
  readonly #procs = new Set<Proc>();

  private constructor(routers: Router[], hub: Netns, dir: string) {
    this.routers = routers;
    this.hub = hub;
    this.dir = dir;
  }

  /** Creates `n` routers 10.<net>.0.1, .2, … /24 on eth0 of a shared bridge. */
  static async create(n: number, options: { net?: number } = {}): Promise<Lab> {
    const net = options.net ?? 77;
    const routers: Router[] = [];
    const dir = await Deno.makeTempDir({ prefix: "fulcrum-vrrp-" });
    try {
      for (let i = 0; i < n; i++) {
        routers.push({ ns: await Netns.create("fv"), ip: `10.${net}.0.${i + 1}` });
      }
      const hub = await lan(routers.map((r) => ({ ns: r.ns, addr: `${r.ip}/24` })));
      return new Lab(routers, hub, dir);
    } catch (error) {
      for (const r of routers) await r.ns.delete();
      throw error;
    }
  }

  /** Starts Fulcrum's VRRP on router `i` with the given `vrrp:` section. */
  async fulcrum(i: number, vrrp: Record<string, unknown>): Promise<FulcrumProc> {
    const path = `${this.dir}/fulcrum-${i}-${Date.now()}.json`;
    await Deno.writeTextFile(path, JSON.stringify({ vrrp }));
    const proc = new FulcrumProc(this.routers[i].ns, path);
    this.#procs.add(proc);
    return proc;
  }

  /** Starts keepalived (VRRP only) on router `i` with the given config text. */
  async keepalived(i: number, conf: string): Promise<KeepalivedProc> {
    const base = `${this.dir}/keepalived-${i}-${Date.now()}`;
    await Deno.writeTextFile(`${base}.conf`, conf);
    const proc = new KeepalivedProc(base, this.routers[i].ns, [
      "keepalived",
      "-n",
      "-l",
      "-D",
      "--vrrp",
      "-f",
      `${base}.conf`,
      "-p",
      `${base}.pid`,
      "-r",
      `${base}.vrrp.pid`,
    ]);
    this.#procs.add(proc);
    return proc;
  }

  /** Whether router `i` has `vip` on any interface. */
  async hasVip(i: number, vip: string): Promise<boolean> {
    const r = await this.routers[i].ns.exec(["ip", "-o", "addr", "show"], { check: false });
    return r.stdout.split("\n").some((line) => line.includes(` ${vip}/`));
  }

  /** The MAC address of router `i`'s eth0. */
  async mac(i: number): Promise<string> {
    const r = await this.routers[i].ns.exec(["cat", "/sys/class/net/eth0/address"]);
    return r.stdout.trim();
  }

  /** Which routers hold `vip` now. */
  async holders(vip: string): Promise<number[]> {
    const out: number[] = [];
    for (let i = 0; i < this.routers.length; i++) if (await this.hasVip(i, vip)) out.push(i);
    return out;
  }

  /** Kills every process and removes the namespaces and files. */
  async close(): Promise<void> {
    for (const p of this.#procs) {
      if (p instanceof KeepalivedProc) await p.hardKill();
      else await p.kill("SIGKILL");
    }
    for (const r of this.routers) await r.ns.delete();
    await this.hub.delete();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

/** A process in a namespace, with its stdout lines collected. */
export class Proc {
  readonly child: Deno.ChildProcess;
  readonly lines: string[] = [];
  readonly done: Promise<Deno.CommandStatus>;
  #stderr = "";
  #waiters = new Set<() => void>();

  constructor(ns: Netns, argv: string[], options: { stdin?: boolean } = {}) {
    this.child = new Deno.Command("ip", {
      args: ["netns", "exec", ns.name, ...argv],
      stdin: options.stdin ? "piped" : "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    void this.#collect(this.child.stdout, (l) => {
      this.lines.push(l);
      for (const w of this.#waiters) w();
    });
    void this.#collect(this.child.stderr, (l) => {
      this.#stderr = (this.#stderr + l + "\n").slice(-8000);
    });
    this.done = this.child.status;
  }

  /** The last lines the process wrote on stderr. */
  get stderr(): string {
    return this.#stderr;
  }

  async #collect(stream: ReadableStream<Uint8Array>, on: (line: string) => void): Promise<void> {
    let buf = "";
    try {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          on(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      }
    } catch { /* process gone */ }
  }

  /** Waits until a collected line satisfies `pred`; throws after `timeoutMs`. */
  waitLine(pred: (line: string) => boolean, timeoutMs: number, what = "a line"): Promise<string> {
    const found = this.lines.find(pred);
    if (found !== undefined) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.lines.find(pred);
        if (hit === undefined) return;
        cleanup();
        resolve(hit);
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(
          new Error(`timed out after ${timeoutMs}ms waiting for ${what}; stderr:\n${this.#stderr}`),
        );
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
    });
  }

  /** Sends `signal` and waits for the process to exit (bounded). */
  async kill(signal: Deno.Signal = "SIGTERM", timeoutMs = 5000): Promise<void> {
    try {
      this.child.kill(signal);
    } catch { /* already gone */ }
    const t = setTimeout(() => {
      try {
        this.child.kill("SIGKILL");
      } catch { /* gone */ }
    }, timeoutMs);
    await this.done;
    clearTimeout(t);
    try {
      await this.child.stdin?.close();
    } catch { /* not piped or closed */ }
  }
}

/** keepalived: a parent that respawns its VRRP child. */
export class KeepalivedProc extends Proc {
  readonly base: string;
  constructor(base: string, ns: Netns, argv: string[]) {
    super(ns, argv);
    this.base = base;
  }

  /**
   * kill -9 of the VRRP process for real: stop the parent (so it neither respawns the
   * child nor lets it shut down gracefully), SIGKILL the child, then the parent.
   */
  async hardKill(): Promise<void> {
    try {
      this.child.kill("SIGSTOP");
    } catch { /* gone */ }
    const pid = Number((await Deno.readTextFile(`${this.base}.vrrp.pid`).catch(() => "")).trim());
    if (pid > 0) {
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
    await this.kill("SIGKILL");
  }

  /** Waits until the VRRP child has written its pid file. */
  async started(timeoutMs = 10_000): Promise<void> {
    await until(async () => {
      const text = await Deno.readTextFile(`${this.base}.vrrp.pid`).catch(() => "");
      return Number(text.trim()) > 0;
    }, { timeoutMs, what: `keepalived to start; stderr:\n${this.stderr}` });
  }
}

/** One role change reported by the driver. */
export interface RoleEvent {
  readonly t: number;
  readonly instance: string;
  readonly role: string;
  readonly reason: string;
}

/** A Fulcrum VRRP driver process. */
export class FulcrumProc extends Proc {
  constructor(ns: Netns, configPath: string) {
    super(ns, [
      Deno.execPath(),
      "run",
      "-A",
      new URL("./vrrp_node.ts", import.meta.url).pathname,
      configPath,
    ], {
      stdin: true,
    });
  }

  /** Role events so far. */
  roles(instance?: string): RoleEvent[] {
    return this.lines
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l))
      .filter((e) => e.event === "role" && (!instance || e.instance === instance));
  }

  /** Waits for a role event `role` after time `since` (epoch ms). */
  async waitRole(role: string, timeoutMs: number, since = 0): Promise<RoleEvent> {
    const line = await this.waitLine(
      (l) => {
        if (!l.startsWith("{")) return false;
        const e = JSON.parse(l);
        return e.event === "role" && e.role === role && e.t >= since;
      },
      timeoutMs,
      `role ${role}`,
    );
    return JSON.parse(line);
  }

  /** Waits until the driver has started its instances. */
  async started(timeoutMs = 20_000): Promise<void> {
    await this.waitLine(
      (l) => l.includes('"event":"started"'),
      timeoutMs,
      "the VRRP driver to start",
    );
  }

  /** Sends a driver command (`stepdown NAME`, `rejoin NAME`, `status`). */
  async command(text: string): Promise<void> {
    const w = this.child.stdin.getWriter();
    await w.write(new TextEncoder().encode(text + "\n"));
    w.releaseLock();
  }

  /** The latest status the driver printed after a command. */
  async status(): Promise<Record<string, unknown>[]> {
    const count = this.lines.length;
    await this.command("status");
    const line = await this.waitLine(
      (l) => this.lines.indexOf(l) >= count && l.includes('"event":"status"'),
      5000,
      "status",
    );
    return JSON.parse(line).status;
  }
}

/** Polls `check` every `everyMs` until it is true; returns the time it became true or throws. */
export async function until(
  check: () => Promise<boolean> | boolean,
  options: { timeoutMs: number; everyMs?: number; what?: string },
): Promise<number> {
  const end = Date.now() + options.timeoutMs;
  for (;;) {
    if (await check()) return Date.now();
    if (Date.now() > end) {
      throw new Error(`timed out after ${options.timeoutMs}ms: ${options.what ?? "condition"}`);
    }
    await new Promise((r) => setTimeout(r, options.everyMs ?? 20));
  }
}

/** Runs tcpdump on the hub bridge, returning a stopper that yields its text lines. */
export function capture(lab: Lab, filter: string): { stop: () => Promise<string[]> } {
  const proc = new Proc(lab.hub, ["tcpdump", "-i", "br0", "-nn", "-l", "-e", filter]);
  return {
    async stop() {
      await new Promise((r) => setTimeout(r, 200));
      await proc.kill("SIGTERM");
      return proc.lines;
    },
  };
}

/** Runs a command and returns its stdout (for ad-hoc use in tests). */
export async function sh(cmd: string[]): Promise<string> {
  return (await run(cmd, { check: false })).stdout;
}
