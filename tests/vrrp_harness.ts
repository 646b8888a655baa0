/**
 * Shared pieces of the VRRP integration tests: a lab-per-test wrapper, instance
 * configs, starting Fulcrum nodes and keepalived, and waiting for or sampling VIP
 * ownership. Built on `tests/vrrp_lab.ts`.
 * @module
 */
import { type FulcrumProc, Lab, until } from "./vrrp_lab.ts";

/** The IPv4 VIP the tests share. */
export const VIP = "10.77.0.100";

/** Options of {@linkcode labTest}. */
export interface LabTestOptions {
  /** Skip the test (no netns, no keepalived, …). */
  readonly ignore?: boolean;
  /** How many routers the lab has (default 2). */
  readonly routers?: number;
}

/**
 * Registers a Deno test that runs `body` on a fresh lab of routers and always closes
 * the lab afterwards (processes, namespaces and files).
 */
export function labTest(
  name: string,
  body: (lab: Lab) => Promise<void>,
  options: LabTestOptions = {},
): void {
  Deno.test({
    name,
    ignore: options.ignore ?? false,
    sanitizeResources: false,
    sanitizeOps: false,
  }, async () => {
    const lab = await Lab.create(options.routers ?? 2);
    try {
      await body(lab);
    } finally {
      await lab.close();
    }
  });
}

/** Options of {@linkcode vrrpConfig}. */
export interface VrrpConfigOptions {
  /** Instance name (default `vi`). */
  readonly name?: string;
  /** Virtual router id (default 51). */
  readonly vrid?: number;
  /** Virtual address with its prefix (default `10.77.0.100/24`). */
  readonly vip?: string;
  /** Advertisement interval text (default `200ms`). */
  readonly interval?: string;
  /** More instance fields, which win over the ones above. */
  readonly extra?: Record<string, unknown>;
}

/** A `vrrp:` section with one instance on eth0 at `priority`. */
export function vrrpConfig(
  priority: number,
  options: VrrpConfigOptions = {},
): Record<string, unknown> {
  return {
    instances: [{
      name: options.name ?? "vi",
      interface: "eth0",
      vrid: options.vrid ?? 51,
      priority,
      advert_interval: options.interval ?? "200ms",
      virtual_ipaddress: [options.vip ?? `${VIP}/24`],
      ...options.extra,
    }],
  };
}

/** Starts Fulcrum on router `i` with the `vrrp:` section `vrrp` and waits until it runs. */
export async function startNode(
  lab: Lab,
  i: number,
  vrrp: Record<string, unknown>,
): Promise<FulcrumProc> {
  const p = await lab.fulcrum(i, vrrp);
  await p.started();
  return p;
}

/** Starts Fulcrum on routers 0 and 1 with the `vrrp:` sections `configs` and waits for both. */
export async function startPair(
  lab: Lab,
  configs: readonly [Record<string, unknown>, Record<string, unknown>],
): Promise<[FulcrumProc, FulcrumProc]> {
  const pa = await lab.fulcrum(0, configs[0]);
  const pb = await lab.fulcrum(1, configs[1]);
  await Promise.all([pa.started(), pb.started()]);
  return [pa, pb];
}

/** Options for waiting on a VIP. */
export interface VipWaitOptions {
  /** The address to look for (default {@linkcode VIP}). */
  readonly vip?: string;
  /** How long to wait (default 5000 ms). */
  readonly timeoutMs?: number;
  /** What is awaited, for the timeout message. */
  readonly what?: string;
}

/**
 * Waits until router `i` holds the VIP. After kill -9 the dead router keeps its
 * addresses (like keepalived), so this checks only the live one.
 */
export async function holds(lab: Lab, i: number, options: VipWaitOptions = {}): Promise<void> {
  const vip = options.vip ?? VIP;
  await until(() => lab.hasVip(i, vip), {
    timeoutMs: options.timeoutMs ?? 5000,
    what: options.what ?? `VIP on router ${i}`,
  });
}

/** Waits until router `i` is the one and only holder of the VIP. */
export async function onlyHolder(
  lab: Lab,
  i: number,
  options: VipWaitOptions = {},
): Promise<void> {
  const vip = options.vip ?? VIP;
  await until(async () => {
    const h = await lab.holders(vip);
    return h.length === 1 && h[0] === i;
  }, { timeoutMs: options.timeoutMs ?? 5000, what: options.what ?? `VIP only on router ${i}` });
}

/**
 * Samples the VIP's holders every 100 ms for `ms`; returns the samples that were not
 * exactly one.
 */
export async function watchHolders(
  lab: Lab,
  ms: number,
  options: { readonly vip?: string } = {},
): Promise<string[]> {
  const vip = options.vip ?? VIP;
  const bad: string[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const h = await lab.holders(vip);
    if (h.length !== 1) bad.push(`${new Date().toISOString()} holders=[${h}]`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return bad;
}

/** Options of {@linkcode startKeepalivedMaster}. */
export interface KeepalivedMasterOptions {
  /** The router to run on (default 1). */
  readonly router?: number;
  /** The VIP it should take (default {@linkcode VIP}). */
  readonly vip?: string;
}

/** Starts keepalived with `conf` and waits (up to 15 s) until it holds the VIP as master. */
export async function startKeepalivedMaster(
  lab: Lab,
  conf: string,
  options: KeepalivedMasterOptions = {},
): Promise<Awaited<ReturnType<Lab["keepalived"]>>> {
  const i = options.router ?? 1;
  const ka = await lab.keepalived(i, conf);
  await ka.started();
  await holds(lab, i, {
    vip: options.vip,
    timeoutMs: 15_000,
    what: "keepalived to be master",
  });
  return ka;
}

/** Whether keepalived is installed (logs why not when it is missing). */
export async function hasKeepalived(): Promise<boolean> {
  try {
    const r = await new Deno.Command("keepalived", {
      args: ["--version"],
      stderr: "piped",
      stdout: "piped",
    }).output();
    return r.success;
  } catch {
    console.log(
      "skipping keepalived interop: keepalived is not installed (apt-get install keepalived)",
    );
    return false;
  }
}

/** Waits until every router's link-local address has finished duplicate address detection. */
export async function linkLocalReady(lab: Lab): Promise<void> {
  for (const r of lab.routers) {
    await until(async () => {
      const out =
        (await r.ns.exec(["ip", "-6", "addr", "show", "dev", "eth0", "scope", "link"])).stdout;
      return out.includes("fe80::") && !out.includes("tentative");
    }, { timeoutMs: 10_000, what: "IPv6 link-local address" });
  }
}

/** Sleeps `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
