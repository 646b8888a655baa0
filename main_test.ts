import assert from "node:assert/strict";
import { type CliIo, main } from "./main.ts";
import { VERSION } from "./version.ts";

function capture(): CliIo & { out_: string[]; err_: string[] } {
  const out_: string[] = [];
  const err_: string[] = [];
  return { out_, err_, out: (t) => out_.push(t), err: (t) => err_.push(t) };
}

Deno.test("main prints the version and the command list", async () => {
  const io = capture();
  assert.equal(await main(["version"], io), 0);
  assert.deepEqual(io.out_, [`fulcrum ${VERSION}`]);
  const help = capture();
  assert.equal(await main(["--help"], help), 0);
  assert.match(help.out_[0], /^fulcrum .*\n\nUsage: fulcrum COMMAND/);
  for (const command of ["run", "check", "plan", "demo", "schema", "status", "ipvs", "version"]) {
    assert.match(help.out_[0], new RegExp(`\\n  ${command} `), command);
  }
});

Deno.test("main exits 2 on usage errors with a hint, and without a command", async () => {
  const none = capture();
  assert.equal(await main([], none), 2);
  const bad = capture();
  assert.equal(await main(["run", "--log-level", "loud"], bad), 2);
  assert.deepEqual(bad.err_, [
    'fulcrum: --log-level takes debug, info, warn or error, not "loud"',
  ]);
  const two = capture();
  assert.equal(await main(["check", "a.yaml", "b.yaml"], two), 2);
  assert.match(two.err_[0], /expected one config file/);
  const status = capture();
  assert.equal(await main(["status", "l7"], status), 2);
});

Deno.test("main run reports an invalid config with its location and starts nothing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/a.yaml`, "pools:\n  p: { servers: [{ address: x }] }\n");
    const io = capture();
    assert.equal(await main(["run", "-c", `${dir}/a.yaml`], io), 1);
    assert.deepEqual(io.err_, [
      `${dir}/a.yaml:2:29: "x" is not an address:port; write e.g. 127.0.0.1:8080 or [::1]:8080`,
      `${dir}/a.yaml: not started; fix the problems above`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
