import assert from "node:assert/strict";
import { describeDiff, diff } from "./diff.ts";
import { loadConfigText } from "./load.ts";
import type { Model } from "./model.ts";

function model(yaml: string): Model {
  const result = loadConfigText(yaml, { localAddresses: () => [] });
  if (!result.ok) throw new Error(result.errors.map((e) => e.message).join("; "));
  return result.model;
}

const BASE = `
pools:
  html: { servers: [{ address: 127.0.0.1:8101 }, { address: 127.0.0.1:8102 }] }
  images: { servers: [{ address: 127.0.0.1:8201 }] }
l7:
  listeners:
    - { name: web, listen: 127.0.0.1:8080, rules: [{ pool: html }] }
l4:
  services:
    - { name: tcp, vip: 127.0.0.1:8090, pool: html }
`;

Deno.test("an identical config gives an empty diff", () => {
  const d = diff(model(BASE), model(BASE));
  assert.equal(d.empty, true);
  assert.deepEqual(describeDiff(d), ["no changes"]);
});

Deno.test("one weight change names exactly that server and nothing else", () => {
  const after = BASE.replace(
    "{ address: 127.0.0.1:8102 }",
    "{ address: 127.0.0.1:8102, weight: 5 }",
  );
  const d = diff(model(BASE), model(after));
  assert.deepEqual(d.pools.changed, ["html"]);
  assert.deepEqual(d.servers, [{
    pool: "html",
    added: [],
    removed: [],
    changed: ["127.0.0.1:8102"],
  }]);
  assert.deepEqual(d.checks, []);
  assert.equal(d.services.changed.length, 0);
  assert.deepEqual(describeDiff(d), ["~ pool html", "~ server html 127.0.0.1:8102"]);
});

Deno.test("added and removed pools, listeners, services and servers are listed", () => {
  const after = `
pools:
  html: { servers: [{ address: 127.0.0.1:8101 }, { address: 127.0.0.1:8103 }] }
  cgi: { servers: [{ address: 127.0.0.1:8301 }] }
l7:
  listeners:
    - { name: web2, listen: 127.0.0.1:8081, rules: [{ pool: html }] }
l4:
  dataplane: userspace
  services:
    - { name: tcp, vip: 127.0.0.1:8090, pool: html, scheduler: rr }
`;
  const d = diff(model(BASE), model(after));
  assert.deepEqual(d.pools, { added: ["cgi"], removed: ["images"], changed: ["html"] });
  assert.deepEqual(d.servers[0].added, ["127.0.0.1:8103"]);
  assert.deepEqual(d.servers[0].removed, ["127.0.0.1:8102"]);
  assert.deepEqual(d.listeners, { added: ["web2"], removed: ["web"], changed: [] });
  assert.deepEqual(d.services.changed, ["tcp"]);
  assert.deepEqual(d.l4Globals, ["dataplane"]);
  assert.equal(d.empty, false);
});

Deno.test("a check change is reported per pool", () => {
  const after = BASE.replace(
    "images: { servers",
    "images: { check: { type: tcp, interval: 5s }, servers",
  );
  const d = diff(model(BASE), model(after));
  assert.deepEqual(d.checks, ["images"]);
  assert.deepEqual(d.servers, []);
});
