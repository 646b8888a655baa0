import assert from "node:assert/strict";
import { startMemoryTrim } from "./memory.ts";

const MEMORY_URL = new URL("./memory.ts", import.meta.url).href;

/**
 * A child that fills the C heap with 64 MiB of 16 KiB buffers (each followed by a small
 * one that stays alive, so the freed space sits in holes glibc cannot give back on its
 * own), frees them, then trims: prints its resident set before and after.
 */
const CHILD = `
import { startMemoryTrim } from ${JSON.stringify(MEMORY_URL)};
const rssKb = () => Deno.memoryUsage().rss / 1024;
let big = [];
const keep = [];
for (let i = 0; i < 4096; i++) {
  big.push(new Uint8Array(16384).fill(1));
  keep.push(new Uint8Array(256).fill(2));
}
big = [];
for (let i = 0; i < 3; i++) {
  globalThis.gc();
  await new Promise((r) => setTimeout(r, 100));
}
const before = rssKb();
const trim = startMemoryTrim({ intervalMs: 10 });
while (trim.active && trim.trims < 2) await new Promise((r) => setTimeout(r, 10));
trim.stop();
console.log(JSON.stringify({ active: trim.active, released: trim.released, before, after: rssKb(), kept: keep.length }));
`;

async function runChild(permissions: string[]): Promise<Record<string, number | boolean>> {
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  try {
    await Deno.writeTextFile(file, CHILD);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-lock", "--v8-flags=--expose-gc", ...permissions, file],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.ok(out.success, `child failed: ${new TextDecoder().decode(out.stderr)}`);
    return JSON.parse(text.trim().split("\n").at(-1)!);
  } finally {
    await Deno.remove(file);
  }
}

Deno.test({
  name: "freed C heap memory goes back to the kernel after a trim",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const result = await runChild(["--allow-read", "--allow-ffi"]);
    assert.equal(result.active, true);
    assert.ok(
      (result.released as number) >= 1,
      `no trim released memory: ${JSON.stringify(result)}`,
    );
    const freedMb = ((result.before as number) - (result.after as number)) / 1024;
    assert.ok(freedMb >= 16, `only ${freedMb.toFixed(1)} MiB of 64 MiB went back`);
  },
});

Deno.test({
  name: "without --allow-ffi the trim is inactive and the process still runs",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const result = await runChild(["--allow-read"]);
    assert.equal(result.active, false);
    assert.equal(result.released, 0);
  },
});

Deno.test("a trim interval under 10 ms is refused with the limit in the message", () => {
  assert.throws(() => startMemoryTrim({ intervalMs: 1 }), /at least 10 ms, not 1/);
});

Deno.test("a stopped trim does no more trims", async () => {
  const trim = startMemoryTrim({ intervalMs: 10 });
  while (trim.active && trim.trims < 1) await new Promise((r) => setTimeout(r, 10));
  trim.stop();
  const done = trim.trims;
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(trim.trims, done);
});
