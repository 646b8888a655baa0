/**
 * The userspace L4 plane carrying real bulk traffic on loopback: 100 MiB each way at
 * once through one connection (a bulk flow: the kernel splices it), compared by SHA-256
 * at both ends; and a burst of short
 * connections that must leave nothing behind.
 */
import assert from "node:assert/strict";
import { freePort } from "./cli.ts";
import { listen } from "./sockets.ts";
import net from "node:net";
import { createHash } from "node:crypto";
import { configSchema } from "../config/schema.ts";
import { buildModel } from "../config/model.ts";
import { ServerStates } from "../health/state.ts";
import { createLogger } from "../log.ts";
import { createUserspacePlane } from "../l4/proxy/mod.ts";
import { spliceSlots } from "../sys/splice.ts";

const TOTAL = 100 * 1024 * 1024;
const CHUNK = 64 * 1024;

/** Deterministic bytes: chunk `i` of the stream seeded with `seed`. */
function chunk(seed: number, i: number): Uint8Array {
  const out = new Uint8Array(CHUNK);
  const view = new Uint32Array(out.buffer);
  let x = (seed * 0x9e3779b1 + i * 0x85ebca6b) >>> 0 || 1;
  for (let k = 0; k < view.length; k++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    view[k] = x >>> 0;
  }
  return out;
}

/** Writes TOTAL bytes with backpressure, then half-closes; resolves with their hash. */
function sendAll(socket: net.Socket, seed: number): Promise<string> {
  const hash = createHash("sha256");
  return new Promise((resolve, reject) => {
    let i = 0;
    const pump = () => {
      while (i * CHUNK < TOTAL) {
        const c = chunk(seed, i++);
        hash.update(c);
        if (!socket.write(c)) return socket.once("drain", pump);
      }
      socket.end();
      resolve(hash.digest("hex"));
    };
    socket.on("error", reject);
    pump();
  });
}

/** Hashes everything until the peer half-closes. */
function receiveAll(socket: net.Socket): Promise<{ hash: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  return new Promise((resolve, reject) => {
    socket.on("data", (d: Uint8Array) => {
      hash.update(d);
      bytes += d.length;
    });
    socket.on("end", () => resolve({ hash: hash.digest("hex"), bytes }));
    socket.on("error", reject);
  });
}

async function withPlane(
  backendPort: number,
  fn: (port: number, plane: ReturnType<typeof createUserspacePlane>) => Promise<void>,
) {
  const port = freePort();
  const plane = createUserspacePlane({
    states: new ServerStates(),
    log: createLogger({ write: () => {} }),
  });
  await plane.start(buildModel(
    configSchema.parse({
      pools: { bulk: { servers: [{ address: `127.0.0.1:${backendPort}` }] } },
      l4: {
        dataplane: "userspace",
        services: [{ name: "bulk", vip: `127.0.0.1:${port}`, pool: "bulk", scheduler: "wlc" }],
      },
    }),
    { path: "t.yaml", hash: "0" },
  ));
  try {
    await fn(port, plane);
  } finally {
    await plane.stop();
  }
}

Deno.test("100 MiB each way at once arrive intact (SHA-256) through the userspace plane", async () => {
  let serverSide: Promise<{ sent: string; got: { hash: string; bytes: number } }> | undefined;
  const backend = net.createServer({ allowHalfOpen: true }, (s) => {
    serverSide = Promise.all([sendAll(s, 2), receiveAll(s)]).then(([sent, got]) => ({ sent, got }));
  });
  const backendPort = await listen(backend);
  const opened = spliceSlots.opened;
  try {
    await withPlane(backendPort, async (port, plane) => {
      const client = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
      await new Promise<void>((r) => client.once("connect", () => r()));
      const [sent, got] = await Promise.all([sendAll(client, 1), receiveAll(client)]);
      const server = await serverSide!;
      assert.equal(got.bytes, TOTAL);
      assert.equal(server.got.bytes, TOTAL);
      assert.equal(server.got.hash, sent, "client → server intact");
      assert.equal(got.hash, server.sent, "server → client intact");
      client.destroy();
      const deadline = Date.now() + 5000;
      while (plane.table.size > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      const [view] = plane.services();
      assert.equal(view.stats.inBytes, TOTAL);
      assert.equal(view.stats.outBytes, TOTAL);
      assert.equal(plane.table.size, 0);
      assert.equal(spliceSlots.opened, opened + 1, "the bulk flow moved to kernel splicing");
      assert.equal(spliceSlots.active, 0, "and its splice pair is gone");
    });
  } finally {
    await new Promise<void>((r) => backend.close(() => r()));
  }
});

Deno.test("300 short connections leave no table entries and no drops behind", async () => {
  const backend = net.createServer((s) => {
    s.on("error", () => {});
    s.end("ok");
  });
  const backendPort = await listen(backend);
  try {
    await withPlane(backendPort, async (port, plane) => {
      const one = () =>
        new Promise<string>((resolve) => {
          const chunks: Uint8Array[] = [];
          const c = net.connect({ port, host: "127.0.0.1" });
          c.on("data", (d: Uint8Array) => chunks.push(d));
          c.on("error", () => resolve("error"));
          c.on("close", () => resolve(Buffer.concat(chunks).toString()));
        });
      const replies: string[] = [];
      for (let batch = 0; batch < 6; batch++) {
        replies.push(...await Promise.all(Array.from({ length: 50 }, one)));
      }
      assert.equal(replies.filter((r) => r === "ok").length, 300);
      const deadline = Date.now() + 5000;
      while (plane.table.size > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(plane.table.size, 0);
      const [view] = plane.services();
      assert.equal(view.stats.conns, 300);
      assert.equal(view.dests[0].activeConns + view.dests[0].inactiveConns, 0);
      assert.deepEqual(plane.drops().services.bulk, {});
    });
  } finally {
    await new Promise<void>((r) => backend.close(() => r()));
  }
});
