/**
 * The timeout path of the checkers: a server inside a netns whose SYNs are dropped by
 * iptables. The checker runs inside the same netns (loopback there), so no traffic
 * leaves it.
 */
import assert from "node:assert/strict";
import { canUseNetns, Netns, run } from "./netns.ts";

const root = new URL("../", import.meta.url).href;

const script = `
import { checkTcp } from "${root}health/tcp.ts";
import { checkHttp } from "${root}health/http.ts";
import { TcpBatchChecker } from "${root}health/tcp_batch.ts";
import { createHealth } from "${root}health/mod.ts";
import { ServerStates } from "${root}health/state.ts";
import { RoleBoard } from "${root}vrrp/role.ts";
import { createLogger } from "${root}log.ts";
import { buildModel } from "${root}config/model.ts";
import { configSchema } from "${root}config/schema.ts";

const fdList = () => [...Deno.readDirSync("/proc/self/fd")].map((e) => {
  try { return e.name + " " + Deno.readLinkSync("/proc/self/fd/" + e.name); } catch { return e.name; }
});
const fds = () => fdList().length;
const target = { host: "127.0.0.1", port: 7001 };
// Deno resolves names on worker threads, which keep a socket or two each: warm them up
// with the same parallelism before counting.
const spec = { method: "GET", path: "/", tls: false, expect: { status: 200 } };
for (let i = 0; i < 3; i++) {
  await Promise.all(Array.from({ length: 20 }, () => checkTcp(target, { timeout: 50 })));
  await checkHttp(target, spec, { timeout: 50 });
}
await new Promise((r) => setTimeout(r, 100));
const before = fds();
const beforeList = fdList();
const started = performance.now();
const tcp = await Promise.all(Array.from({ length: 20 }, () => checkTcp(target, { timeout: 200 })));
const tcpMs = performance.now() - started;
const batch = new TcpBatchChecker();
const batched = await Promise.all(Array.from({ length: 20 }, () => batch.check(target, { timeout: 200 })));
const http = await checkHttp(target, spec, { timeout: 200 });
await new Promise((r) => setTimeout(r, 100));
const after = fds();
const newFds = fdList().filter((f) => !beforeList.includes(f));

// The subsystem: the black-holed server goes down, a healthy one beside it stays up.
const ok = Deno.listen({ hostname: "127.0.0.1", port: 7002 });
(async () => { for await (const c of ok) c.close(); })().catch(() => {});
const states = new ServerStates();
const lines = [];
const health = createHealth({ states, roles: new RoleBoard(), log: createLogger({ write: (l) => lines.push(l) }) });
const config = configSchema.parse({
  defaults: { check: { interval: "100ms", timeout: "200ms", rise: 1, fall: 2 } },
  pools: { web: { servers: [{ address: "127.0.0.1:7001" }, { address: "127.0.0.1:7002" }] } },
});
await health.start(buildModel(config, { path: "t.yaml", hash: "0" }));
const until = performance.now() + 5000;
while (states.get("web", "127.0.0.1:7001")?.health !== "down" && performance.now() < until) {
  await new Promise((r) => setTimeout(r, 20));
}
const good = health.pools()[0].servers[1];
await health.stop();
ok.close();
await new Promise((r) => setTimeout(r, 50));
const ss = new TextDecoder().decode((await new Deno.Command("ss", { args: ["-tanH", "state", "syn-sent"] }).output()).stdout);
console.log(JSON.stringify({
  tcp: [...new Set(tcp.map((r) => r.reason))],
  tcpMs,
  batched: [...new Set(batched.map((r) => r.reason))],
  http: http.reason,
  leaked: after - before,
  newFds,
  down: states.get("web", "127.0.0.1:7001"),
  good: { health: good.health, checked: good.last_check?.reason },
  log: lines.filter((l) => l.includes("server down")),
  synSent: ss.trim().split("\\n").filter(Boolean).length,
}));
`;

Deno.test("a black-holed server times out with a clear reason, leaking no socket", async () => {
  if (!(await canUseNetns())) {
    console.log("skipped: needs root and ip netns");
    return;
  }
  const ns = await Netns.create("fhc");
  try {
    await ns.exec(["iptables", "-A", "INPUT", "-p", "tcp", "--dport", "7001", "-j", "DROP"]);
    const out = await run([...ns.prefix(), Deno.execPath(), "eval", script], { timeoutMs: 60_000 });
    const r = JSON.parse(out.stdout.trim().split("\n").at(-1)!);
    assert.deepEqual(r.tcp, ["timeout after 200ms"]);
    assert.ok(r.tcpMs < 2000, `20 parallel checks took ${r.tcpMs}ms`);
    assert.deepEqual(r.batched, ["timeout after 200ms"]);
    assert.equal(r.http, "timeout after 200ms");
    // Deno itself opens one socketpair lazily at some point; a leak per check would be
    // 41 descriptors here.
    assert.ok(r.leaked <= 2, `fds leaked: ${r.newFds}`);
    assert.equal(r.synSent, 0);
    assert.equal(r.down.health, "down");
    assert.equal(r.down.reason, "timeout after 200ms");
    assert.equal(r.down.effectiveWeight, 0);
    assert.deepEqual(r.good, { health: "up", checked: "connected" });
    assert.equal(r.log.length, 1);
    assert.match(r.log[0], /reason="timeout after 200ms"/);
  } finally {
    await ns.delete();
  }
});
