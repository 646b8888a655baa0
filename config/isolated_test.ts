import assert from "node:assert/strict";
import { formatError } from "./error.ts";
import { loadConfigIsolated } from "./isolated.ts";
import { loadConfigFile } from "./load.ts";

const localAddresses = () => ["127.0.0.1"];

Deno.test("a config loaded in the child gives the Model the loader builds in-process", async () => {
  for (const path of ["appliance.yaml", "examples/production.yaml"]) {
    const url = new URL(`../${path}`, import.meta.url).pathname;
    const isolated = await loadConfigIsolated(url, { localAddresses });
    const direct = await loadConfigFile(url, { localAddresses });
    assert.ok(isolated.ok && direct.ok, path);
    assert.deepEqual(isolated.model, direct.model, path);
  }
});

Deno.test("a bad file comes back as located errors, and a missing one as an error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(
      `${dir}/bad.yaml`,
      "pools:\n  html:\n    servers:\n      - { address: 127.0.0.1:80, wieght: 2 }\n",
    );
    const bad = await loadConfigIsolated(`${dir}/bad.yaml`, { localAddresses });
    assert.ok(!bad.ok);
    assert.deepEqual(bad.errors.map(formatError), [
      `${dir}/bad.yaml:4:34: unknown key "wieght" in a server; did you mean "weight"?`,
    ]);
    const missing = await loadConfigIsolated(`${dir}/none.yaml`, { localAddresses });
    assert.ok(!missing.ok);
    assert.match(formatError(missing.errors[0]), /none\.yaml: file not found; create it/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("text replaces the file, and the host's addresses come from the caller", async () => {
  const yaml = "pools: { p: { servers: [] } }\nl4:\n  services:\n" +
    "    - { name: x, vip: 192.0.2.5:80, pool: p }\n";
  const foreign = await loadConfigIsolated("t.yaml", { text: yaml, localAddresses });
  assert.ok(!foreign.ok);
  assert.match(formatError(foreign.errors[0]), /^t\.yaml:4:23: VIP 192\.0\.2\.5 is neither/);
  const local = await loadConfigIsolated("t.yaml", {
    text: yaml,
    localAddresses: () => ["192.0.2.5"],
  });
  assert.ok(local.ok);
  assert.equal(local.model.l4.services[0].vip?.text, "192.0.2.5:80");
  assert.equal(local.model.source.path, "t.yaml");
});

Deno.test("without --allow-run the config is loaded in-process, with the same result", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const script = `${dir}/load.ts`;
    await Deno.writeTextFile(
      script,
      `import { loadConfigIsolated } from ${
        JSON.stringify(new URL("./isolated.ts", import.meta.url).href)
      };
const result = await loadConfigIsolated(Deno.args[0], { localAddresses: () => ["127.0.0.1"] });
console.log(JSON.stringify(result.ok ? { ok: true, listeners: result.model.l7.listeners.length } : result));`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--no-prompt",
        "--allow-read",
        "--allow-env=LOG_TOKENS,LOG_STREAM",
        `--config=${new URL("../deno.json", import.meta.url).pathname}`,
        script,
        new URL("../appliance.yaml", import.meta.url).pathname,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const direct = await loadConfigFile(new URL("../appliance.yaml", import.meta.url).pathname);
    assert.ok(direct.ok);
    assert.deepEqual(JSON.parse(new TextDecoder().decode(out.stdout)), {
      ok: true,
      listeners: direct.model.l7.listeners.length,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
