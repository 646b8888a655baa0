import assert from "node:assert/strict";
import { connOverhead, usable } from "./types.ts";
import { Dest } from "./mod.ts";

Deno.test("a destination's cost is 256 × active + inactive", () => {
  const d = new Dest("10.0.0.1", 80, 1);
  d.activeConns = 3;
  d.inactiveConns = 7;
  assert.equal(connOverhead(d), 775);
});

Deno.test("weight 0 or the overload flag make a destination unusable", () => {
  const d = new Dest("10.0.0.1", 80, 0);
  assert.equal(usable(d), false);
  d.weight = 1;
  assert.equal(usable(d), true);
  d.overloaded = true;
  assert.equal(usable(d), false);
});
