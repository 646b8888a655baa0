/**
 * Two Fulcrum VRRP routers in two network namespaces on one bridge.
 */
import assert from "node:assert/strict";
import { canUseNetns } from "./netns.ts";
import { capture, until } from "./vrrp_lab.ts";
import {
  holds,
  labTest,
  onlyHolder,
  sleep,
  startNode,
  startPair,
  VIP,
  vrrpConfig,
} from "./vrrp_harness.ts";
import { masterDownMs, skewMs } from "../vrrp/machine.ts";

const INTERVAL = 200;
const ok = await canUseNetns();

function instance(priority: number, extra: Record<string, unknown> = {}) {
  return vrrpConfig(priority, { interval: `${INTERVAL}ms`, extra });
}

labTest(
  "the higher priority is master; kill -9 → backup owns the VIP within Master_Down_Interval + 100 ms, with GARP",
  async (lab) => {
    const [a, b] = await startPair(lab, [instance(200), instance(100)]);
    await a.waitRole("master", 5000);
    await b.waitRole("backup", 5000);
    await onlyHolder(lab, 0);
    const wire = capture(lab, "arp");
    await sleep(300);
    // learn the master's interval first (v3): the backup's timer is MDI after the last advert
    const killed = Date.now();
    await a.kill("SIGKILL");
    const took = await b.waitRole("master", 5000, killed);
    const mdi = masterDownMs(100, { version: 3, intervalMs: INTERVAL });
    const elapsed = took.t - killed;
    assert.ok(elapsed <= mdi + 100, `took ${elapsed}ms, Master_Down_Interval is ${mdi}ms`);
    await holds(lab, 1);
    const lines = await wire.stop();
    const mac = await lab.mac(1);
    const garp = new RegExp(`^\\S+ ${mac} > ff:ff:ff:ff:ff:ff.*who-has ${VIP} .*tell ${VIP},`);
    assert.ok(
      lines.some((l) => garp.test(l)),
      `no gratuitous ARP for ${VIP} from ${mac} seen:\n${lines.join("\n")}`,
    );
  },
  { ignore: !ok },
);

labTest(
  "equal priorities: the higher primary address is master",
  async (lab) => {
    const [a, b] = await startPair(lab, [instance(100), instance(100)]);
    await b.waitRole("master", 5000);
    await onlyHolder(lab, 1);
    assert.equal(a.roles().at(-1)?.role, "backup");
  },
  { ignore: !ok },
);

labTest(
  "SIGTERM → priority 0 → the backup takes over within Skew_Time + 100 ms",
  async (lab) => {
    const [a, b] = await startPair(lab, [instance(200), instance(100)]);
    await a.waitRole("master", 5000);
    await onlyHolder(lab, 0);
    const killed = Date.now();
    await a.kill("SIGTERM");
    const took = await b.waitRole("master", 5000, killed);
    const skew = skewMs(100, { version: 3, intervalMs: INTERVAL });
    assert.ok(took.t - killed <= skew + 100, `took ${took.t - killed}ms, Skew_Time is ${skew}ms`);
    assert.match(took.reason, /released/);
    await onlyHolder(lab, 1);
  },
  { ignore: !ok },
);

labTest(
  "preempt: a returning higher priority takes the VIP back; nopreempt does not",
  async (lab) => {
    // preempt (default): b is master alone, then a (higher) joins and takes over
    const b = await startNode(lab, 1, instance(100));
    await b.waitRole("master", 5000);
    const a = await startNode(lab, 0, instance(200));
    await a.waitRole("master", 5000);
    await onlyHolder(lab, 0);
    await a.kill("SIGKILL");
    await b.waitRole("master", 5000, Date.now());
    // nopreempt: a comes back higher but stays backup
    const a2 = await startNode(lab, 0, instance(200, { preempt: false }));
    await a2.waitRole("backup", 5000);
    await sleep(6 * INTERVAL);
    assert.ok(!a2.roles().some((e) => e.role === "master"), "nopreempt router took over");
    await onlyHolder(lab, 1);
  },
  { ignore: !ok },
);

labTest(
  "preempt_delay: the higher priority waits the delay before taking over",
  async (lab) => {
    const b = await startNode(lab, 1, instance(100));
    await b.waitRole("master", 5000);
    const a = await startNode(lab, 0, instance(200, { preempt_delay: "1500ms" }));
    const backup = await a.waitRole("backup", 5000);
    const master = await a.waitRole("master", 6000);
    const waited = master.t - backup.t;
    assert.ok(waited >= 1500, `preempted after ${waited}ms, before the 1500ms delay`);
    await onlyHolder(lab, 0);
  },
  { ignore: !ok },
);

labTest(
  "unicast peers: election and failover without multicast",
  async (lab) => {
    const ipA = lab.routers[0].ip;
    const ipB = lab.routers[1].ip;
    const wire = capture(lab, "ip proto 112");
    const [a, b] = await startPair(lab, [
      instance(200, { unicast_src_ip: ipA, unicast_peers: [ipB] }),
      instance(100, { unicast_src_ip: ipB, unicast_peers: [ipA] }),
    ]);
    await a.waitRole("master", 5000);
    await b.waitRole("backup", 5000);
    await onlyHolder(lab, 0);
    const lines = await wire.stop();
    assert.ok(lines.some((l) => l.includes(`${ipA} > ${ipB}`)), lines.join("\n"));
    assert.ok(!lines.some((l) => l.includes("224.0.0.18")), "multicast seen with unicast peers");
    const killed = Date.now();
    await a.kill("SIGKILL");
    await b.waitRole("master", 5000, killed);
    await holds(lab, 1);
  },
  { ignore: !ok },
);

labTest(
  "step down hands over with priority 0 and rejoin takes the VIP back",
  async (lab) => {
    const [a, b] = await startPair(lab, [instance(200), instance(100)]);
    await a.waitRole("master", 5000);
    const t0 = Date.now();
    await a.command("stepdown vi");
    await b.waitRole("master", 3000, t0);
    await onlyHolder(lab, 1);
    await sleep(5 * INTERVAL);
    await onlyHolder(lab, 1, { timeoutMs: 100 });
    const t1 = Date.now();
    await a.command("rejoin vi");
    await a.waitRole("master", 3000, t1);
    await onlyHolder(lab, 0);
  },
  { ignore: !ok },
);

labTest(
  "use_vmac: the VIP answers ARP only with the virtual MAC, which moves with the VIP",
  async (lab) => {
    const wire = capture(lab, "arp");
    const [a, b] = await startPair(lab, [
      instance(200, { use_vmac: true }),
      instance(100, { use_vmac: true }),
    ]);
    await a.waitRole("master", 5000);
    await onlyHolder(lab, 0);
    const client = lab.routers[2].ns;
    const ping = await client.exec(["ping", "-c", "1", "-W", "2", VIP], { check: false });
    assert.equal(ping.code, 0, ping.stdout);
    const t0 = Date.now();
    await a.kill("SIGTERM");
    await b.waitRole("master", 3000, t0);
    await client.exec(["ip", "neigh", "flush", "all"]);
    const ping2 = await client.exec(["ping", "-c", "1", "-W", "2", VIP], { check: false });
    assert.equal(ping2.code, 0, ping2.stdout);
    const neigh = (await client.exec(["ip", "neigh", "show", VIP])).stdout;
    assert.match(
      neigh,
      /00:00:5e:00:01:33/,
      `the client resolved the VIP to another MAC: ${neigh}`,
    );
    const links = (await lab.routers[0].ns.exec(["ip", "-o", "link"])).stdout;
    assert.ok(!links.includes("vrrp.51"), "the macvlan is removed on stop");
    const lines = await wire.stop();
    const replies = lines.filter((l) => l.includes(`Reply ${VIP} is-at`));
    assert.ok(replies.length >= 2, lines.join("\n"));
    for (const r of replies) assert.match(r, /is-at 00:00:5e:00:01:33/);
    assert.ok(
      lines.some((l) => /^\S+ 00:00:5e:00:01:33 > ff:ff:ff:ff:ff:ff.*tell 10\.77\.0\.100,/.test(l)),
    );
  },
  { ignore: !ok, routers: 3 },
);

labTest(
  "garp: a burst of `repeat` announcements on becoming master, then one every `refresh`",
  async (lab) => {
    const wire = capture(lab, "arp");
    const a = await startNode(lab, 0, instance(200, { garp: { repeat: 3, refresh: "400ms" } }));
    await a.waitRole("master", 5000);
    await sleep(2100);
    const lines = await wire.stop();
    const mac = await lab.mac(0);
    const times = lines
      .filter((l) => l.includes(` ${mac} > ff:ff:ff:ff:ff:ff`) && l.includes(`tell ${VIP},`))
      .map((l) => l.split(" ")[0]);
    // 1 + 3 at once, then refreshes at 0.4 s steps for ~2 s (the 5 s repeat burst is later)
    assert.ok(
      times.length >= 4 + 4 && times.length <= 4 + 6,
      `${times.length} announcements:\n${lines.join("\n")}`,
    );
  },
  { ignore: !ok },
);

labTest(
  "after a transient split brain (master stalled) the master re-announces the VIP and the LAN follows it back",
  async (lab) => {
    // repeat 0: no delayed second burst that would re-point the LAN by chance
    const once = { garp: { repeat: 0 } };
    const [a, b] = await startPair(lab, [instance(200, once), instance(100, once)]);
    await a.waitRole("master", 5000);
    await b.waitRole("backup", 5000);
    const client = lab.routers[2].ns;
    await client.exec(["ping", "-c", "1", "-W", "2", VIP]);
    const macA = await lab.mac(0);
    const macB = await lab.mac(1);
    const neigh = async () => (await client.exec(["ip", "neigh", "show", VIP])).stdout;
    assert.match(await neigh(), new RegExp(macA));
    // stall a: b declares it dead and announces the VIP at its own MAC
    a.child.kill("SIGSTOP");
    const t0 = Date.now();
    await b.waitRole("master", 3000, t0);
    await until(async () => (await neigh()).includes(macB), {
      timeoutMs: 3000,
      what: "client follows b",
    });
    // (the kernel ignores ARP updates within 1 s of the last one: arp locktime)
    await sleep(1100);
    // a resumes: it is still master with the higher priority; b yields, a re-announces
    const t1 = Date.now();
    a.child.kill("SIGCONT");
    await b.waitRole("backup", 3000, t1);
    await until(async () => (await neigh()).includes(macA), {
      timeoutMs: 3000,
      what: "client re-pointed at a by its re-announcement",
    });
    await onlyHolder(lab, 0);
  },
  { ignore: !ok, routers: 3 },
);
