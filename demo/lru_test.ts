import assert from "node:assert/strict";
import { Lru } from "./lru.ts";

Deno.test("the LRU evicts the least recently used key", () => {
  const lru = new Lru(2);
  assert.equal(lru.touch("a"), false);
  assert.equal(lru.touch("b"), false);
  assert.equal(lru.touch("a"), true);
  assert.equal(lru.touch("c"), false); // evicts b
  assert.equal(lru.touch("b"), false);
  assert.equal(lru.touch("c"), true);
  assert.equal(lru.size, 2);
});
