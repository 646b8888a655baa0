import assert from "node:assert/strict";
import { diff } from "../config/diff.ts";
import { buildModel, type Model } from "../config/model.ts";
import { configSchema } from "../config/schema.ts";
import { createLogger } from "../log.ts";
import { RoleBoard } from "../vrrp/role.ts";
import { createHealth, type HealthSubsystem } from "./mod.ts";
import { burstiness } from "./schedule.ts";
import { type ServerEvent, ServerStates } from "./state.ts";

function model(pools: Record<string, unknown>, check: Record<string, unknown> = {}): Model {
  const config = configSchema.parse({
    defaults: { check: { interval: "60ms", timeout: "200ms", rise: 2, fall: 2, ...check } },
    pools,
  });
  return buildModel(config, { path: "test.yaml", hash: "0" });
}

function setup(): {
  health: HealthSubsystem;
  states: ServerStates;
  events: ServerEvent[];
  logs: string[];
} {
  const states = new ServerStates();
  const events: ServerEvent[] = [];
  states.subscribe((e) => events.push(e));
  const logs: string[] = [];
  const log = createLogger({ level: "debug", write: (l) => logs.push(l), component: "health" });
  return { health: createHealth({ states, roles: new RoleBoard(), log }), states, events, logs };
}

/** A loopback TCP listener that can be stopped and started again on the same port. */
class Backend {
  #listener?: Deno.Listener;
  #loop?: Promise<void>;
  port = 0;

  start(): void {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: this.port });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    const listener = this.#listener;
    this.#loop = (async () => {
      try {
        for await (const conn of listener) conn.close();
      } catch { /* closed */ }
    })();
  }

  async stop(): Promise<void> {
    this.#listener?.close();
    await this.#loop;
    this.#listener = undefined;
  }
}

function running(marker: string): number {
  let n = 0;
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      if (Deno.readTextFileSync(`/proc/${entry.name}/cmdline`).includes(marker)) n++;
    } catch { /* exited */ }
  }
  return n;
}

async function until(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = performance.now() + ms;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

Deno.test("a stopped backend goes down after fall checks and comes back after rise, one log line each", async () => {
  const backend = new Backend();
  backend.start();
  const address = `127.0.0.1:${backend.port}`;
  const { health, states, events, logs } = setup();
  try {
    await health.start(
      model({
        web: { check: { type: "tcp", interval: "200ms" }, servers: [{ address, weight: 3 }] },
      }),
    );
    assert.equal(states.get("web", address)?.health, "up");
    assert.equal(states.get("web", address)?.effectiveWeight, 3);
    await until("a first check", () => health.pools()[0].servers[0].last_check !== null);
    assert.equal(health.pools()[0].servers[0].last_check?.reason, "connected");

    await backend.stop();
    const stoppedAt = performance.now();
    await until("down", () => states.get("web", address)?.health === "down");
    const took = performance.now() - stoppedAt;
    // fall (2) × interval (200ms), give or take one interval, plus slack for a busy machine.
    assert.ok(took < 2 * 200 + 200 + 400, `down after ${took}ms`);
    assert.ok(took > 200 - 50, `down after ${took}ms: fewer than fall checks`);
    const down = states.get("web", address)!;
    assert.equal(down.reason, "connect refused");
    assert.equal(down.effectiveWeight, 0);

    backend.start();
    await until("up", () => states.get("web", address)?.health === "up");
    assert.equal(states.get("web", address)?.reason, "connected");
    assert.deepEqual(events.map((e) => e.kind), ["added", "down", "up"]);
    const transitions = logs.filter((l) => /msg="server (down|up)"/.test(l));
    assert.equal(transitions.length, 2);
    assert.match(
      transitions[0],
      /level=warn .*pool=web server=127\.0\.0\.1:\d+ reason="connect refused" checks=2/,
    );
    assert.match(transitions[1], /level=info .*reason=connected checks=2/);
    const metrics = health.metrics();
    assert.match(metrics, new RegExp(`fulcrum_server_up\\{pool="web",server="${address}"\\} 1`));
    assert.match(metrics, /fulcrum_health_transitions_total\{pool="web",to="down"\} 1/);
    assert.match(metrics, /fulcrum_health_check_duration_seconds_count\{pool="web"\} \d+/);
  } finally {
    await health.stop();
    await backend.stop();
  }
});

Deno.test("assume down keeps a server out of traffic until rise checks pass", async () => {
  const backend = new Backend();
  backend.start();
  const address = `127.0.0.1:${backend.port}`;
  const { health, states } = setup();
  try {
    await health.start(model({ web: { servers: [{ address }] } }, { assume: "down" }));
    assert.equal(states.get("web", address)?.health, "down");
    assert.equal(states.get("web", address)?.reason, "assumed down");
    await until("up", () => states.get("web", address)?.health === "up");
    assert.equal(health.pools()[0].servers[0].weight.effective, 1);
  } finally {
    await health.stop();
    await backend.stop();
  }
});

Deno.test("an http check against a server answering 503 marks it down with the status", async () => {
  let status = 503;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => new Response("x", { status }),
  );
  const address = `127.0.0.1:${server.addr.port}`;
  const { health, states } = setup();
  try {
    await health.start(model({
      web: { check: { type: "http", path: "/healthz" }, servers: [{ address }] },
    }));
    await until("down", () => states.get("web", address)?.health === "down");
    assert.equal(states.get("web", address)?.reason, "status 503");
    status = 200;
    await until("up", () => states.get("web", address)?.health === "up");
    assert.equal(states.get("web", address)?.reason, "status 200");
  } finally {
    await health.stop();
    await server.shutdown();
  }
});

Deno.test("a server that turns slow goes down with a timeout and comes back when fast", async () => {
  let delay = 0;
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async () => {
      if (delay) await new Promise((r) => setTimeout(r, delay));
      return new Response("ok");
    },
  );
  const address = `127.0.0.1:${server.addr.port}`;
  const { health, states, logs } = setup();
  try {
    await health.start(model({
      web: { check: { type: "http", timeout: "150ms" }, servers: [{ address }] },
    }));
    await until("a first check", () => health.pools()[0].servers[0].last_check !== null);
    delay = 400;
    await until("down", () => states.get("web", address)?.health === "down");
    assert.equal(states.get("web", address)?.reason, "timeout after 150ms");
    assert.ok(logs.some((l) => /server down.*reason="timeout after 150ms"/.test(l)));
    delay = 0;
    await until("up", () => states.get("web", address)?.health === "up");
  } finally {
    await health.stop();
    await server.shutdown();
  }
});

Deno.test("an exec check exiting 2+n sets the weight to n and gets the server in its environment", async () => {
  const backend = new Backend();
  backend.start();
  const address = `127.0.0.1:${backend.port}`;
  const { health, states } = setup();
  try {
    await health.start(model({
      cgi: {
        check: {
          type: "exec",
          command: [
            "bash",
            "-c",
            'exec 3<>/dev/tcp/$FULCRUM_SERVER_HOST/$FULCRUM_SERVER_PORT && [ "$FULCRUM_POOL" = cgi ] && exit 7',
          ],
        },
        servers: [{ address, weight: 2 }],
      },
    }));
    await until("dynamic weight", () => states.get("cgi", address)?.effectiveWeight === 5);
    assert.equal(health.pools()[0].servers[0].weight.dynamic, 5);
    await backend.stop();
    await until("down", () => states.get("cgi", address)?.health === "down");
    assert.match(states.get("cgi", address)!.reason, /^exit 1: .*(refused|Connection)/i);
  } finally {
    await health.stop();
    await backend.stop();
  }
});

Deno.test("admin state and weight overrides survive a reload while the server stays", async () => {
  const { health, states, events } = setup();
  const a = "127.0.0.1:9";
  const b = "127.0.0.2:9";
  const c = "127.0.0.3:9";
  const first = model({
    web: {
      check: { type: "none" },
      servers: [{ address: a, weight: 4 }, { address: b }, { address: c }],
    },
  });
  try {
    await health.start(first);
    health.setAdmin("web", a, "drain");
    health.setWeight("web", b, 9);
    health.setAdmin("web", c, "disabled");
    assert.equal(states.get("web", a)?.effectiveWeight, 0);
    assert.equal(states.get("web", a)?.reason, "admin drain");
    assert.equal(states.get("web", b)?.effectiveWeight, 9);
    // Reload: a's configured weight changes, c leaves the config.
    const second = model({
      web: { check: { type: "none" }, servers: [{ address: a, weight: 6 }, { address: b }] },
    });
    await health.apply(second, diff(first, second));
    assert.equal(states.get("web", a)?.admin, "drain");
    assert.equal(states.get("web", a)?.configuredWeight, 6);
    assert.equal(states.get("web", b)?.effectiveWeight, 9);
    assert.equal(states.get("web", c), undefined);
    // c comes back: a new server, enabled again.
    await health.apply(first, diff(second, first));
    assert.equal(states.get("web", c)?.admin, "enabled");
    health.setAdmin("web", a, "enabled");
    health.setWeight("web", b, null);
    assert.equal(states.get("web", a)?.effectiveWeight, 4);
    assert.equal(states.get("web", b)?.effectiveWeight, 1);
    assert.deepEqual(events.map((e) => `${e.kind}:${e.state.address}`), [
      `added:${a}`,
      `added:${b}`,
      `added:${c}`,
      `drain:${a}`,
      `weight:${b}`,
      `disable:${c}`,
      `removed:${c}`,
      `added:${c}`,
      `enable:${a}`,
      `weight:${b}`,
    ]);
    assert.equal(health.setAdmin("web", "127.0.0.9:9", "drain"), undefined);
    assert.equal(health.setWeight("nope", a, 1), undefined);
  } finally {
    await health.stop();
  }
});

Deno.test("a changed check restarts probing and keeps health; a removed pool leaves the table", async () => {
  const backend = new Backend();
  backend.start();
  const address = `127.0.0.1:${backend.port}`;
  const { health, states } = setup();
  const tcp = model({
    web: { servers: [{ address }] },
    img: { check: { type: "none" }, servers: [{ address }] },
  });
  try {
    await health.start(tcp);
    await until("a check", () => health.pools()[0].servers[0].last_check !== null);
    await backend.stop();
    await until("down", () => states.get("web", address)?.health === "down");
    const changed = model({ web: { check: { type: "none" }, servers: [{ address }] } });
    const d = diff(tcp, changed);
    assert.deepEqual(d.checks, ["web"]);
    await health.apply(changed, d);
    // Health is kept: the none check never probes, so it stays down until the next reload.
    assert.equal(states.get("web", address)?.health, "down");
    assert.equal(states.get("img", address), undefined);
    assert.deepEqual(health.pools().map((p) => p.name), ["web"]);
  } finally {
    await health.stop();
    await backend.stop();
  }
});

Deno.test("slow start ramps the weight in steps after a recovery", async () => {
  const backend = new Backend();
  backend.start();
  const address = `127.0.0.1:${backend.port}`;
  const { health, states, events } = setup();
  try {
    await health.start(model({ web: { slowstart: "400ms", servers: [{ address, weight: 40 }] } }, {
      assume: "down",
      rise: 1,
    }));
    await until("up", () => states.get("web", address)?.health === "up");
    const first = states.get("web", address)!.effectiveWeight;
    assert.ok(first >= 1 && first < 40, `weight right after recovery ${first}`);
    await until("full weight", () => states.get("web", address)?.effectiveWeight === 40, 2000);
    const weights = events.filter((e) => e.kind === "weight").map((e) => e.state.effectiveWeight);
    assert.ok(weights.length >= 3, `ramp steps ${weights}`);
    assert.deepEqual(weights, [...weights].sort((x, y) => x - y));
  } finally {
    await health.stop();
    await backend.stop();
  }
});

Deno.test("stop ends hanging exec checks and every timer", async () => {
  const { health, states } = setup();
  const address = "127.0.0.1:9";
  const marker = `fulcrum-stop-${crypto.randomUUID().slice(0, 8)}`;
  await health.start(model({
    cgi: {
      check: {
        type: "exec",
        command: ["bash", "-c", `exec -a ${marker} sleep 30`],
        timeout: "10s",
      },
      servers: [{ address }],
    },
  }, { interval: "10ms" }));
  await until("the command to run", () => running(marker) > 0);
  const started = performance.now();
  await health.stop();
  assert.ok(performance.now() - started < 2000);
  assert.equal(running(marker), 0);
  assert.equal(health.status().state, "stopped");
  assert.equal(states.get("cgi", address)?.health, "up");
});

/** A health subsystem whose probes always pass, recording when each one started. */
function recordingHealth() {
  const starts: number[] = [];
  const health = createHealth({
    states: new ServerStates(),
    roles: new RoleBoard(),
    log: createLogger({ write: () => {} }),
  }, {
    prober: () => Promise.resolve({ ok: true, reason: "fake" }),
    onProbe: () => starts.push(performance.now()),
  });
  return { health, starts };
}

/** Blocks the event loop for `ms` (a stalled process); returns when it let go. */
function stallEventLoop(ms: number): number {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* stall */ }
  return performance.now();
}

Deno.test("after a stall the backlog of probes starts a few per tick, not in one burst", async () => {
  const { health, starts } = recordingHealth();
  const servers = Array.from({ length: 200 }, (_, i) => ({ address: `127.0.1.${i + 1}:80` }));
  try {
    await health.start(model({ web: { servers } }, { interval: "1s" }));
    await new Promise((r) => setTimeout(r, 50));
    const stalledAt = stallEventLoop(500); // about 100 probes fall due meanwhile
    await new Promise((r) => setTimeout(r, 500));
    const after = starts.filter((t) => t >= stalledAt);
    assert.ok(after.length >= 80, `started after the stall: ${after.length}`);
    // 200 servers at 1 s: the bucket's 30 ms of the mean rate is under 8, so 8 at once.
    const firstTick = after.filter((t) => t - after[0] < 2).length;
    assert.ok(firstTick <= 8, `${firstTick} probes started at once`);
  } finally {
    await health.stop();
  }
});

Deno.test("after a stall no 100 ms window starts more than twice the mean probe rate", async () => {
  const { health, starts } = recordingHealth();
  // 2,000 servers at 1 s: a mean of 200 probes per 100 ms.
  const servers = Array.from(
    { length: 2000 },
    (_, i) => ({ address: `127.0.${2 + Math.floor(i / 250)}.${(i % 250) + 1}:80` }),
  );
  try {
    await health.start(model({ web: { servers } }, { interval: "1s" }));
    await new Promise((r) => setTimeout(r, 1100));
    const stalledAt = stallEventLoop(400); // about 800 probes fall due meanwhile
    await new Promise((r) => setTimeout(r, 1200));
    const after = starts.filter((t) => t >= stalledAt);
    // The backlog drains: more than the 1,200 ms' own probes start.
    assert.ok(after.length > 2400, `started after the stall: ${after.length}`);
    const spread = burstiness(after, 100);
    assert.ok(spread.max <= 400, `${spread.max} probes in one 100 ms window (mean 200)`);
  } finally {
    await health.stop();
  }
});
