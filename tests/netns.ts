/**
 * Test hosts in network namespaces that a test creates and removes itself. Every
 * name carries a per-run prefix so parallel tests and leftovers never collide.
 * @module
 */

/** Output of a command. */
export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command and returns its output; throws with stderr when `check` and it fails. */
export async function run(
  cmd: string[],
  options: { check?: boolean; stdin?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    stdin: options.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (options.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(options.stdin));
    await w.close();
  }
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, options.timeoutMs ?? 60_000);
  const out = await child.output();
  clearTimeout(timer);
  const result = {
    code: out.code,
    stdout: new TextDecoder().decode(out.stdout),
    stderr: new TextDecoder().decode(out.stderr),
  };
  if ((options.check ?? true) && result.code !== 0) {
    throw new Error(`${cmd.join(" ")} exited ${result.code}: ${result.stderr.trim()}`);
  }
  return result;
}

/** True when this process may create namespaces (root with `ip` present). */
export async function canUseNetns(): Promise<boolean> {
  if (Deno.build.os !== "linux") return false;
  try {
    const r = await run(["ip", "netns", "list"], { check: false });
    return r.code === 0 && Deno.uid?.() === 0;
  } catch {
    return false;
  }
}

let counter = 0;

/** A unique short name (Linux interface names are at most 15 bytes). */
export function uniqueName(prefix: string): string {
  counter++;
  return `${prefix}${Deno.pid % 10000}${counter}`.slice(0, 15);
}

/** A namespace the test owns. */
export class Netns {
  readonly name: string;
  constructor(name: string) {
    this.name = name;
  }

  /** Creates a namespace with loopback up. */
  static async create(prefix = "fu"): Promise<Netns> {
    const ns = new Netns(uniqueName(prefix));
    await run(["ip", "netns", "add", ns.name]);
    await ns.exec(["ip", "link", "set", "lo", "up"]);
    return ns;
  }

  /** Runs a command inside the namespace. */
  exec(cmd: string[], options: { check?: boolean; timeoutMs?: number } = {}): Promise<RunResult> {
    return run(["ip", "netns", "exec", this.name, ...cmd], options);
  }

  /** The argv prefix that runs a command inside the namespace (for spawning). */
  prefix(): string[] {
    return ["ip", "netns", "exec", this.name];
  }

  /** Deletes the namespace (its interfaces go with it). Never throws. */
  async delete(): Promise<void> {
    await run(["ip", "netns", "del", this.name], { check: false });
  }
}

/** Creates a veth pair between `a` and `b` with the given addresses (CIDR), both ends up. */
export async function link(
  a: Netns,
  b: Netns,
  options: { addrA: string; addrB: string; nameA?: string; nameB?: string },
): Promise<{ ifA: string; ifB: string }> {
  const ifA = options.nameA ?? uniqueName("va");
  const ifB = options.nameB ?? uniqueName("vb");
  const tmpA = uniqueName("ta");
  const tmpB = uniqueName("tb");
  await run(["ip", "link", "add", tmpA, "type", "veth", "peer", "name", tmpB]);
  await run(["ip", "link", "set", tmpA, "netns", a.name]);
  await run(["ip", "link", "set", tmpB, "netns", b.name]);
  await a.exec(["ip", "link", "set", tmpA, "name", ifA]);
  await b.exec(["ip", "link", "set", tmpB, "name", ifB]);
  await a.exec(["ip", "addr", "add", options.addrA, "dev", ifA]);
  await b.exec(["ip", "addr", "add", options.addrB, "dev", ifB]);
  await a.exec(["ip", "link", "set", ifA, "up"]);
  await b.exec(["ip", "link", "set", ifB, "up"]);
  return { ifA, ifB };
}

/**
 * A LAN: a bridge inside a hub namespace and one veth per member namespace, each
 * member's end named `ifname` and given its address. Returns the hub for cleanup.
 */
export async function lan(
  members: { ns: Netns; addr: string }[],
  options: { ifname?: string } = {},
): Promise<Netns> {
  const hub = await Netns.create("fh");
  await hub.exec(["ip", "link", "add", "br0", "type", "bridge"]);
  await hub.exec(["ip", "link", "set", "br0", "up"]);
  for (const m of members) {
    const inHub = uniqueName("hp");
    const tmp = uniqueName("hm");
    await run(["ip", "link", "add", tmp, "type", "veth", "peer", "name", inHub]);
    await run(["ip", "link", "set", inHub, "netns", hub.name]);
    await hub.exec(["ip", "link", "set", inHub, "master", "br0"]);
    await hub.exec(["ip", "link", "set", inHub, "up"]);
    await run(["ip", "link", "set", tmp, "netns", m.ns.name]);
    const name = options.ifname ?? "eth0";
    await m.ns.exec(["ip", "link", "set", tmp, "name", name]);
    await m.ns.exec(["ip", "addr", "add", m.addr, "dev", name]);
    await m.ns.exec(["ip", "link", "set", name, "up"]);
  }
  return hub;
}

/** Carries the path of the test file that {@link runFileInNetns} re-runs in a namespace. */
const NETNS_CHILD = "FULCRUM_TEST_NETNS_CHILD";

/**
 * True in the copy of test file `url` (its `import.meta.url`) that
 * {@link runFileInNetns} runs inside a fresh namespace; its netns-only tests run there.
 */
export function inNetnsChild(url: string): boolean {
  return Deno.env.get(NETNS_CHILD) === new URL(url).pathname;
}

/** Options of {@link runFileInNetns}. */
export interface RunFileInNetnsOptions {
  /** Prefix of the namespace's name (at most a few letters). */
  readonly prefix?: string;
  /** Kills the child `deno test` after this long. */
  readonly timeoutMs?: number;
}

/**
 * Re-runs test file `url` (its `import.meta.url`) with `deno test` inside a fresh
 * network namespace, removed afterwards, so no host interface is touched. In the
 * child {@link inNetnsChild} is true. Returns the child's output whatever its exit
 * code: the caller asserts on it.
 */
export async function runFileInNetns(
  url: string,
  options: RunFileInNetnsOptions = {},
): Promise<RunResult> {
  const file = new URL(url).pathname;
  const ns = await Netns.create(options.prefix);
  try {
    return await ns.exec([
      "env",
      `${NETNS_CHILD}=${file}`,
      "NO_COLOR=1",
      Deno.execPath(),
      "test",
      "-A",
      "--no-check",
      file,
    ], { check: false, timeoutMs: options.timeoutMs ?? 60_000 });
  } finally {
    await ns.delete();
  }
}
