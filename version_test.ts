import assert from "node:assert/strict";
import meta from "./deno.json" with { type: "json" };
import { VERSION } from "./version.ts";

Deno.test("the version is deno.json's, in semver form", () => {
  assert.equal(VERSION, meta.version);
  assert.match(VERSION, /^\d+\.\d+\.\d+$/);
});
