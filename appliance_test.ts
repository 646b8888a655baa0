import assert from "node:assert/strict";
import { Appliance, ConfigInvalidError } from "./appliance.ts";
import type { ModelDiff } from "./config/diff.ts";
import type { Model } from "./config/model.ts";
import { createLogger } from "./log.ts";
import type { Subsystem } from "./subsystem.ts";
import { freePort } from "./tests/cli.ts";

/** A subsystem that records what the lifecycle asks of it, and can be told to fail. */
class Recorder implements Subsystem {
  readonly name: string;
  readonly calls: string[];
  failApply = false;
  weight = 0;
  constructor(name: string, calls: string[]) {
    this.name = name;
    this.calls = calls;
  }
  start(model: Model): Promise<void> {
    this.calls.push(`${this.name}.start`);
    this.weight = model.pools.html.servers[0].weight;
    return Promise.resolve();
  }
  apply(model: Model, diff: ModelDiff): Promise<void> {
    this.calls.push(`${this.name}.apply ${diff.pools.changed.join(",")}`);
    if (this.failApply) return Promise.reject(new Error("port 80 is in use"));
    this.weight = model.pools.html.servers[0].weight;
    return Promise.resolve();
  }
  stop(): Promise<void> {
    this.calls.push(`${this.name}.stop`);
    return Promise.resolve();
  }
  status() {
    return { state: "running" as const, weight: this.weight };
  }
}

function config(port: number, weight: number, extra = ""): string {
  return `admin: { listen: 127.0.0.1:${port} }
pools:
  html: { check: { type: none }, servers: [{ address: 127.0.0.1:8101, weight: ${weight} }] }
${extra}`;
}

async function setup(weight = 1) {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/appliance.yaml`;
  const port = freePort();
  await Deno.writeTextFile(path, config(port, weight));
  const calls: string[] = [];
  const recorders = [new Recorder("health", calls), new Recorder("l4", calls)];
  const lines: string[] = [];
  const appliance = await Appliance.start(path, {
    subsystems: () => recorders,
    log: createLogger({ write: (l) => lines.push(l), level: "debug" }),
  });
  return { dir, path, port, calls, recorders, appliance, lines };
}

Deno.test("subsystems start in order and stop in reverse", async () => {
  const { appliance, calls, dir } = await setup();
  await appliance.stop();
  await appliance.stop();
  assert.deepEqual(calls, ["health.start", "l4.start", "l4.stop", "health.stop"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a reload applies the diff; an invalid file keeps the running config", async () => {
  const { appliance, calls, recorders, path, port, dir } = await setup(1);
  try {
    assert.deepEqual((await appliance.reload()).ok, true); // unchanged file
    await Deno.writeTextFile(path, config(port, 5));
    const good = await appliance.reload();
    assert.deepEqual(good, {
      ok: true,
      changes: ["~ pool html", "~ server html 127.0.0.1:8101"],
      hash: appliance.model.source.hash,
    });
    assert.equal(recorders[1].weight, 5);

    await Deno.writeTextFile(path, config(port, 9).replace("servers:", "servrs:"));
    const bad = await appliance.reload();
    assert.equal(bad.ok, false);
    if (!bad.ok) {
      assert.equal(bad.stage, "config");
      assert.match(
        bad.errors[0],
        /appliance.yaml:3:\d+: unknown key "servrs" in a pool; did you mean "servers"\?/,
      );
    }
    assert.equal(appliance.model.pools.html.servers[0].weight, 5);
    assert.equal(recorders[1].weight, 5);
    assert.deepEqual(appliance.reloads.ok, 2);
    assert.deepEqual(appliance.reloads.failed, 1);
    assert.deepEqual(calls.filter((c) => c.includes("apply")), [
      "health.apply html",
      "l4.apply html",
    ]);
  } finally {
    await appliance.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a subsystem that cannot apply rolls every subsystem back", async () => {
  const { appliance, calls, recorders, path, port, dir } = await setup(1);
  try {
    recorders[1].failApply = true;
    await Deno.writeTextFile(path, config(port, 7));
    const result = await appliance.reload();
    assert.deepEqual(result, {
      ok: false,
      stage: "apply",
      errors: ["l4 could not apply the new config: port 80 is in use"],
    });
    assert.equal(appliance.model.pools.html.servers[0].weight, 1);
    assert.equal(recorders[0].weight, 1, "health was rolled back to weight 1");
    assert.deepEqual(calls.slice(2), [
      "health.apply html",
      "l4.apply html",
      "l4.apply html",
      "health.apply html",
    ]);
  } finally {
    await appliance.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an invalid file at start throws every located error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/a.yaml`, "pools:\n  html: { servers: [{ address: nope }] }\n");
    await assert.rejects(
      Appliance.start(`${dir}/a.yaml`, { subsystems: () => [] }),
      (error: unknown) =>
        error instanceof ConfigInvalidError && error.errors.length === 1 &&
        error.errors[0].line === 2,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a failing subsystem start stops the ones already started", async () => {
  const dir = await Deno.makeTempDir();
  const calls: string[] = [];
  try {
    await Deno.writeTextFile(`${dir}/a.yaml`, config(freePort(), 1));
    const broken = new Recorder("l7", calls);
    broken.start = () => Promise.reject(new Error("127.0.0.1:8080 is in use"));
    await assert.rejects(
      Appliance.start(`${dir}/a.yaml`, {
        subsystems: () => [new Recorder("health", calls), broken],
        log: createLogger({ write: () => {} }),
      }),
      /l7 failed to start: 127.0.0.1:8080 is in use/,
    );
    assert.deepEqual(calls, ["health.start", "health.stop"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
