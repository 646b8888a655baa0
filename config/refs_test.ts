import assert from "node:assert/strict";
import { crossCheck, pathText } from "./refs.ts";
import { configSchema } from "./schema.ts";

Deno.test("pathText writes paths as an operator reads them", () => {
  assert.equal(pathText(["l7", "listeners", 0, "rules", 2]), "l7.listeners[0].rules[2]");
});

Deno.test("a VIP on this host or in a VRRP instance is accepted, any other is not", () => {
  const config = configSchema.parse({
    pools: { p: { servers: [] } },
    l4: {
      services: [
        { name: "local", vip: "192.0.2.5:80", pool: "p" },
        { name: "vrrp", vip: "10.0.0.100:80", pool: "p" },
        { name: "stray", vip: "10.9.9.9:80", pool: "p" },
      ],
    },
    vrrp: {
      instances: [{ name: "v", interface: "eth0", vrid: 1, virtual_ipaddress: ["10.0.0.100/24"] }],
    },
  });
  const issues = crossCheck(config, { localAddresses: () => ["192.0.2.5"] });
  assert.deepEqual(issues.map((i) => pathText(i.path)), ["l4.services[2].vip"]);
  assert.deepEqual(issues[0].needs, ["vrrp"]);
  const unknownHost = crossCheck(config, { localAddresses: () => undefined });
  assert.deepEqual(unknownHost, [], "without the interface list the local check is skipped");
});

Deno.test("a wildcard listener clashes with a specific one on the same port", () => {
  const config = configSchema.parse({
    pools: { p: { servers: [] } },
    l7: {
      listeners: [
        { name: "a", listen: "0.0.0.0:8080", rules: [{ pool: "p" }] },
        { name: "b", listen: "127.0.0.1:8080", rules: [{ pool: "p" }] },
      ],
    },
    l4: { services: [{ name: "u", vip: "127.0.0.1:8080", protocol: "udp", pool: "p" }] },
  });
  const issues = crossCheck(config, { localAddresses: () => [] });
  assert.deepEqual(issues.map((i) => i.message), [
    "tcp 127.0.0.1:8080 is already used by l7.listeners[0].listen; pick another port",
  ]);
});
