/**
 * VRRPv3 over IPv6: two Fulcrum routers, and Fulcrum with keepalived, on one bridge
 * (link-local sources, ff02::12, unsolicited neighbour advertisements).
 */
import assert from "node:assert/strict";
import { canUseNetns } from "./netns.ts";
import { capture } from "./vrrp_lab.ts";
import {
  holds,
  labTest,
  linkLocalReady,
  onlyHolder,
  sleep,
  startKeepalivedMaster,
  startNode,
  startPair,
  vrrpConfig,
} from "./vrrp_harness.ts";

const VIP = "2001:db8:77::100";
const ok = await canUseNetns();

function vrrp(priority: number) {
  return vrrpConfig(priority, { name: "v6", vrid: 61, vip: `${VIP}/64` });
}

labTest(
  "IPv6: the higher priority is master, kill -9 → the backup takes over and sends an unsolicited NA",
  async (lab) => {
    await linkLocalReady(lab);
    const [a, b] = await startPair(lab, [vrrp(200), vrrp(100)]);
    await a.waitRole("master", 5000);
    await b.waitRole("backup", 5000);
    await onlyHolder(lab, 0, { vip: VIP, timeoutMs: 5000, what: "VIP on a only" });
    const status = await b.status();
    assert.ok((status[0].advertsIn as number) > 0, JSON.stringify(status));
    assert.match(String(status[0].master), /^fe80::/);
    const wire = capture(lab, "icmp6 and ip6[40] == 136");
    await sleep(300);
    const killed = Date.now();
    await a.kill("SIGKILL");
    await b.waitRole("master", 5000, killed);
    await holds(lab, 1, { vip: VIP, timeoutMs: 2000, what: "VIP on b" });
    const lines = await wire.stop();
    const mac = await lab.mac(1);
    assert.ok(
      lines.some((l) => l.includes(`${mac} > 33:33:00:00:00:01`) && l.includes(`tgt is ${VIP}`)),
      `no unsolicited NA for ${VIP} from ${mac}:\n${lines.join("\n")}`,
    );
  },
  { ignore: !ok },
);

labTest(
  "IPv6: keepalived (higher) is master over Fulcrum, Fulcrum takes over after kill -9",
  async (lab) => {
    await linkLocalReady(lab);
    const ka = await startKeepalivedMaster(
      lab,
      `global_defs {
  router_id ka6
  vrrp_version 3
}
vrrp_instance v6 {
  state BACKUP
  interface eth0
  virtual_router_id 61
  priority 200
  advert_int 0.2
  virtual_ipaddress {
    ${VIP}/64
  }
}
`,
      { vip: VIP },
    );
    const fu = await startNode(lab, 0, vrrp(100));
    await fu.waitRole("backup", 5000);
    await sleep(2000);
    assert.ok(
      !fu.roles().some((e) => e.role === "master"),
      "Fulcrum became master under keepalived",
    );
    const status = await fu.status();
    assert.ok((status[0].advertsIn as number) > 0, JSON.stringify(status));
    const killed = Date.now();
    await ka.hardKill();
    await fu.waitRole("master", 5000, killed);
    await holds(lab, 0, { vip: VIP, timeoutMs: 2000, what: "VIP on Fulcrum" });
  },
  { ignore: !ok },
);
