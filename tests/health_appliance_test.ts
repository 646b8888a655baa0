/**
 * The health subsystem inside the real appliance lifecycle and admin endpoint: a
 * stopped backend goes down after `fall` checks and the API and /metrics say so with
 * the reason; it comes back after `rise`; drain and weight set over the API survive a
 * reload.
 */
import assert from "node:assert/strict";
import { Appliance } from "../appliance.ts";
import { createHealth } from "../health/mod.ts";
import { createLogger } from "../log.ts";
import { freePort } from "./cli.ts";

/** An HTTP backend answering /healthz that can be stopped and started on the same port. */
class Backend {
  port = 0;
  #server?: Deno.HttpServer<Deno.NetAddr>;

  start(): void {
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: this.port, onListen() {} },
      (req) => new Response("ok", { status: new URL(req.url).pathname === "/healthz" ? 200 : 404 }),
    );
    this.port = this.#server.addr.port;
  }

  async stop(): Promise<void> {
    await this.#server?.shutdown();
    this.#server = undefined;
  }
}

function config(admin: number, a: Backend, b: Backend, weightA: number): string {
  return `admin: { listen: 127.0.0.1:${admin} }
defaults:
  check: { interval: 200ms, timeout: 150ms, rise: 2, fall: 2 }
pools:
  web:
    check: { type: http, path: /healthz, expect: { status: 200 } }
    servers:
      - { address: 127.0.0.1:${a.port}, weight: ${weightA} }
      - { address: 127.0.0.1:${b.port}, weight: 2 }
`;
}

type Server = {
  address: string;
  health: string;
  admin: string;
  weight: { configured: number; effective: number; override: number | null };
  last_change: { reason: string };
  last_check: { reason: string } | null;
};

async function servers(base: string): Promise<Server[]> {
  const res = await fetch(`${base}/api/v1/pools`);
  const body = await res.json();
  return body.pools.find((p: { name: string }) => p.name === "web").servers;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 5000): Promise<T> {
  const end = performance.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

Deno.test("a stopped backend shows down with its reason in the API and /metrics; admin state survives a reload", async () => {
  const a = new Backend();
  const b = new Backend();
  a.start();
  b.start();
  const dir = await Deno.makeTempDir({ prefix: "fulcrum-health-e2e-" });
  const path = `${dir}/appliance.yaml`;
  const adminPort = freePort();
  await Deno.writeTextFile(path, config(adminPort, a, b, 1));
  const lines: string[] = [];
  const appliance = await Appliance.start(path, {
    subsystems: (deps) => [createHealth({ ...deps, log: deps.log.child("health") })],
    log: createLogger({ write: (l) => lines.push(l), level: "info" }),
  });
  const base = `http://127.0.0.1:${adminPort}`;
  const addrA = `127.0.0.1:${a.port}`;
  const addrB = `127.0.0.1:${b.port}`;
  try {
    await until("a first check", async () => {
      const s = await servers(base);
      return s.every((x) => x.last_check?.reason === "status 200") ? s : undefined;
    });

    await a.stop();
    const stoppedAt = performance.now();
    const down = await until("A down", async () => {
      const s = (await servers(base)).find((x) => x.address === addrA)!;
      return s.health === "down" ? s : undefined;
    });
    const took = performance.now() - stoppedAt;
    // fall (2) × interval (200 ms) ± one interval, with slack for a busy machine.
    assert.ok(took < 2 * 200 + 200 + 600, `down after ${took}ms`);
    assert.equal(down.last_change.reason, "connect refused");
    assert.equal(down.weight.effective, 0);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    assert.match(metrics, new RegExp(`fulcrum_server_up\\{pool="web",server="${addrA}"\\} 0`));
    assert.match(metrics, new RegExp(`fulcrum_server_up\\{pool="web",server="${addrB}"\\} 1`));
    assert.match(metrics, /fulcrum_health_transitions_total\{pool="web",to="down"\} 1/);
    assert.ok(lines.some((l) => /server down.*reason="connect refused"/.test(l)));

    // Drain B and override its weight, then reload with A's weight changed.
    const drain = await fetch(`${base}/api/v1/servers/web/${encodeURIComponent(addrB)}/drain`, {
      method: "POST",
    });
    assert.equal(drain.status, 200);
    await drain.body?.cancel();
    const put = await fetch(`${base}/api/v1/servers/web/${addrB}/weight`, {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ weight: 5 }),
    });
    assert.equal(put.status, 200);
    await put.body?.cancel();
    await Deno.writeTextFile(path, config(adminPort, a, b, 3));
    const reload = await appliance.reload("test");
    assert.equal(reload.ok, true);
    const afterReload = await servers(base);
    const sa = afterReload.find((x) => x.address === addrA)!;
    const sb = afterReload.find((x) => x.address === addrB)!;
    assert.equal(sa.weight.configured, 3);
    assert.equal(sa.health, "down");
    assert.equal(sb.admin, "drain");
    assert.equal(sb.weight.override, 5);
    assert.equal(sb.weight.effective, 0);

    // A comes back after rise checks; enabling B gives it the override weight.
    a.start();
    const up = await until("A up", async () => {
      const s = (await servers(base)).find((x) => x.address === addrA)!;
      return s.health === "up" ? s : undefined;
    });
    assert.equal(up.last_change.reason, "status 200");
    assert.equal(up.weight.effective, 3);
    const enable = await fetch(`${base}/api/v1/servers/web/${addrB}/enable`, { method: "POST" });
    assert.equal((await enable.json()).server.weight.effective, 5);
  } finally {
    await appliance.stop();
    await a.stop();
    await b.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
