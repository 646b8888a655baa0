import assert from "node:assert/strict";
import type { PoolModel } from "../config/model.ts";
import { parseEndpoint } from "../config/address.ts";
import type { Endpoint } from "../config/address.ts";
import { PoolRuntime, type ServerRuntime } from "./pool.ts";

function model(servers: { address: string; weight?: number; backup?: boolean }[]): PoolModel {
  return {
    name: "p",
    slowstart: 0,
    check: {} as PoolModel["check"],
    servers: servers.map((s) => ({
      address: parseEndpoint(s.address) as Endpoint,
      weight: s.weight ?? 1,
      backup: s.backup ?? false,
      max_conns: 0,
      upper_threshold: 0,
      lower_threshold: 0,
    })),
  };
}

const three = model([
  { address: "127.0.0.1:1" },
  { address: "127.0.0.1:2" },
  { address: "127.0.0.1:3" },
]);

Deno.test("the same key goes to the same server while nothing changes", () => {
  const pool = new PoolRuntime(three, () => undefined);
  const first = pool.pick({ key: "/a.html" })?.server.address;
  for (let i = 0; i < 10; i++) assert.equal(pool.pick({ key: "/a.html" })?.server.address, first);
});

Deno.test("a server with effective weight 0 leaves the ring; its keys move, others stay", () => {
  const pool = new PoolRuntime(three, () => undefined);
  const before = new Map<string, string>();
  for (let i = 0; i < 300; i++) before.set(`/k${i}`, pool.pick({ key: `/k${i}` })!.server.address);
  assert.ok(pool.setWeight("127.0.0.1:2", 0));
  for (const [key, was] of before) {
    const now = pool.pick({ key })!.server.address;
    assert.notEqual(now, "127.0.0.1:2");
    if (was !== "127.0.0.1:2") assert.equal(now, was);
  }
  assert.equal(pool.usable.length, 2);
});

Deno.test("a pool with every server down picks nothing; backups serve when primaries are down", () => {
  const pool = new PoolRuntime(
    model([{ address: "127.0.0.1:1" }, { address: "127.0.0.1:9", backup: true }]),
    () => 0,
  );
  assert.equal(pool.pick({ key: "/" }), undefined);
  pool.setWeight("127.0.0.1:9", 1);
  assert.equal(pool.pick({ key: "/" })?.server.address, "127.0.0.1:9");
  pool.setWeight("127.0.0.1:1", 1);
  assert.equal(pool.pick({ key: "/" })?.server.address, "127.0.0.1:1");
});

Deno.test("excluded servers are skipped for a retry", () => {
  const pool = new PoolRuntime(three, () => undefined);
  const first = pool.pick({ key: "/x" })!.server;
  const second = pool.pick({ key: "/x", exclude: new Set([first]) })!.server;
  assert.notEqual(second, first);
  const all = new Set(pool.servers);
  assert.equal(pool.pick({ key: "/x", exclude: all }), undefined);
});

Deno.test("in-flight load past the bound diverts a hot key and says from whom", () => {
  const pool = new PoolRuntime(three, () => undefined);
  const home = pool.pick({ key: "/hot" })!.server;
  for (let i = 0; i < 10; i++) pool.acquire(home);
  const pick = pool.pick({ key: "/hot", loadBound: 1.25 })!;
  assert.equal(pick.diverted, true);
  assert.equal(pick.home, home);
  assert.notEqual(pick.server, home);
  for (let i = 0; i < 10; i++) pool.release(home);
  assert.equal(pool.inflight, 0);
});

Deno.test("scheduler balancing uses the l4 scheduler: rr cycles, wlc follows in-flight", () => {
  const pool = new PoolRuntime(three, () => undefined);
  const seen = new Set<string>();
  for (let i = 0; i < 3; i++) seen.add(pool.pick({ scheduler: "rr" })!.server.address);
  assert.equal(seen.size, 3);
  pool.acquire(pool.servers[0]);
  pool.acquire(pool.servers[1]);
  assert.equal(pool.pick({ scheduler: "wlc" })!.server.address, "127.0.0.1:3");
});

Deno.test("a server with too many requests in flight is passed even when its rate is even", () => {
  const pool = new PoolRuntime(three, () => undefined);
  for (const s of pool.servers) {
    for (let i = 0; i < 100; i++) pool.acquire(s);
    for (let i = 0; i < 100; i++) pool.release(s);
  }
  const home = pool.pick({ key: "/slow" })!.server;
  assert.equal(pool.pick({ key: "/slow", loadBound: 1.25 })!.diverted, false);
  for (let i = 0; i < 5; i++) pool.acquire(home);
  const pick = pool.pick({ key: "/slow", loadBound: 1.25 })!;
  assert.equal(pick.diverted, true);
  assert.equal(pick.home, home);
});

Deno.test("the recent-rate bound keeps a hot key's server within bound × its share", () => {
  const pool = new PoolRuntime(three, () => undefined);
  const counts = new Map<string, number>();
  const inflight: ServerRuntime[] = [];
  for (let i = 0; i < 3000; i++) {
    const key = i % 2 === 0 ? "/hot" : `/cold/${i}`;
    const pick = pool.pick({ key, loadBound: 1.25 })!;
    pool.acquire(pick.server);
    inflight.push(pick.server);
    if (inflight.length > 8) pool.release(inflight.shift()!); // 8 requests in flight
    counts.set(pick.server.address, (counts.get(pick.server.address) ?? 0) + 1);
  }
  for (const [address, n] of counts) assert.ok(n <= 1.3 * 1000, `${address} took ${n} of 3000`);
});

Deno.test("an over-loaded server sheds its hot key before any cold key", () => {
  const pool = new PoolRuntime(three, () => undefined);
  const hotHome = pool.pick({ key: "/hot" })!.server;
  // cold keys homed with the hot one: its server has 1/4 hot + 1/4 cold of the traffic
  const cold: string[] = [];
  const others: string[] = [];
  for (let i = 0; cold.length < 500 || others.length < 500; i++) {
    const key = `/cold/${i}`;
    (pool.pick({ key })!.server === hotHome ? cold : others).push(key);
  }
  const inflight: ServerRuntime[] = [];
  let hotMoved = 0;
  let coldMoved = 0;
  let hotHomeCount = 0;
  for (let i = 0; i < 8000; i++) {
    const key = i % 4 === 0 ? "/hot" : i % 4 === 1 ? cold[(i >> 2) % 500] : others[i % 500];
    const pick = pool.pick({ key, loadBound: 1.25 })!;
    if (pick.diverted && key === "/hot") hotMoved++;
    if (pick.diverted && key !== "/hot") coldMoved++;
    if (i >= 4000 && pick.server === hotHome) hotHomeCount++;
    pool.acquire(pick.server, pick.hash);
    inflight.push(pick.server);
    if (inflight.length > 8) pool.release(inflight.shift()!);
  }
  assert.ok(hotMoved > 0, "the hot key never left its home");
  assert.ok(coldMoved < hotMoved / 20, `${coldMoved} cold vs ${hotMoved} hot requests moved`);
  assert.ok(hotHomeCount <= 1.25 * 4000 / 3, `the hot key's home took ${hotHomeCount} of 4000`);
});

Deno.test("at low load one key keeps its server however often it is asked for", () => {
  const pool = new PoolRuntime(three, () => undefined);
  const home = pool.pick({ key: "/a.jpg" })!.server;
  for (let i = 0; i < 500; i++) {
    const pick = pool.pick({ key: "/a.jpg", loadBound: 1.25 })!;
    assert.equal(pick.server, home);
    pool.acquire(pick.server);
    pool.release(pick.server);
  }
});

Deno.test("a server at max_conns takes no new request until one finishes", () => {
  const m = model([{ address: "127.0.0.1:1" }, { address: "127.0.0.1:2" }]);
  const capped: PoolModel = { ...m, servers: m.servers.map((s) => ({ ...s, max_conns: 1 })) };
  const pool = new PoolRuntime(capped, () => undefined);
  const first = pool.pick({ key: "/k" })!.server;
  pool.acquire(first);
  const second = pool.pick({ key: "/k" })!.server;
  assert.notEqual(second, first);
  pool.acquire(second);
  assert.equal(pool.pick({ key: "/k" }), undefined);
  assert.equal(pool.pick({ scheduler: "wlc" }), undefined);
  pool.release(first);
  assert.equal(pool.pick({ key: "/k" })!.server, first);
});
