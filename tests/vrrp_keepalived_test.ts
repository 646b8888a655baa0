/**
 * Fulcrum ↔ keepalived on one bridge, VRRPv2 (with a PASS password) and VRRPv3: who
 * is master for each priority order, takeover after kill -9 in both directions, no
 * flapping over a bounded window, and the VIP on exactly one side at every sample.
 */
import assert from "node:assert/strict";
import { canUseNetns } from "./netns.ts";
import { type FulcrumProc, type KeepalivedProc, Lab, until } from "./vrrp_lab.ts";

const VIP = "10.77.0.100";
const WINDOW_MS = Number(Deno.env.get("VRRP_FLAP_WINDOW_MS") ?? 8000);
const ok = await canUseNetns() && (await hasKeepalived());

async function hasKeepalived(): Promise<boolean> {
  try {
    const r = await new Deno.Command("keepalived", {
      args: ["--version"],
      stderr: "piped",
      stdout: "piped",
    })
      .output();
    return r.success;
  } catch {
    console.log(
      "skipping keepalived interop: keepalived is not installed (apt-get install keepalived)",
    );
    return false;
  }
}

interface Variant {
  readonly version: 2 | 3;
  /** keepalived's advert_int text and ours. */
  readonly kaInterval: string;
  readonly interval: string;
  readonly password?: string;
}

const VARIANTS: Variant[] = [
  { version: 2, kaInterval: "1", interval: "1s", password: "s3cret" },
  { version: 3, kaInterval: "0.2", interval: "200ms" },
];

function keepalivedConf(v: Variant, priority: number): string {
  const auth = v.password ? `authentication {\n auth_type PASS\n auth_pass ${v.password}\n }` : "";
  return `global_defs {
  router_id ka
  vrrp_version ${v.version}
  vrrp_garp_master_repeat 1
  vrrp_garp_master_delay 0
}
vrrp_instance vi {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority ${priority}
  advert_int ${v.kaInterval}
  ${auth}
  virtual_ipaddress {
    ${VIP}/24
  }
}
`;
}

function fulcrumVrrp(v: Variant, priority: number) {
  return {
    instances: [{
      name: "vi",
      interface: "eth0",
      vrid: 51,
      version: v.version,
      priority,
      advert_interval: v.interval,
      virtual_ipaddress: [`${VIP}/24`],
      ...(v.password ? { auth: { type: "pass", password: v.password } } : {}),
    }],
  };
}

/** Samples the VIP's holders every 100 ms for `ms`; returns the samples that were not exactly one. */
async function watch(lab: Lab, ms: number): Promise<string[]> {
  const bad: string[] = [];
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const h = await lab.holders(VIP);
    if (h.length !== 1) bad.push(`${new Date().toISOString()} holders=[${h}]`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return bad;
}

for (const v of VARIANTS) {
  Deno.test({
    name:
      `VRRPv${v.version}: Fulcrum (higher) is master over keepalived, no flapping, keepalived takes over after kill -9`,
    ignore: !ok,
    sanitizeResources: false,
    sanitizeOps: false,
  }, async () => {
    const lab = await Lab.create(2);
    try {
      const ka: KeepalivedProc = await lab.keepalived(1, keepalivedConf(v, 100));
      await ka.started();
      const fu: FulcrumProc = await lab.fulcrum(0, fulcrumVrrp(v, 200));
      await fu.started();
      await fu.waitRole("master", 15_000);
      await until(async () => (await lab.holders(VIP)).join() === "0", {
        timeoutMs: 15_000,
        what: "VIP only on Fulcrum",
      });
      const transitions = fu.roles().length;
      const bad = await watch(lab, WINDOW_MS);
      assert.deepEqual(bad, [], "VIP not on exactly one side");
      assert.equal(fu.roles().length, transitions, "Fulcrum changed role during the window");
      await fu.kill("SIGKILL");
      await until(() => lab.hasVip(1, VIP), {
        timeoutMs: 10_000,
        what: "keepalived to take the VIP",
      });
    } finally {
      await lab.close();
    }
  });

  Deno.test({
    name:
      `VRRPv${v.version}: keepalived (higher) is master over Fulcrum, no flapping, Fulcrum takes over after kill -9`,
    ignore: !ok,
    sanitizeResources: false,
    sanitizeOps: false,
  }, async () => {
    const lab = await Lab.create(2);
    try {
      const ka = await lab.keepalived(1, keepalivedConf(v, 200));
      await ka.started();
      await until(() => lab.hasVip(1, VIP), { timeoutMs: 15_000, what: "keepalived to be master" });
      const fu = await lab.fulcrum(0, fulcrumVrrp(v, 100));
      await fu.started();
      await fu.waitRole("backup", 5000);
      const bad = await watch(lab, WINDOW_MS);
      assert.deepEqual(bad, [], "VIP not on exactly one side");
      assert.ok(
        !fu.roles().some((e) => e.role === "master"),
        "Fulcrum became master under a live keepalived",
      );
      const status = await fu.status();
      const errors = status[0].errors as Record<string, number>;
      assert.equal(Object.values(errors).reduce((a, b) => a + b, 0), 0, JSON.stringify(errors));
      assert.ok((status[0].advertsIn as number) > 0);
      const killed = Date.now();
      await ka.hardKill();
      await fu.waitRole("master", 10_000, killed);
      await until(() => lab.hasVip(0, VIP), { timeoutMs: 2000, what: "Fulcrum to hold the VIP" });
    } finally {
      await lab.close();
    }
  });
}

Deno.test({
  name: "VRRPv3: keepalived's shutdown (priority 0) hands the VIP to Fulcrum quickly",
  ignore: !ok,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const lab = await Lab.create(2);
  try {
    const v = VARIANTS[1];
    const ka = await lab.keepalived(1, keepalivedConf(v, 200));
    await ka.started();
    await until(() => lab.hasVip(1, VIP), { timeoutMs: 15_000, what: "keepalived to be master" });
    const fu = await lab.fulcrum(0, fulcrumVrrp(v, 100));
    await fu.started();
    await fu.waitRole("backup", 5000);
    await new Promise((r) => setTimeout(r, 500));
    const stopped = Date.now();
    await ka.kill("SIGTERM");
    const took = await fu.waitRole("master", 5000, stopped);
    assert.match(took.reason, /released/);
    await until(async () => (await lab.holders(VIP)).join() === "0", {
      timeoutMs: 3000,
      what: "VIP only on Fulcrum",
    });
  } finally {
    await lab.close();
  }
});
