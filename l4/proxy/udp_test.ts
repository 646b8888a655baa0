import assert from "node:assert/strict";
import dgram from "node:dgram";
import { configSchema } from "../../config/schema.ts";
import { buildModel } from "../../config/model.ts";
import { createLogger } from "../../log.ts";
import { ConnTable } from "../conn_table.ts";
import { type RealServer, ServiceRuntime } from "../service.ts";
import type { PlaneContext } from "./context.ts";
import { listenUdp } from "./udp.ts";

Deno.test("a UDP VIP already in use fails with the address and what to do", async () => {
  const holder = dgram.createSocket("udp4");
  await new Promise<void>((r) => holder.bind(0, "127.0.0.1", () => r()));
  const port = holder.address().port;
  const m = buildModel(
    configSchema.parse({
      pools: { p: { servers: [{ address: "127.0.0.1:1" }] } },
      l4: { services: [{ name: "u", vip: `127.0.0.1:${port}`, pool: "p", protocol: "udp" }] },
    }),
    { path: "t", hash: "0" },
  );
  const svc = new ServiceRuntime(m.l4.services[0], m.pools.p, () => undefined);
  const ctx: PlaneContext = {
    table: new ConnTable<RealServer>({ syn: 1, established: 1, finWait: 1, udp: 1 }),
    log: createLogger({ write: () => {} }),
    defense: () => ({ maxConns: 0, perSource: 0, embryonicTimeout: 1000, dropEntry: 0 }),
    now: () => performance.now(),
    track() {},
    untrack() {},
    drop() {},
  };
  try {
    await assert.rejects(
      () => listenUdp(svc, ctx),
      new RegExp(`service "u" cannot listen on udp 127\\.0\\.0\\.1:${port}: .*pick a free address`),
    );
  } finally {
    holder.close();
  }
});
