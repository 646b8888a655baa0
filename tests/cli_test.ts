import assert from "node:assert/strict";
import Ajv from "ajv";
import { parse } from "yaml";
import { fulcrum, ROOT } from "./cli.ts";

Deno.test("fulcrum check accepts the shipped appliance.yaml", async () => {
  const r = await fulcrum(["check", "appliance.yaml"]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /appliance.yaml: configuration is valid \(3 pools, 6 servers/);
});

Deno.test("fulcrum check prints every problem as FILE:LINE:COL and exits 1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/bad.yaml`;
    await Deno.writeTextFile(
      file,
      [
        "pools:",
        "  html:",
        "    servers:",
        "      - { address: 127.0.0.1:8101, wieght: 2 }",
        "l7:",
        "  listeners:",
        "    - name: web",
        "      listen: 127.0.0.1:8080",
        "      rules: [{ pool: html }]",
        "      timeouts: { idle: 30 }",
        "",
      ].join("\n"),
    );
    const r = await fulcrum(["check", "-c", file]);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, "");
    assert.deepEqual(r.stderr.trim().split("\n"), [
      `${file}:4:36: unknown key "wieght" in a server; did you mean "weight"?`,
      `${file}:10:25: duration 30 has no unit; write it like 30s or 30ms`,
      `${file}: 2 problems; nothing was changed`,
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fulcrum check names a missing file and usage errors exit 2", async () => {
  const missing = await fulcrum(["check", "/nonexistent/appliance.yaml"]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /^\/nonexistent\/appliance.yaml: file not found/);
  const usage = await fulcrum(["check", "--bogus"]);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /fulcrum: Unknown option '--bogus'/);
  const unknown = await fulcrum(["frobnicate"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
});

Deno.test("every command answers --help", async () => {
  for (const command of ["run", "check", "plan", "demo", "schema", "status", "ipvs"]) {
    const r = await fulcrum([command, "--help"]);
    assert.equal(r.code, 0, `${command}: ${r.stderr}`);
    assert.match(r.stdout, /^Usage: fulcrum/, command);
  }
});

Deno.test("fulcrum schema prints a JSON Schema that validates the shipped configs", async () => {
  const r = await fulcrum(["schema"]);
  assert.equal(r.code, 0, r.stderr);
  const schema = JSON.parse(r.stdout);
  delete schema.$schema;
  const validate = new Ajv.default({ strict: false, allErrors: true }).compile(schema);
  for (const file of ["appliance.yaml", "examples/production.yaml"]) {
    const doc = parse(await Deno.readTextFile(`${ROOT}${file}`));
    assert.equal(validate(doc), true, `${file}: ${JSON.stringify(validate.errors)}`);
  }
  assert.equal(validate({ pools: { p: { servers: [], bogus: 1 } } }), false);
  const committed = JSON.parse(await Deno.readTextFile(`${ROOT}appliance.schema.json`));
  assert.deepEqual(
    committed,
    JSON.parse(r.stdout),
    "appliance.schema.json is stale: run fulcrum schema > appliance.schema.json",
  );
});

Deno.test("fulcrum plan --from shows what a reload would change", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const before = "pools:\n  html: { servers: [{ address: 127.0.0.1:8101 }] }\n";
    const after =
      "pools:\n  html: { servers: [{ address: 127.0.0.1:8101, weight: 3 }, { address: 127.0.0.1:8102 }] }\n";
    await Deno.writeTextFile(`${dir}/a.yaml`, before);
    await Deno.writeTextFile(`${dir}/b.yaml`, after);
    const r = await fulcrum(["plan", "-c", `${dir}/b.yaml`, "--from", `${dir}/a.yaml`]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), [
      "~ pool html",
      "+ server html 127.0.0.1:8102",
      "~ server html 127.0.0.1:8101",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
