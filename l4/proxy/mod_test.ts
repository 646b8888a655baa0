import assert from "node:assert/strict";
import { freePort } from "../../tests/cli.ts";
import { waitFor } from "../../tests/sockets.ts";
import net from "node:net";
import dgram from "node:dgram";
import { configSchema } from "../../config/schema.ts";
import { buildModel, type Model } from "../../config/model.ts";
import { ServerStates } from "../../health/state.ts";
import { createLogger } from "../../log.ts";
import { parseProxyHeader } from "./proxy_protocol.ts";
import { createUserspacePlane, type UserspacePlane } from "./mod.ts";

/** A backend answering every connection with `name:` + everything it received, at end. */
async function backend(name: string, options: { echo?: boolean } = {}) {
  const received: Uint8Array[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on("error", () => {});
    s.on("close", () => sockets.delete(s));
    const chunks: Uint8Array[] = [];
    s.on("data", (c: Uint8Array) => {
      chunks.push(c);
      if (options.echo) s.write(c);
    });
    s.on("end", () => {
      const all = Buffer.concat(chunks);
      received.push(all);
      if (!options.echo) s.write(`${name}:${all.length}`);
      s.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    address: `127.0.0.1:${port}`,
    received,
    sockets,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

function model(config: unknown): Model {
  return buildModel(configSchema.parse(config), { path: "test.yaml", hash: "0" });
}

/** Sends `payload`, half-closes, returns what came back and how the socket ended. */
function request(port: number, payload: string | Uint8Array, host = "127.0.0.1") {
  return new Promise<{ text: string; error?: string }>((resolve) => {
    const chunks: Uint8Array[] = [];
    const c = net.connect({ port, host, allowHalfOpen: true }, () => c.end(payload));
    c.on("data", (d: Uint8Array) => chunks.push(d));
    c.on("error", (e: NodeJS.ErrnoException) => resolve({ text: "", error: e.code }));
    c.on("close", () => resolve({ text: Buffer.concat(chunks).toString() }));
  });
}

async function withPlane(
  servers: { address: string; weight?: number }[],
  service: Record<string, unknown>,
  fn: (plane: UserspacePlane, port: number, states: ServerStates, m: Model) => Promise<void>,
  extra: Record<string, unknown> = {},
): Promise<void> {
  const port = freePort();
  const m = model({
    pools: { web: { servers } },
    l4: {
      dataplane: "userspace",
      services: [{ name: "svc", vip: `127.0.0.1:${port}`, pool: "web", ...service }],
      ...extra,
    },
  });
  const states = new ServerStates();
  const plane = createUserspacePlane({ states, log: createLogger({ write: () => {} }) });
  await plane.start(m);
  try {
    await fn(plane, port, states, m);
  } finally {
    await plane.stop();
  }
}

Deno.test("wlc sends a connection to the less loaded server; counters see bytes both ways", async () => {
  const a = await backend("a");
  const b = await backend("b");
  try {
    await withPlane(
      [{ address: a.address }, { address: b.address }],
      { scheduler: "wlc" },
      async (plane, port) => {
        // List order newest first: b, a. Each request finishes before the next, so both
        // are idle each time and wlc's tie goes to the first: b. With one open, a is chosen.
        const first = await request(port, "hello");
        assert.equal(first.text, "b:5");
        const hold = net.connect({ port, host: "127.0.0.1" });
        await waitFor(
          "held connection",
          () => plane.table.size === 1 && [...plane.table.values()][0].state === "ESTABLISHED",
        );
        const second = await request(port, "hey");
        assert.equal(second.text, "a:3", "b has an active connection, a has none");
        hold.destroy();
        await waitFor("table empty", () => plane.table.size === 0);
        const [view] = plane.services();
        assert.equal(view.stats.conns, 3);
        assert.equal(view.stats.inBytes, 8);
        assert.equal(view.stats.outBytes, 9, "b:5, a:3 and b:0 for the held connection");
        assert.deepEqual(view.dests.map((d) => [d.address, d.stats.conns]), [[b.address, 2], [
          a.address,
          1,
        ]]);
      },
    );
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("half-close: the server reads to the end, then still answers", async () => {
  const a = await backend("a");
  try {
    await withPlane([{ address: a.address }], { scheduler: "rr" }, async (_plane, port) => {
      const payload = "x".repeat(200_000);
      const reply = await request(port, payload);
      assert.equal(reply.text, "a:200000");
      assert.equal(a.received[0].length, 200_000);
    });
  } finally {
    await a.close();
  }
});

for (const version of ["v1", "v2"] as const) {
  Deno.test(`PROXY ${version}: the server sees the client address first`, async () => {
    const a = await backend("a");
    try {
      await withPlane([{ address: a.address }], { proxy_protocol: version }, async (_p, port) => {
        await request(port, "body");
        const parsed = parseProxyHeader(a.received[0]);
        assert.ok(parsed?.addresses, "a PROXY header");
        assert.equal(parsed.addresses.sourceAddress, "127.0.0.1");
        assert.equal(parsed.addresses.destPort, port);
        assert.equal(new TextDecoder().decode(a.received[0].subarray(parsed.length)), "body");
      });
    } finally {
      await a.close();
    }
  });
}

Deno.test("a refused connection to the server resets the client and counts the drop", async () => {
  // Port 1 has no listener and lies outside the ephemeral range, so the plane's connect
  // can neither meet a listener that reused a just-freed port nor connect to itself.
  await withPlane([{ address: "127.0.0.1:1" }], {}, async (plane, port) => {
    const reply = await request(port, "x");
    assert.equal(reply.text, "");
    await waitFor("table empty", () => plane.table.size === 0);
    assert.equal(plane.drops().services.svc.connect_error, 1);
  });
});

Deno.test("no usable server: the client is refused and the drop counted", async () => {
  const a = await backend("a");
  try {
    await withPlane([{ address: a.address, weight: 0 }], {}, async (plane, port) => {
      const reply = await request(port, "x");
      assert.equal(reply.text, "");
      assert.equal(plane.drops().services.svc.no_dest, 1);
      assert.equal(a.received.length, 0);
    });
  } finally {
    await a.close();
  }
});

Deno.test("per-source limit refuses the connection over the limit", async () => {
  const a = await backend("a", { echo: true });
  try {
    await withPlane([{ address: a.address }], {}, async (plane, port) => {
      const held = [
        net.connect({ port, host: "127.0.0.1" }),
        net.connect({ port, host: "127.0.0.1" }),
      ];
      for (const h of held) h.on("error", () => {});
      await waitFor("two held", () => plane.table.size === 2);
      const third = await request(port, "x");
      assert.equal(third.text, "");
      assert.equal(plane.drops().services.svc.per_source, 1);
      for (const h of held) h.destroy();
      await waitFor("table empty", () => plane.table.size === 0);
    }, { defense: { per_source: 2 } });
  } finally {
    await a.close();
  }
});

Deno.test("a client that resets mid-stream leaves no connection behind", async () => {
  const a = await backend("a", { echo: true });
  try {
    await withPlane([{ address: a.address }], {}, async (plane, port) => {
      const c = net.connect({ port, host: "127.0.0.1" });
      c.on("error", () => {});
      await new Promise<void>((r) => c.once("connect", () => r()));
      c.write("partial");
      await new Promise<void>((r) => c.once("data", () => r()));
      c.resetAndDestroy();
      await waitFor("table empty", () => plane.table.size === 0);
      await waitFor("backend socket closed", () => a.sockets.size === 0);
      assert.equal(plane.drops().services.svc.client_error, 1, "the reset is counted once");
    });
  } finally {
    await a.close();
  }
});

Deno.test("clients that send nothing are shed under pressure after the embryonic timeout", async () => {
  const a = await backend("a", { echo: true });
  try {
    await withPlane([{ address: a.address }], {}, async (plane, port) => {
      const idle = net.connect({ port, host: "127.0.0.1" });
      let closed = false;
      idle.on("error", () => {});
      idle.on("close", () => closed = true);
      await waitFor("shed", () => closed, 4000);
      assert.equal(plane.drops().services.svc.shed_embryonic, 1);
      assert.equal(plane.table.size, 0);
    }, { defense: { drop_entry: 3, embryonic_timeout: "200ms" } });
  } finally {
    await a.close();
  }
});

Deno.test("a disabled server's connections are reset; a draining server's finish", async () => {
  const a = await backend("a", { echo: true });
  try {
    await withPlane([{ address: a.address }], {}, async (plane, port, states) => {
      const base = {
        pool: "web",
        address: a.address,
        health: "up" as const,
        configuredWeight: 1,
        reason: "",
        since: 0,
      };
      const open = () => {
        const c = net.connect({ port, host: "127.0.0.1" });
        const state = { closed: false };
        c.on("error", () => {});
        c.on("close", () => state.closed = true);
        return { c, state };
      };
      const first = open();
      await waitFor("established", () => plane.table.size === 1);
      states.set({ ...base, admin: "drain", effectiveWeight: 0 });
      plane.serverChanged("web", a.address);
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(first.state.closed, false, "drain keeps the connection");
      const refused = await request(port, "x");
      assert.equal(refused.text, "", "no new connections while draining");
      states.set({ ...base, admin: "disabled", effectiveWeight: 0 });
      plane.serverChanged("web", a.address);
      await waitFor("reset", () => first.state.closed);
      assert.equal(plane.drops().services.svc.dest_removed, 1);
    });
  } finally {
    await a.close();
  }
});

Deno.test("UDP: a datagram goes to the server and its reply comes back", async () => {
  const server = dgram.createSocket("udp4");
  server.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => {
    server.send(`pong:${new TextDecoder().decode(msg)}`, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => server.bind(0, "127.0.0.1", () => r()));
  const serverPort = server.address().port;
  const client = dgram.createSocket("udp4");
  try {
    await withPlane(
      [{ address: `127.0.0.1:${serverPort}` }],
      { protocol: "udp" },
      async (plane, port) => {
        const reply = new Promise<string>((resolve) => {
          client.once("message", (m: Uint8Array) => resolve(new TextDecoder().decode(m)));
        });
        client.send("ping", port, "127.0.0.1");
        assert.equal(await reply, "pong:ping");
        assert.equal(plane.table.size, 1);
        const [view] = plane.services();
        assert.equal(view.stats.inBytes, 4);
        assert.equal(view.stats.outBytes, 9);
        assert.equal(view.dests[0].inactiveConns, 1, "a UDP entry counts as inactive");
      },
    );
    assert.equal(true, true);
  } finally {
    client.close();
    server.close();
  }
});

Deno.test("a server that closes at once: the client sees the close and nothing is left", async () => {
  const early = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => early.listen(0, "127.0.0.1", r));
  const backendPort = (early.address() as net.AddressInfo).port;
  try {
    await withPlane([{ address: `127.0.0.1:${backendPort}` }], {}, async (plane, port) => {
      const replies = await Promise.all([1, 2, 3].map(() => request(port, "hello")));
      for (const r of replies) assert.equal(r.text, "");
      await waitFor("table empty", () => plane.table.size === 0);
      const [view] = plane.services();
      assert.equal(view.stats.conns, 3);
      assert.equal(view.dests[0].activeConns + view.dests[0].inactiveConns, 0);
    });
  } finally {
    await new Promise<void>((r) => early.close(() => r()));
  }
});

Deno.test("a reload adds, moves and removes services without touching the others", async () => {
  const a = await backend("a");
  const b = await backend("b");
  const [p1, p2, p3] = [freePort(), freePort(), freePort()];
  const config = (services: Record<string, unknown>[]) => ({
    pools: {
      one: { servers: [{ address: a.address }] },
      two: { servers: [{ address: b.address }] },
    },
    l4: { dataplane: "userspace", services },
  });
  const first = model(config([
    { name: "keep", vip: `127.0.0.1:${p1}`, pool: "one" },
    { name: "gone", vip: `127.0.0.1:${p2}`, pool: "one" },
  ]));
  const plane = createUserspacePlane({
    states: new ServerStates(),
    log: createLogger({ write: () => {} }),
  });
  await plane.start(first);
  try {
    assert.equal((await request(p2, "x")).text, "a:1");
    const second = model(config([
      { name: "keep", vip: `127.0.0.1:${p1}`, pool: "two" },
      { name: "new", vip: `127.0.0.1:${p3}`, pool: "one", scheduler: "rr" },
    ]));
    const { diff } = await import("../../config/diff.ts");
    await plane.apply(second, diff(first, second));
    assert.equal((await request(p1, "x")).text, "b:1", "keep now balances over pool two");
    assert.equal((await request(p3, "xy")).text, "a:2");
    assert.equal((await request(p2, "x")).error, "ECONNREFUSED", "gone no longer listens");
    assert.deepEqual(plane.services().map((s) => s.name).sort(), ["keep", "new"]);
  } finally {
    await plane.stop();
    await a.close();
    await b.close();
  }
});

Deno.test("UDP sessions end after the UDP timeout; TCP idle connections are closed and counted", async () => {
  const server = dgram.createSocket("udp4");
  server.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => {
    server.send(msg, rinfo.port, rinfo.address);
  });
  await new Promise<void>((r) => server.bind(0, "127.0.0.1", () => r()));
  const client = dgram.createSocket("udp4");
  try {
    await withPlane(
      [{ address: `127.0.0.1:${server.address().port}` }],
      { protocol: "udp", timeouts: { udp: "100ms" } },
      async (plane, port) => {
        const reply = new Promise((r) => client.once("message", r));
        client.send("ping", port, "127.0.0.1");
        await reply;
        assert.equal(plane.table.size, 1);
        await waitFor("session expired", () => plane.table.size === 0, 3000);
        assert.deepEqual(plane.drops().services.svc, {});
      },
    );
  } finally {
    client.close();
    server.close();
  }
  const a = await backend("a", { echo: true });
  try {
    await withPlane(
      [{ address: a.address }],
      { timeouts: { idle: "100ms" } },
      async (plane, port) => {
        const c = net.connect({ port, host: "127.0.0.1" });
        const closed = new Promise((r) => c.on("close", r));
        c.on("error", () => {});
        c.resume(); // read the echo, so the close is seen
        c.write("hi");
        await closed;
        assert.equal(plane.table.size, 0);
        assert.equal(plane.drops().services.svc.idle_timeout, 1);
      },
    );
  } finally {
    await a.close();
  }
});

Deno.test("stop lets open connections finish for the drain time, then closes them", async () => {
  const a = await backend("a", { echo: true });
  const port = freePort();
  const plane = createUserspacePlane(
    { states: new ServerStates(), log: createLogger({ write: () => {} }) },
    { drainMs: 300 },
  );
  await plane.start(model({
    pools: { web: { servers: [{ address: a.address }] } },
    l4: {
      dataplane: "userspace",
      services: [{ name: "svc", vip: `127.0.0.1:${port}`, pool: "web" }],
    },
  }));
  try {
    const quick = net.connect({ port, host: "127.0.0.1" });
    const slow = net.connect({ port, host: "127.0.0.1" });
    for (const c of [quick, slow]) {
      c.on("error", () => {});
      c.resume();
    }
    await waitFor("both open", () => plane.table.size === 2);
    const slowClosed = new Promise((r) => slow.on("close", r));
    const started = Date.now();
    const stopping = plane.stop();
    setTimeout(() => quick.end(), 50); // finishes within the drain time
    await stopping;
    await slowClosed;
    assert.ok(Date.now() - started >= 250, "stop waited for the drain time");
    assert.equal(plane.table.size, 0);
    const refused = await request(port, "x");
    assert.equal(refused.error, "ECONNREFUSED", "the listener closed first");
  } finally {
    await a.close();
  }
});

Deno.test("removing a service on reload stops its listener; its open connection carries on", async () => {
  const a = await backend("a", { echo: true });
  const port = freePort();
  const config = (services: Record<string, unknown>[]) => ({
    pools: { web: { servers: [{ address: a.address }] } },
    l4: { dataplane: "userspace", services },
  });
  const first = model(config([{ name: "svc", vip: `127.0.0.1:${port}`, pool: "web" }]));
  const plane = createUserspacePlane({
    states: new ServerStates(),
    log: createLogger({ write: () => {} }),
  });
  await plane.start(first);
  try {
    const c = net.connect({ port, host: "127.0.0.1" });
    c.on("error", () => {});
    await waitFor("open", () => plane.table.size === 1);
    const second = model(config([]));
    const { diff } = await import("../../config/diff.ts");
    await plane.apply(second, diff(first, second));
    assert.equal((await request(port, "x")).error, "ECONNREFUSED");
    const echoed = new Promise<string>((r) => c.once("data", (d: Uint8Array) => r(String(d))));
    c.write("still here");
    assert.equal(await echoed, "still here");
    c.destroy();
    await waitFor("closed", () => plane.table.size === 0);
  } finally {
    await plane.stop();
    await a.close();
  }
});
