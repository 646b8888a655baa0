import assert from "node:assert/strict";
import { fulcrum, ROOT } from "./cli.ts";
import { VERSION } from "../version.ts";

const BUNDLE = `${ROOT}dist/fulcrum.js`;

async function ensureBundle(): Promise<void> {
  try {
    await Deno.stat(BUNDLE);
  } catch {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["task", "bundle"],
      cwd: ROOT,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  }
}

Deno.test("the bundle dist/fulcrum.js runs version and check under deno run", async () => {
  await ensureBundle();
  const version = await fulcrum(["version"], { entry: BUNDLE });
  assert.equal(version.code, 0, version.stderr);
  assert.equal(version.stdout.trim(), `fulcrum ${VERSION}`);
  const check = await fulcrum(["check", "appliance.yaml"], { entry: BUNDLE });
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /configuration is valid/);
  const bad = await fulcrum(["check", "-c", "deno.json"], { entry: BUNDLE });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^deno.json:\d+:\d+: unknown key "name" in the top level/m);
});
