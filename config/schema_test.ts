import assert from "node:assert/strict";
import { configSchema, jsonSchema, SCHEDULERS } from "./schema.ts";

Deno.test("an empty file is a valid appliance with every default filled in", () => {
  const config = configSchema.parse({});
  assert.equal(config.admin.listen.text, "127.0.0.1:9090");
  assert.equal(config.defaults.check.interval, 2000);
  assert.equal(config.l4.dataplane, "auto");
  assert.equal(config.l4.defense.amemthresh, 1024);
  assert.equal(config.vrrp.enabled, true);
});

Deno.test("every IPVS scheduler is offered, and the JSON Schema lists them", () => {
  assert.deepEqual(
    [...SCHEDULERS],
    ["rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "mh", "fo", "ovf", "twos"],
  );
  const schema = JSON.stringify(jsonSchema());
  for (const name of SCHEDULERS) assert.ok(schema.includes(`"${name}"`), name);
  assert.match(schema, /"title":"Fulcrum appliance.yaml"/);
});

Deno.test("durations take units, defaults are shown as operators write them", () => {
  const l7 = configSchema.shape.l7.parse({
    listeners: [{
      name: "w",
      listen: "127.0.0.1:1",
      rules: [{ pool: "p" }],
      timeouts: { idle: "90s" },
    }],
  });
  assert.equal(l7.listeners[0].timeouts.idle, 90_000);
  assert.equal(l7.listeners[0].timeouts.header, 10_000);
  assert.equal(configSchema.safeParse({ defaults: { check: { interval: 5 } } }).success, false);
});
