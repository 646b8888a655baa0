/**
 * The real appliance (`main.ts run -c FILE`) on two routers: election, the admin API's
 * `GET /api/v1/vrrp`, kill -9 takeover, and SIGTERM stepping down.
 */
import assert from "node:assert/strict";
import { canUseNetns } from "./netns.ts";
import { Lab, Proc, until } from "./vrrp_lab.ts";

const VIP = "10.77.0.100";
const MAIN = new URL("../main.ts", import.meta.url).pathname;
const wired =
  (await Deno.readTextFile(new URL("../subsystems.ts", import.meta.url)).catch(() => ""))
    .includes("createVrrp");
if (!wired) {
  console.log("skipping main.ts VRRP tests: subsystems.ts does not create the vrrp subsystem yet");
}
const ok = wired && await canUseNetns();

function yaml(priority: number): string {
  return `vrrp:
  instances:
    - name: vi
      interface: eth0
      vrid: 51
      priority: ${priority}
      advert_interval: 200ms
      virtual_ipaddress: [${VIP}/24]
`;
}

async function api(lab: Lab, i: number, path: string, method = "GET"): Promise<unknown> {
  const code = `const r = await fetch("http://127.0.0.1:9090${path}", { method: "${method}" });` +
    `console.log(await r.text());`;
  const r = await lab.routers[i].ns.exec([Deno.execPath(), "eval", code], { timeoutMs: 20_000 });
  return JSON.parse(r.stdout);
}

Deno.test({
  name: "main.ts run: election, GET /api/v1/vrrp, kill -9 takeover and SIGTERM release",
  ignore: !ok,
  sanitizeResources: false,
  sanitizeOps: false,
}, async () => {
  const lab = await Lab.create(2);
  const procs: Proc[] = [];
  try {
    const start = async (i: number, priority: number) => {
      const path = `${lab.dir}/r${i}-${Date.now()}.yaml`;
      await Deno.writeTextFile(path, yaml(priority));
      const p = new Proc(lab.routers[i].ns, [
        Deno.execPath(),
        "run",
        "-A",
        MAIN,
        "run",
        "-c",
        path,
      ]);
      procs.push(p);
      return p;
    };
    const a = await start(0, 200);
    await start(1, 100);
    await until(async () => (await lab.holders(VIP)).join() === "0", {
      timeoutMs: 20_000,
      what: "VIP on a",
    });
    const view = await api(lab, 1, "/api/v1/vrrp") as {
      instances: { state: string; master: string }[];
    };
    assert.equal(view.instances[0].state, "backup");
    assert.equal(view.instances[0].master, lab.routers[0].ip);
    await a.kill("SIGKILL");
    await until(() => lab.hasVip(1, VIP), { timeoutMs: 3000, what: "b takes over after kill -9" });
    const a2 = await start(0, 200);
    await until(async () => (await lab.holders(VIP)).join() === "0", {
      timeoutMs: 20_000,
      what: "a preempts",
    });
    const stopped = Date.now();
    await a2.kill("SIGTERM");
    await until(() => lab.hasVip(1, VIP), { timeoutMs: 2000, what: "b takes over after SIGTERM" });
    assert.ok(Date.now() - stopped < 2000);
    assert.equal(await lab.hasVip(0, VIP), false, "a released the VIP on SIGTERM");
  } finally {
    for (const p of procs) await p.kill("SIGKILL");
    await lab.close();
  }
});
