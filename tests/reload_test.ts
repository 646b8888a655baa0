import assert from "node:assert/strict";
import { freePort, fulcrum, spawnFulcrum, stopFulcrum, waitForHttp } from "./cli.ts";

function config(adminPort: number, weight: number): string {
  return `admin: { listen: 127.0.0.1:${adminPort} }
pools:
  html:
    check: { type: none }
    servers: [{ address: 127.0.0.1:8101, weight: ${weight} }]
vrrp: { enabled: false }
l4: { dataplane: userspace }
`;
}

async function status(base: string) {
  return await (await fetch(`${base}/api/v1/status`)).json();
}

async function until<T>(probe: () => Promise<T>, ok: (v: T) => boolean, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  let value = await probe();
  while (!ok(value) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    value = await probe();
  }
  return value;
}

Deno.test("a running appliance reloads good → bad → good on SIGHUP and keeps the good config", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/appliance.yaml`;
  const port = freePort();
  const base = `http://127.0.0.1:${port}`;
  await Deno.writeTextFile(path, config(port, 1));
  const child = spawnFulcrum(["run", "-c", path]);
  try {
    await waitForHttp(`${base}/healthz`);
    const first = await status(base);

    await Deno.writeTextFile(path, config(port, 2));
    const plan = await fulcrum(["plan", "-c", path]);
    assert.equal(plan.code, 0, plan.stderr);
    assert.deepEqual(plan.stdout.trim().split("\n"), [
      "~ pool html",
      "~ server html 127.0.0.1:8101",
    ]);
    assert.equal((await status(base)).config.hash, first.config.hash, "plan changes nothing");
    child.kill("SIGHUP");
    const second = await until(() => status(base), (s) => s.reloads.ok === 1);
    assert.notEqual(second.config.hash, first.config.hash);
    assert.match(second.reloads.last.detail, /~ server html 127.0.0.1:8101/);

    await Deno.writeTextFile(path, config(port, 2).replace("weight: 2", "weight: heavy"));
    child.kill("SIGHUP");
    const third = await until(() => status(base), (s) => s.reloads.failed === 1);
    assert.equal(third.config.hash, second.config.hash, "the running config stays");
    assert.match(third.reloads.last.detail, /invalid config, kept the running one/);

    await Deno.writeTextFile(path, config(port, 3));
    const ok = await fetch(`${base}/api/v1/reload`, { method: "POST" });
    assert.equal(ok.status, 200);
    assert.deepEqual((await ok.json()).changes, ["~ pool html", "~ server html 127.0.0.1:8101"]);
    const fourth = await status(base);
    assert.deepEqual([fourth.reloads.ok, fourth.reloads.failed], [2, 1]);
  } finally {
    const stderr = await stopFulcrum(child).finally(() => Deno.remove(dir, { recursive: true }));
    assert.match(stderr, /reload refused: the new config is invalid; the running config stays/);
    assert.match(stderr, /appliance.yaml:5:50: weight must be a whole number from 0 to 65535/);
    assert.match(stderr, /msg=stopped/);
  }
});
