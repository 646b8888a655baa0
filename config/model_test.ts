import assert from "node:assert/strict";
import { configSchema } from "./schema.ts";
import { buildModel, serverKey } from "./model.ts";

Deno.test("a pool's check is merged over defaults.check; fastinter and downinter follow interval", () => {
  const config = configSchema.parse({
    defaults: { check: { interval: "5s", timeout: "2s", rise: 3 } },
    pools: {
      a: { servers: [] },
      b: { check: { type: "http", interval: "1s", downinter: "10s" }, servers: [] },
    },
  });
  const model = buildModel(config, { path: "x.yaml", hash: "h" });
  assert.deepEqual(
    [model.pools.a.check.type, model.pools.a.check.interval, model.pools.a.check.timeout],
    ["tcp", 5000, 2000],
  );
  assert.equal(model.pools.a.check.rise, 3);
  assert.equal(model.pools.a.check.fastinter, 5000);
  assert.equal(model.pools.b.check.interval, 1000);
  assert.equal(model.pools.b.check.fastinter, 1000);
  assert.equal(model.pools.b.check.downinter, 10_000);
  assert.deepEqual(model.source, { path: "x.yaml", hash: "h" });
});

Deno.test("the model is deeply frozen and independent of the config it came from", () => {
  const config = configSchema.parse({ pools: { a: { servers: [{ address: "127.0.0.1:80" }] } } });
  const model = buildModel(config, { path: "x.yaml", hash: "h" });
  assert.ok(Object.isFrozen(model.pools.a.servers[0].address));
  assert.throws(() => {
    (model.pools.a.servers as unknown as unknown[]).push({});
  });
  config.pools.a.servers[0].weight = 9;
  assert.equal(model.pools.a.servers[0].weight, 1);
  assert.equal(serverKey("a", "127.0.0.1:80"), "a/127.0.0.1:80");
});
