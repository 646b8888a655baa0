import assert from "node:assert/strict";
import { cleanMappings, startMemoryTrim } from "./memory.ts";
import { runScriptJson } from "../tests/child_script.ts";

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

/**
 * A child that drops its startup pages, then does work that needs code of the runtime
 * it has not run since (a regex, JSON, a subprocess-free fetch of a data: URL, crypto):
 * prints its resident set before and after the release and what the work gave.
 */
const RELEASE_CHILD = `
import { releaseStartupPages } from ${JSON.stringify(MEMORY_URL)};
const rssKb = () => Deno.memoryUsage().rss / 1024;
const before = rssKb();
const released = releaseStartupPages() / 1024;
const after = rssKb();
const json = JSON.parse(JSON.stringify({ a: [1, 2, 3] })).a.length;
const match = /b(c+)d/.exec("abcccde")?.[1].length;
const text = await (await fetch("data:text/plain,fulcrum")).text();
const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)))[0];
console.log(JSON.stringify({ before, released, after, json, match, text, digest }));
`;

function runChild(
  permissions: string[],
  script = CHILD,
): Promise<Record<string, number | boolean | string>> {
  return runScriptJson(script, ["--v8-flags=--expose-gc", ...permissions]);
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

Deno.test({
  name: "the runtime's startup pages leave the resident set and the process runs on",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const result = await runChild(["--allow-read", "--allow-ffi"], RELEASE_CHILD);
    const freedMb = ((result.before as number) - (result.after as number)) / 1024;
    assert.ok(freedMb >= 4, `the resident set shrank by ${freedMb.toFixed(1)} MiB only`);
    assert.ok((result.released as number) >= 4 * 1024, JSON.stringify(result));
    assert.deepEqual(
      [result.json, result.match, result.text, result.digest],
      [3, 3, "fulcrum", 0xf5],
    );
  },
});

Deno.test({
  name: "without --allow-ffi no startup page is released",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const result = await runChild(["--allow-read"], RELEASE_CHILD);
    assert.equal(result.released, 0);
    assert.equal(result.text, "fulcrum");
  },
});

const SMAPS = `55e5a4968000-55e5a64f6000 r--p 00000000 fe:00 1441834    /opt/deno
Size:              28216 kB
Rss:               12516 kB
Private_Dirty:         0 kB
55e5a676c000-55e5aa460000 r-xp 01b8e000 fe:00 1441834    /opt/deno
Rss:               23896 kB
Private_Dirty:         0 kB
55e5aa460000-55e5aa6d2000 rw-p 05881000 fe:00 1441834    /opt/deno
Private_Dirty:      2504 kB
55e5aa6e2000-55e5aa6e3000 r--p 05b02000 fe:00 1441834    /opt/deno
Private_Dirty:         4 kB
7f0642000000-7f0642100000 r--p 00000000 fe:00 1441999    /usr/lib/libc.so.6
Private_Dirty:         0 kB
7f0643000000-7f0643100000 rw-p 00000000 00:00 0
Private_Dirty:      1024 kB
7f062bdc0000-7f062bfe6000 r-xp 035cf000 fe:00 1441834    /opt/deno
Private_Dirty:         0 kB
`;

Deno.test("clean mappings are the executable's unwritten, unwritable ones (RELRO and data stay)", () => {
  assert.deepEqual(cleanMappings(SMAPS, "/opt/deno"), [
    { start: 0x55e5a4968000n, end: 0x55e5a64f6000n },
    { start: 0x55e5a676c000n, end: 0x55e5aa460000n },
    { start: 0x7f062bdc0000n, end: 0x7f062bfe6000n },
  ]);
  assert.deepEqual(cleanMappings(SMAPS, "/usr/bin/other"), []);
});
