import assert from "node:assert/strict";
import { Hono } from "hono";
import type { AdminEnv } from "../subsystem.ts";
import { mountRoute, type RouteQuery } from "./route.ts";

function app() {
  const asked: RouteQuery[] = [];
  const a = new Hono<AdminEnv>();
  mountRoute(a, {
    explain(q) {
      asked.push(q);
      if (q.listener === "nope") return 'listener "nope" does not exist; listeners: web';
      return { pool: q.url.endsWith(".jpg") ? "images" : "html", method: q.method ?? "GET" };
    },
  });
  return { a, asked };
}

Deno.test("GET /api/v1/route passes url, method, host, listener and headers to the explainer", async () => {
  const { a, asked } = app();
  const res = await a.request(
    "/api/v1/route?url=/a.jpg&method=HEAD&host=h.example&listener=web&header=X-User:%20u1",
  );
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { pool: "images", method: "HEAD" });
  assert.equal(asked[0].host, "h.example");
  assert.equal(asked[0].listener, "web");
  assert.deepEqual(asked[0].headers, { "x-user": "u1" });
});

Deno.test("GET /api/v1/route answers JSON errors for a missing url, bad header or unknown listener", async () => {
  const { a } = app();
  const missing = await a.request("/api/v1/route");
  assert.equal(missing.status, 400);
  assert.equal((await missing.json()).error.code, "bad_request");
  const bad = await a.request("/api/v1/route?url=/&header=nocolon");
  assert.equal(bad.status, 400);
  const unknown = await a.request("/api/v1/route?url=/&listener=nope");
  assert.equal(unknown.status, 404);
  assert.match((await unknown.json()).error.message, /does not exist/);
});
