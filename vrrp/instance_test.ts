import assert from "node:assert/strict";
import { buildModel } from "../config/model.ts";
import { configSchema } from "../config/schema.ts";
import { ServerStates } from "../health/state.ts";
import { createLogger } from "../log.ts";
import { Rtnl } from "../sys/rtnl.ts";
import { canUseNetns, inNetnsChild, runFileInNetns } from "../tests/netns.ts";
import { Instance } from "./instance.ts";
import { RoleBoard } from "./role.ts";

const inChild = inNetnsChild(import.meta.url);
const canNetns = !inChild && await canUseNetns();

Deno.test({
  name: "instance behaviour passes inside a fresh network namespace",
  ignore: !canNetns,
}, async () => {
  const r = await runFileInNetns(import.meta.url, { prefix: "fvi", timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /a stalled event loop .* \.\.\. ok/);
});

async function ip(args: string[]): Promise<void> {
  const r = await new Deno.Command("ip", { args, stdout: "null", stderr: "piped" }).output();
  if (!r.success) throw new Error(`ip ${args.join(" ")}: ${new TextDecoder().decode(r.stderr)}`);
}

function instanceConfig(iface: string, priority: number) {
  return {
    name: "vi",
    interface: iface,
    vrid: 9,
    priority,
    advert_interval: "100ms",
    virtual_ipaddress: ["10.9.0.100/24"],
  };
}

Deno.test({
  name:
    "a stalled event loop does not make a backup declare a live master dead (pending adverts drained first)",
  ignore: !inChild,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  // two ends of a veth in this namespace: the master (another process) on fvb0,
  // the backup (this process) on fva0
  await ip(["link", "add", "fva0", "type", "veth", "peer", "name", "fvb0"]);
  await ip(["addr", "add", "10.9.0.1/24", "dev", "fva0"]);
  await ip(["addr", "add", "10.9.0.2/24", "dev", "fvb0"]);
  await ip(["link", "set", "fva0", "up"]);
  await ip(["link", "set", "fvb0", "up"]);
  // both ends are local here: let each accept packets from the other's local source
  for (const dev of ["all", "fva0", "fvb0"]) {
    await Deno.writeTextFile(`/proc/sys/net/ipv4/conf/${dev}/accept_local`, "1");
    await Deno.writeTextFile(`/proc/sys/net/ipv4/conf/${dev}/rp_filter`, "0");
  }
  const dir = await Deno.makeTempDir();
  const rtnl = new Rtnl();
  const roles = new RoleBoard();
  let master: Deno.ChildProcess | undefined;
  let backup: Instance | undefined;
  try {
    await Deno.writeTextFile(
      `${dir}/master.json`,
      JSON.stringify({ vrrp: { instances: [instanceConfig("fvb0", 200)] } }),
    );
    master = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../tests/vrrp_node.ts", import.meta.url).pathname,
        `${dir}/master.json`,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const model = buildModel(
      configSchema.parse({ vrrp: { instances: [instanceConfig("fva0", 100)] } }),
      { path: "t", hash: "t" },
    );
    backup = new Instance(model.vrrp.instances[0], {
      states: new ServerStates(),
      roles,
      rtnl,
      log: createLogger({ write: () => {} }),
    });
    await backup.start();
    // wait until adverts from the master flow
    const end = Date.now() + 10_000;
    while (backup.status().advertsIn < 5) {
      if (Date.now() > end) throw new Error("no adverts from the master process");
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(backup.status().state, "backup");
    const transitions = backup.status().transitions;
    // stall the event loop for ~3 Master_Down_Intervals (MDI ≈ 361 ms here)
    const stallUntil = performance.now() + 1100;
    while (performance.now() < stallUntil) { /* busy: the process is not scheduled */ }
    await new Promise((r) => setTimeout(r, 500));
    const s = backup.status();
    assert.equal(
      s.state,
      "backup",
      `declared the master dead after a stall: ${s.lastTransition?.reason}`,
    );
    assert.equal(s.transitions, transitions);
    assert.ok(
      s.timerLatenessMs.max > 500,
      `lateness not measured: ${JSON.stringify(s.timerLatenessMs)}`,
    );
    // and when the master really dies, the backup still takes over
    master.kill("SIGKILL");
    await master.status;
    master = undefined;
    const until = Date.now() + 3000;
    while (backup.status().state !== "master") {
      if (Date.now() > until) throw new Error("backup did not take over from a dead master");
      await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    if (master) {
      master.kill("SIGKILL");
      await master.status;
    }
    await backup?.stop();
    rtnl.close();
    await Deno.remove(dir, { recursive: true });
    await ip(["link", "del", "fva0"]).catch(() => {});
  }
});
