import assert from "node:assert/strict";
import net from "node:net";
import { configSchema } from "../../config/schema.ts";
import { buildModel } from "../../config/model.ts";
import { createLogger } from "../../log.ts";
import { ConnTable } from "../conn_table.ts";
import { type RealServer, ServiceRuntime } from "../service.ts";
import type { PlaneContext } from "./context.ts";
import { listenTcp } from "./tcp.ts";

function setup(vip: string) {
  const m = buildModel(
    configSchema.parse({
      pools: { p: { servers: [{ address: "127.0.0.1:1" }] } },
      l4: { services: [{ name: "s", vip, pool: "p" }] },
    }),
    { path: "t", hash: "0" },
  );
  const svc = new ServiceRuntime(m.l4.services[0], m.pools.p, () => undefined);
  const table = new ConnTable<RealServer>({
    syn: 1000,
    established: 1000,
    finWait: 1000,
    udp: 1000,
  });
  const ctx: PlaneContext = {
    table,
    log: createLogger({ write: () => {} }),
    defense: () => ({ maxConns: 0, perSource: 0, embryonicTimeout: 1000, dropEntry: 0 }),
    now: () => performance.now(),
    track() {},
    untrack() {},
    drop() {},
  };
  return { svc, ctx };
}

Deno.test("a TCP VIP already in use fails with the address and what to do", async () => {
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, "127.0.0.1", r));
  const port = (holder.address() as net.AddressInfo).port;
  try {
    const { svc, ctx } = setup(`127.0.0.1:${port}`);
    await assert.rejects(
      () => listenTcp(svc, ctx),
      new RegExp(`service "s" cannot listen on 127\\.0\\.0\\.1:${port}: .*pick a free address`),
    );
  } finally {
    await new Promise<void>((r) => holder.close(() => r()));
  }
});

Deno.test("a refused server: the TCP path resets the client and counts connect_error", async () => {
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", r));
  const port = (probe.address() as net.AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const { svc, ctx } = setup(`127.0.0.1:${port}`);
  const server = await listenTcp(svc, ctx);
  try {
    const closed = await new Promise<string>((resolve) => {
      const c = net.connect({ port, host: "127.0.0.1" });
      c.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
      c.on("close", () => resolve("closed"));
    });
    assert.ok(closed === "ECONNRESET" || closed === "closed");
    assert.equal(svc.drops.get("connect_error"), 1);
    assert.equal(ctx.table.size, 0);
  } finally {
    server.close();
  }
});
