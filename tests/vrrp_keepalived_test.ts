/**
 * Fulcrum ↔ keepalived on one bridge, VRRPv2 (with a PASS password) and VRRPv3: who
 * is master for each priority order, takeover after kill -9 in both directions, no
 * flapping over a bounded window, and the VIP on exactly one side at every sample.
 */
import assert from "node:assert/strict";
import { canUseNetns } from "./netns.ts";
import type { FulcrumProc, KeepalivedProc } from "./vrrp_lab.ts";
import {
  hasKeepalived,
  holds,
  labTest,
  onlyHolder,
  sleep,
  startKeepalivedMaster,
  startNode,
  VIP,
  vrrpConfig,
  watchHolders,
} from "./vrrp_harness.ts";

const WINDOW_MS = Number(Deno.env.get("VRRP_FLAP_WINDOW_MS") ?? 8000);
const ok = await canUseNetns() && (await hasKeepalived());

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
  return vrrpConfig(priority, {
    interval: v.interval,
    extra: {
      version: v.version,
      ...(v.password ? { auth: { type: "pass", password: v.password } } : {}),
    },
  });
}

for (const v of VARIANTS) {
  labTest(
    `VRRPv${v.version}: Fulcrum (higher) is master over keepalived, no flapping, keepalived takes over after kill -9`,
    async (lab) => {
      const ka: KeepalivedProc = await lab.keepalived(1, keepalivedConf(v, 100));
      await ka.started();
      const fu: FulcrumProc = await startNode(lab, 0, fulcrumVrrp(v, 200));
      await fu.waitRole("master", 15_000);
      await onlyHolder(lab, 0, { timeoutMs: 15_000, what: "VIP only on Fulcrum" });
      const transitions = fu.roles().length;
      const bad = await watchHolders(lab, WINDOW_MS);
      assert.deepEqual(bad, [], "VIP not on exactly one side");
      assert.equal(fu.roles().length, transitions, "Fulcrum changed role during the window");
      await fu.kill("SIGKILL");
      await holds(lab, 1, { timeoutMs: 10_000, what: "keepalived to take the VIP" });
    },
    { ignore: !ok },
  );

  labTest(
    `VRRPv${v.version}: keepalived (higher) is master over Fulcrum, no flapping, Fulcrum takes over after kill -9`,
    async (lab) => {
      const ka = await startKeepalivedMaster(lab, keepalivedConf(v, 200));
      const fu = await startNode(lab, 0, fulcrumVrrp(v, 100));
      await fu.waitRole("backup", 5000);
      const bad = await watchHolders(lab, WINDOW_MS);
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
      await holds(lab, 0, { timeoutMs: 2000, what: "Fulcrum to hold the VIP" });
    },
    { ignore: !ok },
  );
}

labTest(
  "VRRPv3: keepalived's shutdown (priority 0) hands the VIP to Fulcrum quickly",
  async (lab) => {
    const v = VARIANTS[1];
    const ka = await startKeepalivedMaster(lab, keepalivedConf(v, 200));
    const fu = await startNode(lab, 0, fulcrumVrrp(v, 100));
    await fu.waitRole("backup", 5000);
    await sleep(500);
    const stopped = Date.now();
    await ka.kill("SIGTERM");
    const took = await fu.waitRole("master", 5000, stopped);
    assert.match(took.reason, /released/);
    await onlyHolder(lab, 0, { timeoutMs: 3000, what: "VIP only on Fulcrum" });
  },
  { ignore: !ok },
);
