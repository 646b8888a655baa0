import assert from "node:assert/strict";
import type { RuleConfig } from "../config/schema.ts";
import {
  compileRules,
  cookieValue,
  hashKey,
  hostMatches,
  normalizeUri,
  queryParam,
  type RequestView,
} from "./rules.ts";

function req(
  url: string,
  options: { method?: string; host?: string; headers?: Record<string, string> } = {},
): RequestView {
  const q = url.indexOf("?");
  const headers = options.headers ?? {};
  return {
    method: options.method ?? "GET",
    path: q < 0 ? url : url.slice(0, q),
    query: q < 0 ? "" : url.slice(q + 1),
    host: options.host ?? "www.example.com",
    header: (name) => headers[name],
  };
}

const balance = { load_bound: 1.25 };
const rules: RuleConfig[] = [
  { match: { path_suffix: [".jpg", ".png", ".gif"] }, pool: "images" },
  { match: { path_prefix: "/cgi-bin/" }, pool: "cgi" },
  { match: { path_regex: "^/api/v[0-9]+/" }, pool: "api" },
  { match: { host: "*.static.example.com" }, pool: "static" },
  { match: { host: ["admin.example.com"], method: ["POST", "put"] }, pool: "admin-write" },
  { match: { header: { name: "X-Canary", value: "1" } }, pool: "canary" },
  { match: { header: { name: "User-Agent", regex: "bot|crawler" } }, pool: "bots" },
  { match: { query: { name: "debug" } }, pool: "debug" },
  { match: { query: { name: "v", regex: "^2" } }, pool: "v2" },
  { name: "rest", pool: "html" },
];
const table = compileRules({ rules, balance });

const cases: [string, RequestView, string][] = [
  ["suffix .jpg", req("/img/a.jpg"), "images"],
  ["suffix .png with a query", req("/b.png?x=1"), "images"],
  ["suffix only looks at the path", req("/page?file=a.jpg"), "html"],
  ["prefix /cgi-bin/", req("/cgi-bin/env.pl"), "cgi"],
  ["first match wins: a .gif under /cgi-bin/ is an image", req("/cgi-bin/x.gif"), "images"],
  ["regex", req("/api/v2/users"), "api"],
  ["regex does not match", req("/api/vx/users"), "html"],
  ["wildcard host", req("/", { host: "a.static.example.com" }), "static"],
  ["wildcard host excludes the apex", req("/", { host: "static.example.com" }), "html"],
  [
    "host and method both hold",
    req("/", { host: "admin.example.com", method: "PUT" }),
    "admin-write",
  ],
  ["host holds, method does not", req("/", { host: "admin.example.com", method: "GET" }), "html"],
  ["header value", req("/", { headers: { "x-canary": "1" } }), "canary"],
  ["header value differs", req("/", { headers: { "x-canary": "0" } }), "html"],
  ["header regex", req("/", { headers: { "user-agent": "Googlebot/2.1" } }), "bots"],
  ["query presence", req("/p?a=1&debug"), "debug"],
  ["query regex", req("/p?v=2.1"), "v2"],
  ["query regex does not match", req("/p?v=1"), "html"],
  ["default", req("/index.html"), "html"],
];

for (const [name, request, pool] of cases) {
  Deno.test(`rule table: ${name} → ${pool}`, () => {
    assert.equal(table.match(request)?.pool, pool);
  });
}

Deno.test("no default rule means no match", () => {
  const t = compileRules({ rules: [{ match: { path_prefix: "/a" }, pool: "a" }], balance });
  assert.equal(t.match(req("/b")), undefined);
});

Deno.test("rules carry their index, text and resolved balance", () => {
  const t = compileRules({
    rules: [
      { match: { path_suffix: [".jpg", ".png"] }, pool: "images" },
      { pool: "cgi", balance: { scheduler: "wlc", load_bound: 1.25 } },
    ],
    balance: { hash: "header X-User", load_bound: 1.5 },
  });
  assert.equal(t.rules[0].index, 0);
  assert.equal(t.rules[0].text, "path_suffix .jpg|.png → images");
  assert.deepEqual(t.rules[0].balance, {
    hash: "header X-User",
    scheduler: undefined,
    loadBound: 1.5,
  });
  assert.equal(t.rules[1].text, "default → cgi");
  assert.deepEqual(t.rules[1].balance, { hash: undefined, scheduler: "wlc", loadBound: 1.25 });
  const plain = compileRules({ rules: [{ pool: "p" }], balance: { load_bound: 1.25 } });
  assert.equal(plain.rules[0].balance.hash, "uri", "hashing by uri is the default");
});

Deno.test("hash keys come from the uri, path, host, header, cookie or source", () => {
  const r = req("/a%7eb/c.jpg?x=1", { headers: { "x-user": "u7", cookie: "a=1; sid=abc" } });
  assert.equal(hashKey("uri", r), "/a~b/c.jpg?x=1");
  assert.equal(hashKey("path", r), "/a~b/c.jpg");
  assert.equal(hashKey("host", r), "www.example.com");
  assert.equal(hashKey("header X-User", r), "u7");
  assert.equal(hashKey("cookie sid", r), "abc");
  assert.equal(hashKey("cookie none", r), "");
  assert.equal(hashKey("source", r, { source: "10.1.2.3" }), "10.1.2.3");
});

Deno.test("helpers: host patterns, query params, cookies, uri normalization", () => {
  assert.ok(hostMatches("*.example.com", "a.b.example.com"));
  assert.ok(!hostMatches("*.example.com", "example.com"));
  assert.ok(hostMatches("Example.COM", "example.com"));
  assert.equal(queryParam("a=1&b=two%20words", "b"), "two words");
  assert.equal(queryParam("a=1", "b"), undefined);
  assert.equal(cookieValue("x=1;y=2", "y"), "2");
  assert.equal(normalizeUri("/%7Euser/%2f", ""), "/~user/%2F");
});
