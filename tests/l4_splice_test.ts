/**
 * The userspace L4 plane's kernel splice path, end to end on loopback: half-close,
 * resets, idle expiry and nodest resets on spliced connections, and the JS fallback
 * when the splice cap is reached or FFI is not allowed. `spliceAuto` is lowered so the
 * first bytes of a connection already move it to splicing.
 */
import assert from "node:assert/strict";
import { freePort } from "./cli.ts";
import { collect, listen, waitFor } from "./sockets.ts";
import net from "node:net";
import { configSchema } from "../config/schema.ts";
import { buildModel } from "../config/model.ts";
import { ServerStates } from "../health/state.ts";
import { createLogger } from "../log.ts";
import { createUserspacePlane } from "../l4/proxy/mod.ts";
import { spliceAuto } from "../l4/proxy/tcp.ts";
import { spliceSlots } from "../sys/splice.ts";

type Plane = ReturnType<typeof createUserspacePlane>;

/** Runs `fn` with a plane in front of `backend`, splicing from a connection's first bytes. */
async function withPlane(
  backend: net.Server,
  service: Record<string, unknown>,
  fn: (port: number, plane: Plane, states: ServerStates, address: string) => Promise<void>,
): Promise<void> {
  const backendPort = await listen(backend);
  const address = `127.0.0.1:${backendPort}`;
  const port = freePort();
  const states = new ServerStates();
  const plane = createUserspacePlane({ states, log: createLogger({ write: () => {} }) });
  const saved = { ...spliceAuto };
  Object.assign(spliceAuto, { after: 1, largeRead: 1 });
  try {
    await plane.start(buildModel(
      configSchema.parse({
        pools: { web: { servers: [{ address }] } },
        l4: {
          dataplane: "userspace",
          services: [{ name: "svc", vip: `127.0.0.1:${port}`, pool: "web", ...service }],
        },
      }),
      { path: "t.yaml", hash: "0" },
    ));
    await fn(port, plane, states, address);
  } finally {
    Object.assign(spliceAuto, saved);
    await plane.stop();
    await new Promise<void>((r) => backend.close(() => r()));
  }
}

function connect(port: number, allowHalfOpen = true): Promise<net.Socket> {
  const c = net.connect({ port, host: "127.0.0.1", allowHalfOpen });
  return new Promise((resolve, reject) => {
    c.once("connect", () => resolve(c));
    c.once("error", reject);
  });
}

function closedWith(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    socket.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
    socket.on("close", () => resolve("closed"));
  });
}

Deno.test("spliced: the client's half-close reaches the server, whose reply still comes back", async () => {
  let atServer: Promise<string> | undefined;
  const backend = net.createServer({ allowHalfOpen: true }, (s) => {
    atServer = collect(s).then((text) => {
      s.end(`got ${text}`);
      return text;
    });
  });
  const opened = spliceSlots.opened;
  await withPlane(backend, {}, async (port, plane) => {
    const client = await connect(port);
    const reply = collect(client);
    client.write("first part, ");
    await waitFor("the splice", () => spliceSlots.opened === opened + 1);
    client.end("then the FIN");
    assert.equal(await reply, "got first part, then the FIN");
    assert.equal(await atServer, "first part, then the FIN");
    client.destroy();
    await waitFor("an empty table", () => plane.table.size === 0);
    const [view] = plane.services();
    assert.equal(view.stats.inBytes, 24);
    assert.equal(view.stats.outBytes, 28);
    assert.deepEqual(plane.drops().services.svc, {});
    assert.equal(spliceSlots.active, 0);
  });
});

Deno.test("spliced: a client reset mid-stream resets the server and is counted", async () => {
  let atServer: Promise<string> | undefined;
  const backend = net.createServer((s) => {
    atServer = closedWith(s);
  });
  const opened = spliceSlots.opened;
  await withPlane(backend, {}, async (port, plane) => {
    const client = await connect(port);
    client.on("error", () => {});
    client.write("some bytes");
    await waitFor("the splice", () => spliceSlots.opened === opened + 1);
    await waitFor("the server", () => atServer !== undefined);
    client.resetAndDestroy();
    assert.equal(await atServer, "ECONNRESET");
    await waitFor("an empty table", () => plane.table.size === 0);
    assert.equal(plane.drops().services.svc.client_error, 1);
    assert.equal(spliceSlots.active, 0);
  });
});

Deno.test("spliced: an idle connection expires and a disabled server's is reset", async () => {
  const backend = net.createServer((s) => s.on("error", () => {}).resume());
  const opened = spliceSlots.opened;
  await withPlane(backend, { timeouts: { idle: "200ms" } }, async (port, plane) => {
    const idle = await connect(port, false);
    const idleEnd = closedWith(idle);
    idle.write("x");
    await waitFor("the splice", () => spliceSlots.opened === opened + 1);
    assert.equal(await idleEnd, "closed");
    await waitFor("an empty table", () => plane.table.size === 0);
    assert.equal(plane.drops().services.svc.idle_timeout, 1);
  });
  const backend2 = net.createServer((s) => s.on("error", () => {}).resume());
  await withPlane(backend2, { nodest: "reset" }, async (port, plane, states, address) => {
    const c = await connect(port, false);
    const end = closedWith(c);
    c.write("x");
    await waitFor("the splice", () => spliceSlots.opened === opened + 2);
    states.set({
      pool: "web",
      address,
      health: "up",
      admin: "disabled",
      configuredWeight: 1,
      effectiveWeight: 0,
      reason: "",
      since: 0,
    });
    plane.serverChanged("web", address);
    assert.equal(await end, "ECONNRESET");
    await waitFor("an empty table", () => plane.table.size === 0);
    assert.equal(plane.drops().services.svc.dest_removed, 1);
    assert.equal(spliceSlots.active, 0);
  });
});

Deno.test("at the splice cap a bulk connection goes back to the JS path, bytes intact", async () => {
  const backend = net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
  const saved = spliceSlots.max;
  const opened = spliceSlots.opened;
  const refused = spliceSlots.refused;
  spliceSlots.max = 0;
  try {
    await withPlane(backend, {}, async (port, plane) => {
      const client = await connect(port);
      const echoed = collect(client);
      const sent = "0123456789abcdef".repeat(64 * 1024);
      client.end(sent);
      assert.equal(await echoed, sent);
      client.destroy();
      await waitFor("an empty table", () => plane.table.size === 0);
      assert.equal(spliceSlots.opened, opened, "nothing spliced");
      // Each refusal stops reading, drains, resumes the JS path and asks again later:
      // the bytes above stayed intact through all of them.
      assert.ok(spliceSlots.refused >= refused + 2, "refused, resumed and asked again");
    });
  } finally {
    spliceSlots.max = saved;
  }
});

Deno.test("without --allow-ffi the plane carries bulk flows on the JS path", async () => {
  const script = new URL("./l4_splice_noffi.ts", import.meta.url).pathname;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", "--allow-read", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  assert.deepEqual(JSON.parse(text), { intact: true, spliced: 0, available: false });
});

Deno.test("spliced: the PROXY v1 header still comes first, then every byte in order", async () => {
  let atServer: Promise<string> | undefined;
  const backend = net.createServer({ allowHalfOpen: true }, (s) => {
    atServer = collect(s);
    atServer.then(() => s.end());
  });
  const opened = spliceSlots.opened;
  await withPlane(backend, { proxy_protocol: "v1" }, async (port) => {
    const client = await connect(port);
    const done = collect(client);
    client.write("before the splice, ");
    await waitFor("the splice", () => spliceSlots.opened === opened + 1);
    client.end("after it");
    await done;
    const text = await atServer!;
    assert.match(text, /^PROXY TCP4 127\.0\.0\.1 127\.0\.0\.1 \d+ \d+\r\n/);
    assert.equal(text.slice(text.indexOf("\r\n") + 2), "before the splice, after it");
    client.destroy();
  });
});
