import assert from "node:assert/strict";
import { editDistance, suggest } from "./suggest.ts";

Deno.test("editDistance counts a transposition as one edit", () => {
  assert.equal(editDistance("pools", "pools"), 0);
  assert.equal(editDistance("poosl", "pools"), 1);
  assert.equal(editDistance("intervl", "interval"), 1);
});

Deno.test("suggest offers the closest key only when it is close", () => {
  assert.equal(suggest("intervall", ["interval", "timeout"]), "interval");
  assert.equal(suggest("Timeout", ["interval", "timeout"]), "timeout");
  assert.equal(suggest("zzz", ["interval", "timeout"]), undefined);
});
