import assert from "node:assert/strict";
import { RoleBoard, type RoleChange } from "./role.ts";

Deno.test("RoleBoard reports only real role changes", () => {
  const board = new RoleBoard();
  const seen: RoleChange[] = [];
  board.subscribe((c) => seen.push(c));
  assert.equal(board.get("VI_1"), "init");
  board.set("VI_1", "backup", "start");
  board.set("VI_1", "backup", "again");
  board.set("VI_1", "master", "master down");
  assert.deepEqual(seen.map((c) => `${c.previous}>${c.role}`), ["init>backup", "backup>master"]);
  assert.equal(board.anyMaster(), true);
  board.delete("VI_1");
  assert.equal(board.anyMaster(), false);
});
