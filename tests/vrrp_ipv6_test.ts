/**
 * VRRPv3 over IPv6: two Fulcrum routers, and Fulcrum with keepalived, on one bridge
 * (link-local sources, ff02::12, unsolicited neighbour advertisements).
 */
import assert from "node:assert/strict";
import { canUseNetns } from "./netns.ts";
import { capture, Lab, until } from "./vrrp_lab.ts";

const VIP = "2001:db8:77::100";
const ok = await canUseNetns();

function vrrp(priority: number) {
  return {
    instances: [{
      name: "v6",
      interface: "eth0",
      vrid: 61,
      priority,
      advert_interval: "200ms",
      virtual_ipaddress: [`${VIP}/64`],
    }],
  };
}

/** Waits until every router's link-local address has finished duplicate address detection. */
async function linkLocalReady(lab: Lab): Promise<void> {
  for (const r of lab.routers) {
    await until(async () => {
      const out =
        (await r.ns.exec(["ip", "-6", "addr", "show", "dev", "eth0", "scope", "link"])).stdout;
      return out.includes("fe80::") && !out.includes("tentative");
    }, { timeoutMs: 10_000, what: "IPv6 link-local address" });
  }
}

Deno.test({
  name:
    "IPv6: the higher priority is master, kill -9 → the backup takes over and sends an unsolicited NA",
  ignore: !ok,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const lab = await Lab.create(2);
  try {
    await linkLocalReady(lab);
    const a = await lab.fulcrum(0, vrrp(200));
    const b = await lab.fulcrum(1, vrrp(100));
    await Promise.all([a.started(), b.started()]);
    await a.waitRole("master", 5000);
    await b.waitRole("backup", 5000);
    await until(async () => (await lab.holders(VIP)).join() === "0", {
      timeoutMs: 5000,
      what: "VIP on a only",
    });
    const status = await b.status();
    assert.ok((status[0].advertsIn as number) > 0, JSON.stringify(status));
    assert.match(String(status[0].master), /^fe80::/);
    const wire = capture(lab, "icmp6 and ip6[40] == 136");
    await new Promise((r) => setTimeout(r, 300));
    const killed = Date.now();
    await a.kill("SIGKILL");
    await b.waitRole("master", 5000, killed);
    await until(() => lab.hasVip(1, VIP), { timeoutMs: 2000, what: "VIP on b" });
    const lines = await wire.stop();
    const mac = await lab.mac(1);
    assert.ok(
      lines.some((l) => l.includes(`${mac} > 33:33:00:00:00:01`) && l.includes(`tgt is ${VIP}`)),
      `no unsolicited NA for ${VIP} from ${mac}:\n${lines.join("\n")}`,
    );
  } finally {
    await lab.close();
  }
});

Deno.test({
  name: "IPv6: keepalived (higher) is master over Fulcrum, Fulcrum takes over after kill -9",
  ignore: !ok,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const lab = await Lab.create(2);
  try {
    await linkLocalReady(lab);
    const ka = await lab.keepalived(
      1,
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
    );
    await ka.started();
    await until(() => lab.hasVip(1, VIP), { timeoutMs: 15_000, what: "keepalived to be master" });
    const fu = await lab.fulcrum(0, vrrp(100));
    await fu.started();
    await fu.waitRole("backup", 5000);
    await new Promise((r) => setTimeout(r, 2000));
    assert.ok(
      !fu.roles().some((e) => e.role === "master"),
      "Fulcrum became master under keepalived",
    );
    const status = await fu.status();
    assert.ok((status[0].advertsIn as number) > 0, JSON.stringify(status));
    const killed = Date.now();
    await ka.hardKill();
    await fu.waitRole("master", 5000, killed);
    await until(() => lab.hasVip(0, VIP), { timeoutMs: 2000, what: "VIP on Fulcrum" });
  } finally {
    await lab.close();
  }
});
