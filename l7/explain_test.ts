import assert from "node:assert/strict";
import { parseEndpoint } from "../config/address.ts";
import type { Endpoint } from "../config/address.ts";
import type { PoolModel } from "../config/model.ts";
import type { ListenerConfig } from "../config/schema.ts";
import { explain, type Explanation } from "./explain.ts";
import { PoolRuntime } from "./pool.ts";
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

const config = {
  name: "web",
  rules: [
    { match: { path_suffix: [".jpg"] }, pool: "images" },
    {
      match: { path_prefix: "/cgi-bin/" },
      pool: "cgi",
      balance: { scheduler: "wlc", load_bound: 1.25 },
    },
    { match: { host: "*.gone.example" }, pool: "gone" },
    { match: { path_prefix: "/index" }, pool: "html" },
  ],
  balance: { hash: "uri", load_bound: 1.25 },
} as unknown as ListenerConfig;

function state() {
  const pools = new Map([
    ["images", pool("images", ["10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"])],
    ["cgi", pool("cgi", ["10.0.1.1:80"])],
    ["html", pool("html", [])],
  ]);
  return { config, table: compileRules(config), pools };
}

Deno.test("explain names the rule, the key, the server and its ring position", () => {
  const s = state();
  const e = explain(s, { url: "/img/a.jpg?v=2", host: "www.example.com" }) as Explanation;
  assert.deepEqual(e.rule, { index: 0, text: "path_suffix .jpg → images" });
  assert.equal(e.pool, "images");
  assert.equal(e.key, "/img/a.jpg?v=2");
  assert.equal(e.request.host, "www.example.com");
  assert.ok(e.server?.startsWith("10.0.0."));
  assert.equal(e.ring?.points, 3000);
  assert.equal(e.ring?.home, e.server);
  assert.equal(e.ring?.diverted, false);
  assert.equal(e.usable.length, 3);
});

Deno.test("explain reports a diversion by the load bound and from whom", () => {
  const s = state();
  const images = s.pools.get("images")!;
  const first = explain(s, { url: "/hot.jpg" }) as Explanation;
  const home = images.servers.find((x) => x.address === first.server)!;
  for (let i = 0; i < 8; i++) images.acquire(home);
  const e = explain(s, { url: "/hot.jpg" }) as Explanation;
  assert.equal(e.ring?.diverted, true);
  assert.equal(e.ring?.diverted_from, home.address);
  assert.notEqual(e.server, home.address);
});

Deno.test("explain covers schedulers, missing pools, empty pools, no match and bad urls", () => {
  const s = state();
  const cgi = explain(s, { url: "/cgi-bin/x", method: "post" }) as Explanation;
  assert.equal(cgi.request.method, "POST");
  assert.equal(cgi.balance?.scheduler, "wlc");
  assert.match(cgi.reason!, /scheduler wlc picks a server per request/);
  const gone = explain(s, { url: "http://a.gone.example/x" }) as Explanation;
  assert.match(gone.reason!, /pool gone does not exist/);
  const empty = explain(s, { url: "/index.html" }) as Explanation;
  assert.match(empty.reason!, /no server of pool html is available/);
  const nothing = explain(s, { url: "other" }) as Explanation;
  assert.equal(nothing.request.path, "/other");
  assert.equal(nothing.rule, null);
  assert.equal(explain(s, { url: "" }), "url is required, e.g. ?url=/images/a.jpg");
});
