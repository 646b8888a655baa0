import assert from "node:assert/strict";
import { buildModel } from "../config/model.ts";
import { configSchema } from "../config/schema.ts";
import { ServerStates } from "../health/state.ts";
import { createLogger } from "../log.ts";
import { RoleBoard } from "../vrrp/role.ts";
import { createL7 } from "./mod.ts";

function model(listen: { port: number }) {
  const config = configSchema.parse({
    pools: { html: { servers: [{ address: "127.0.0.1:9" }] } },
    l7: { listeners: [{ name: "web", listen: "127.0.0.1:1", rules: [{ pool: "html" }] }] },
  });
  (config.l7.listeners[0] as { listen: unknown }).listen = {
    host: "127.0.0.1",
    port: listen.port,
    family: 4,
    text: `127.0.0.1:${listen.port}`,
  };
  return buildModel(config, { path: "t.yaml", hash: "0" });
}

function deps() {
  return {
    states: new ServerStates(),
    roles: new RoleBoard(),
    log: createLogger({ level: "error" }),
  };
}

Deno.test("createL7 opens its listeners, reports status and stops", async () => {
  const l7 = createL7(deps());
  assert.equal(l7.name, "l7");
  assert.equal(l7.status().state, "stopped");
  await l7.start(model({ port: 0 }));
  try {
    const status = l7.status();
    assert.equal(status.state, "running");
    const listeners = status.listeners as { name: string }[];
    assert.equal(listeners[0].name, "web");
    assert.ok(l7.address("web")!.port > 0);
    assert.match(
      String(l7.explain({ url: "/", listener: "nope" })),
      /listener "nope" does not exist; listeners: web/,
    );
  } finally {
    await l7.stop();
  }
  assert.equal(l7.status().state, "stopped");
  assert.equal(l7.address("web"), undefined);
});

Deno.test("a listener that cannot bind fails start with a message saying what to do", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const l7 = createL7(deps());
  try {
    await assert.rejects(
      l7.start(model({ port: (taken.addr as Deno.NetAddr).port })),
      /listener web cannot listen on 127\.0\.0\.1:\d+: .*free the port or change l7\.listeners\[\]\.listen/,
    );
    assert.equal(l7.status().state, "failed");
  } finally {
    taken.close();
    await l7.stop();
  }
});
