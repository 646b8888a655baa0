/**
 * Boots the IPVS VM once (tests/ipvs_vm.sh) and runs tests/ipvs_inside.ts there with
 * this Deno and a copy of its npm cache. Fails when any inside test fails, printing
 * the inside output. Skips (with the reason) only where qemu cannot run at all.
 * @module
 */
import assert from "node:assert/strict";

const root = new URL("..", import.meta.url).pathname;

function qemuUsable(): string | undefined {
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") return "not Linux on x86_64";
  if (Deno.uid?.() !== 0) return "not root (the VM runner installs packages and needs /boot)";
  return undefined;
}

function denoDir(): string {
  const env = Deno.env.get("DENO_DIR");
  if (env) return env;
  const xdg = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/root"}/.cache`;
  return `${xdg}/deno`;
}

const skip = qemuUsable();
if (skip) console.log(`skipping the IPVS VM tests: ${skip}`);

Deno.test({
  name: "inside a VM with ip_vs, Fulcrum's IPVS programmer passes its kernel suite",
  ignore: skip !== undefined,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const out = await new Deno.Command("bash", {
      args: [
        `${root}tests/ipvs_vm.sh`,
        "--",
        "sh",
        "-c",
        'NO_COLOR=1 "$DENO" test -A --no-check --frozen tests/ipvs_inside.ts 2>&1',
      ],
      cwd: root,
      env: {
        IPVS_VM_DENO: Deno.execPath(),
        IPVS_VM_DENO_DIR: denoDir(),
        NO_COLOR: "1",
        IPVS_VM_TIMEOUT: "280",
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    console.log(stdout);
    if (stderr.trim()) console.log(stderr);
    assert.equal(out.code, 0, "the inside suite failed; see its output above");
    assert.match(stdout, /ok \| \d+ passed \| 0 failed/);
  },
});
