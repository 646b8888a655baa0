/**
 * Run by l4_splice_test.ts without `--allow-ffi`: a 4 MiB echo through the userspace
 * plane must arrive intact on the JS path. Prints `{ intact, spliced, available }`.
 * @module
 */
import net from "node:net";
import { configSchema } from "../config/schema.ts";
import { buildModel } from "../config/model.ts";
import { ServerStates } from "../health/state.ts";
import { createLogger } from "../log.ts";
import { createUserspacePlane } from "../l4/proxy/mod.ts";
import { spliceAvailable, spliceSlots } from "../sys/splice.ts";

async function listen(server: net.Server, port = 0): Promise<number> {
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return (server.address() as net.AddressInfo).port;
}

const backend = net.createServer({ allowHalfOpen: true }, (s) => s.pipe(s));
const backendPort = await listen(backend);
const probe = net.createServer();
const port = await listen(probe);
await new Promise<void>((r) => probe.close(() => r()));
const plane = createUserspacePlane({
  states: new ServerStates(),
  log: createLogger({ write: () => {} }),
});
await plane.start(buildModel(
  configSchema.parse({
    pools: { web: { servers: [{ address: `127.0.0.1:${backendPort}` }] } },
    l4: {
      dataplane: "userspace",
      services: [{ name: "svc", vip: `127.0.0.1:${port}`, pool: "web" }],
    },
  }),
  { path: "t.yaml", hash: "0" },
));
const client = net.connect({ port, host: "127.0.0.1", allowHalfOpen: true });
const sent = new Uint8Array(4 << 20).map((_, i) => (i * 7) & 255);
const chunks: Uint8Array[] = [];
const echoed = new Promise<void>((resolve) => {
  client.on("data", (d: Uint8Array) => chunks.push(d));
  client.on("end", () => resolve());
});
client.end(sent);
await echoed;
const got = new Uint8Array(await new Blob(chunks as BlobPart[]).arrayBuffer());
client.destroy();
await plane.stop();
await new Promise<void>((r) => backend.close(() => r()));
console.log(JSON.stringify({
  intact: got.length === sent.length && got.every((b, i) => b === sent[i]),
  spliced: spliceSlots.opened,
  available: spliceAvailable(),
}));
