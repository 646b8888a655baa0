/**
 * Runs a TypeScript source in a child `deno run` with chosen flags: for tests of what
 * a process can do under a given set of permissions.
 * @module
 */
import assert from "node:assert/strict";

/**
 * Runs `source` in a child with `flags` (permissions, `--v8-flags=…`) and returns the
 * JSON of the last line it printed; fails with the child's stderr when it fails.
 */
export async function runScriptJson<T = Record<string, unknown>>(
  source: string,
  flags: string[],
): Promise<T> {
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(file, source);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-lock", ...flags, file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.ok(out.success, `child failed: ${new TextDecoder().decode(out.stderr)}`);
    return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
  } finally {
    await Deno.remove(file);
  }
}
