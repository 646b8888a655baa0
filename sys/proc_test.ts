import assert from "node:assert/strict";
import { runScriptJson } from "../tests/child_script.ts";
import { readOwnProcFile } from "./proc.ts";

const PROC_URL = new URL("./proc.ts", import.meta.url).href;

/** Runs a child with `permissions` that reads its own stat and cmdline; returns what it printed. */
function child(permissions: string[]): Promise<{ stat?: string; cmdline?: string }> {
  return runScriptJson(
    `import { readOwnProcFile } from ${JSON.stringify(PROC_URL)};
console.log(JSON.stringify({ stat: readOwnProcFile("stat"), cmdline: readOwnProcFile("cmdline") }));`,
    permissions,
  );
}

Deno.test({
  name: "own /proc files are read with --allow-ffi alone, where Deno would ask for --allow-all",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const got = await child(["--allow-ffi", "--allow-read"]);
    assert.match(got.stat ?? "", /^\d+ \(deno\) [A-Z] /);
    assert.ok(got.cmdline?.split("\0").includes("--allow-ffi"), JSON.stringify(got.cmdline));
  },
});

Deno.test({
  name: "without --allow-ffi or --allow-all own /proc files are undefined, not an error",
  ignore: Deno.build.os !== "linux",
  async fn() {
    assert.deepEqual(await child(["--allow-read"]), {});
  },
});

Deno.test({
  name: "a /proc file that does not exist is undefined",
  ignore: Deno.build.os !== "linux",
  fn() {
    assert.equal(readOwnProcFile("no-such-file"), undefined);
    assert.match(readOwnProcFile("status") ?? "", /^Name:/);
  },
});
