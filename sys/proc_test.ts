import assert from "node:assert/strict";
import { readOwnProcFile } from "./proc.ts";

const PROC_URL = new URL("./proc.ts", import.meta.url).href;

/** Runs a child with `permissions` that reads its own stat and cmdline; returns what it printed. */
async function child(permissions: string[]): Promise<{ stat?: string; cmdline?: string }> {
  const script = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      script,
      `import { readOwnProcFile } from ${JSON.stringify(PROC_URL)};
console.log(JSON.stringify({ stat: readOwnProcFile("stat"), cmdline: readOwnProcFile("cmdline") }));`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-lock", ...permissions, script],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    return JSON.parse(new TextDecoder().decode(out.stdout));
  } finally {
    await Deno.remove(script);
  }
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
