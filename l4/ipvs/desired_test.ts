import assert from "node:assert/strict";
import { buildModel, type Model } from "../../config/model.ts";
import { configSchema } from "../../config/schema.ts";
import type { ServerState } from "../../health/state.ts";
import { desiredServices, destWeight, keyOf, parseNetmask4 } from "./desired.ts";

function model(config: unknown): Model {
  return buildModel(configSchema.parse(config), { path: "t.yaml", hash: "0" });
}

function state(over: Partial<ServerState>): ServerState {
  return {
    pool: "p",
    address: "10.0.1.1:80",
    health: "up",
    admin: "enabled",
    configuredWeight: 1,
    effectiveWeight: 1,
    reason: "",
    since: 0,
    ...over,
  };
}

const pools = {
  p: {
    servers: [
      { address: "10.0.1.1:80", weight: 3, upper_threshold: 10, lower_threshold: 2 },
      { address: "10.0.1.2:80", weight: 1, max_conns: 40 },
    ],
  },
};

Deno.test("health verdicts map to weights: down quiesces or removes, drain quiesces, disabled removes", () => {
  assert.equal(destWeight(3, undefined, { onDown: "remove" }), 3);
  assert.equal(destWeight(3, state({ effectiveWeight: 2 }), { onDown: "remove" }), 2);
  assert.equal(
    destWeight(3, state({ health: "down", effectiveWeight: 0 }), { onDown: "remove" }),
    undefined,
  );
  assert.equal(
    destWeight(3, state({ health: "down", effectiveWeight: 0 }), { onDown: "quiesce" }),
    0,
  );
  assert.equal(
    destWeight(3, state({ admin: "drain", effectiveWeight: 0 }), { onDown: "remove" }),
    0,
  );
  assert.equal(
    destWeight(3, state({ admin: "disabled", effectiveWeight: 0 }), { onDown: "quiesce" }),
    undefined,
  );
});

Deno.test("a configured service becomes a kernel service with flags, persistence and thresholds", () => {
  const m = model({
    pools,
    l4: {
      services: [{
        name: "web",
        vip: "10.0.0.1:80",
        scheduler: "sh",
        scheduler_flags: ["sh-port"],
        persistence: { timeout: "5m", netmask: "255.255.255.0" },
        pool: "p",
        forward: "dr",
      }],
    },
  });
  const [d] = desiredServices(m, () => undefined);
  assert.equal(d.name, "web");
  assert.deepEqual(d.service, {
    family: 4,
    protocol: "tcp",
    scheduler: "sh",
    flags: 0x1 | 0x10,
    timeout: 300,
    netmask: 0xffffff00,
    address: "10.0.0.1",
    port: 80,
  });
  assert.deepEqual([...d.dests.keys()], ["10.0.1.1:80", "10.0.1.2:80"]);
  const a = d.dests.get("10.0.1.1:80")!;
  assert.equal(a.forward, "dr");
  assert.equal(a.weight, 3);
  assert.equal(a.upperThreshold, 10);
  assert.equal(a.lowerThreshold, 2);
  assert.equal(d.dests.get("10.0.1.2:80")!.upperThreshold, 40, "max_conns is the upper threshold");
});

Deno.test("fwmark, IPv6 prefix netmask and tunnel settings are carried", () => {
  const m = model({
    pools: { ...pools, six: { servers: [{ address: "[2001:db8::10]:443" }] } },
    l4: {
      services: [
        {
          name: "mark",
          fwmark: 7,
          pool: "p",
          forward: "tun",
          tunnel: { type: "gue", port: 6080, csum: "remcsum" },
        },
        {
          name: "six",
          vip: "[2001:db8::1]:443",
          pool: "six",
          persistence: { timeout: "1m", netmask: "64" },
        },
      ],
    },
  });
  const [mark, six] = desiredServices(m, () => undefined);
  assert.equal(mark.service.fwmark, 7);
  assert.equal(mark.key, "4|fwmark|7");
  assert.deepEqual(mark.dests.get("10.0.1.1:80")!.tunnel, {
    type: "gue",
    port: 6080,
    csum: "remcsum",
  });
  assert.equal(six.service.family, 6);
  assert.equal(six.service.netmask, 64);
  assert.equal(six.key, keyOf({ family: 6, protocol: "tcp", address: "2001:db8::1", port: 443 }));
});

Deno.test("backup servers take weight only while no primary has any", () => {
  const m = model({
    pools: {
      p: {
        servers: [{ address: "10.0.1.1:80", weight: 2 }, {
          address: "10.0.1.9:80",
          weight: 5,
          backup: true,
        }],
      },
    },
    l4: { services: [{ name: "web", vip: "10.0.0.1:80", pool: "p", on_down: "remove" }] },
  });
  const healthy = desiredServices(m, () => undefined)[0];
  assert.equal(healthy.dests.get("10.0.1.9:80")!.weight, 0);
  const down = desiredServices(
    m,
    (_pool, address) =>
      address === "10.0.1.1:80" ? state({ health: "down", effectiveWeight: 0 }) : undefined,
  )[0];
  assert.equal(down.dests.has("10.0.1.1:80"), false);
  assert.equal(down.dests.get("10.0.1.9:80")!.weight, 5);
});

Deno.test("a duplicate service and a family mismatch are refused with the service named", () => {
  const dup = model({
    pools,
    l4: {
      services: [{ name: "a", vip: "10.0.0.1:80", pool: "p" }, {
        name: "b",
        vip: "10.0.0.1:80",
        pool: "p",
      }],
    },
  });
  assert.throws(
    () => desiredServices(dup, () => undefined),
    /l4 service "b" duplicates service "a" \(both are tcp 10\.0\.0\.1:80\)/,
  );
  const udpToo = model({
    pools,
    l4: {
      services: [{ name: "a", vip: "10.0.0.1:80", pool: "p" }, {
        name: "b",
        vip: "10.0.0.1:80",
        protocol: "udp",
        pool: "p",
      }],
    },
  });
  assert.equal(desiredServices(udpToo, () => undefined).length, 2);
  const mixed = model({
    pools: { six: { servers: [{ address: "[2001:db8::10]:80" }] } },
    l4: { services: [{ name: "m", vip: "10.0.0.1:80", pool: "six" }] },
  });
  assert.throws(
    () => desiredServices(mixed, () => undefined),
    /l4 service "m" .* is IPv4 but real server \[2001:db8::10\]:80 is IPv6/,
  );
  const badMask = model({
    pools,
    l4: {
      services: [{
        name: "x",
        vip: "10.0.0.1:80",
        pool: "p",
        persistence: { netmask: "255.0.255.0" },
      }],
    },
  });
  assert.throws(
    () => desiredServices(badMask, () => undefined),
    /l4 service "x": persistence netmask "255\.0\.255\.0" is not an IPv4 mask/,
  );
});

Deno.test("IPv4 netmasks parse only when contiguous", () => {
  assert.equal(parseNetmask4("255.255.255.255"), 0xffffffff);
  assert.equal(parseNetmask4("255.255.240.0"), 0xfffff000);
  assert.equal(parseNetmask4("0.0.0.0"), 0);
  assert.equal(parseNetmask4("255.0.255.0"), undefined);
  assert.equal(parseNetmask4("256.0.0.0"), undefined);
});
