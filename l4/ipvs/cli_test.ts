import assert from "node:assert/strict";
import { ipvsCommand } from "./cli.ts";

async function ipvsLoaded(): Promise<boolean> {
  try {
    await Deno.stat("/proc/net/ip_vs");
    return true;
  } catch {
    return false;
  }
}

Deno.test("fulcrum ipvs with an unknown subcommand or option exits 2", async () => {
  assert.equal(await ipvsCommand([]), 2);
  assert.equal(await ipvsCommand(["show"]), 2);
  assert.equal(await ipvsCommand(["save", "--stats"]), 2);
});

Deno.test("fulcrum ipvs list exits 1 on a kernel without IPVS (0 with it)", async () => {
  assert.equal(await ipvsCommand(["list"]), (await ipvsLoaded()) ? 0 : 1);
});
