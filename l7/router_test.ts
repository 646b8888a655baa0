import assert from "node:assert/strict";
import { parseEndpoint } from "../config/address.ts";
import type { Endpoint } from "../config/address.ts";
import type { PoolModel } from "../config/model.ts";
import type { Head } from "./codec.ts";
import { PoolRuntime } from "./pool.ts";
import { decide, hostOnly, parseTarget, viewOf } from "./router.ts";
import { compileRules } from "./rules.ts";

function pool(name: string, addresses: string[]): PoolRuntime {
  const model: PoolModel = {
    name,
    slowstart: 0,
    check: {} as PoolModel["check"],
    servers: addresses.map((a) => ({
      address: parseEndpoint(a) as Endpoint,
      weight: 1,
      backup: false,
      max_conns: 0,
      upper_threshold: 0,
      lower_threshold: 0,
    })),
  };
  return new PoolRuntime(model, () => undefined);
}

function head(method: string, target: string, headers: [string, string][]): Head {
  return { method, target, status: 0, reason: "", version: "HTTP/1.1", headers, length: 0 };
}

Deno.test("targets: origin, absolute and asterisk forms; others are invalid", () => {
  assert.deepEqual(parseTarget("/a/b.jpg?x=1#frag"), {
    path: "/a/b.jpg",
    query: "x=1",
    authority: undefined,
  });
  assert.deepEqual(parseTarget("http://Example.com:81/p?q"), {
    path: "/p",
    query: "q",
    authority: "example.com:81",
  });
  assert.deepEqual(parseTarget("*"), { path: "*", query: "" });
  assert.equal(parseTarget("a.jpg"), undefined);
  assert.equal(hostOnly("WWW.Example.com:8080"), "www.example.com");
  assert.equal(hostOnly("[::1]:80"), "[::1]");
});

Deno.test("decide matches the rule, hashes the uri and picks the same server every time", () => {
  const pools = new Map([
    ["images", pool("images", ["127.0.0.1:8201", "127.0.0.1:8202"])],
    ["html", pool("html", ["127.0.0.1:8101", "127.0.0.1:8102"])],
  ]);
  const table = compileRules({
    rules: [{ match: { path_suffix: [".jpg"] }, pool: "images" }, { pool: "html" }],
    balance: { hash: "uri", load_bound: 1.25 },
  });
  const h = head("GET", "/a.jpg", [["Host", "x"]]);
  const d = decide(viewOf(h, parseTarget(h.target)!), { table, pools });
  assert.equal(d.rule?.index, 0);
  assert.equal(d.pool?.name, "images");
  assert.equal(d.key, "/a.jpg");
  const first = d.pick?.server.address;
  assert.ok(first?.startsWith("127.0.0.1:820"));
  for (let i = 0; i < 5; i++) {
    assert.equal(
      decide(viewOf(h, parseTarget(h.target)!), { table, pools }).pick?.server.address,
      first,
    );
  }
  const html = decide(viewOf(head("GET", "/index.html", []), parseTarget("/index.html")!), {
    table,
    pools,
  });
  assert.equal(html.pool?.name, "html");
});

Deno.test("decide reports a missing rule, a missing pool and an empty pool", () => {
  const pools = new Map([["empty", pool("empty", [])]]);
  const table = compileRules({
    rules: [{ match: { path_prefix: "/e" }, pool: "empty" }, {
      match: { path_prefix: "/g" },
      pool: "gone",
    }],
    balance: { load_bound: 1.25 },
  });
  const at = (p: string) => decide(viewOf(head("GET", p, []), parseTarget(p)!), { table, pools });
  assert.equal(at("/x").rule, undefined);
  assert.equal(at("/g").pool, undefined);
  const e = at("/e");
  assert.equal(e.pool?.name, "empty");
  assert.equal(e.pick, undefined);
});
