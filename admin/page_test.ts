import assert from "node:assert/strict";
import { STATUS_PAGE } from "./page.ts";

Deno.test("the status page reads the admin API and loads nothing from outside", () => {
  for (const path of ["/api/v1/status", "/api/v1/pools", "/api/v1/services", "/api/v1/vrrp"]) {
    assert.ok(STATUS_PAGE.includes(`"${path}"`), path);
  }
  assert.doesNotMatch(STATUS_PAGE, /(src|href)="https?:/);
  assert.match(STATUS_PAGE, /setInterval\(refresh, 2000\)/);
});
