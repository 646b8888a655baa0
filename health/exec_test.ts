import assert from "node:assert/strict";
import { checkExec, MAX_OUTPUT } from "./exec.ts";

function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const cmdline = Deno.readTextFileSync(`/proc/${entry.name}/cmdline`);
      if (cmdline.includes(marker)) pids.push(Number(entry.name));
    } catch { /* exited meanwhile */ }
  }
  return pids;
}

Deno.test("exec exit 0 passes, exit 1 fails with the head of stderr", async () => {
  const up = await checkExec(["bash", "-c", "exit 0"], { timeout: 5000 });
  assert.equal(up.ok, true);
  assert.equal(up.reason, "exit 0");
  const down = await checkExec([
    "bash",
    "-c",
    "echo 'no route to backend' >&2; echo more >&2; exit 1",
  ], {
    timeout: 5000,
  });
  assert.equal(down.ok, false);
  assert.equal(down.reason, "exit 1: no route to backend");
  const quiet = await checkExec(["bash", "-c", "exit 1"], { timeout: 5000 });
  assert.equal(quiet.reason, "exit 1");
});

Deno.test("exec exit 2+n passes and sets weight n", async () => {
  for (const code of [2, 7, 255]) {
    const r = await checkExec(["bash", "-c", `exit ${code}`], { timeout: 5000 });
    assert.equal(r.ok, true);
    assert.equal(r.weight, code - 2);
    assert.equal(r.reason, `exit ${code}: weight ${code - 2}`);
  }
});

Deno.test("exec passes the server to the command in its environment", async () => {
  const r = await checkExec(
    ["bash", "-c", 'echo "$FULCRUM_POOL $FULCRUM_SERVER_HOST $FULCRUM_SERVER_PORT"'],
    {
      timeout: 5000,
      env: { FULCRUM_POOL: "cgi", FULCRUM_SERVER_HOST: "127.0.0.1", FULCRUM_SERVER_PORT: "8301" },
    },
  );
  assert.equal(r.stdout.trim(), "cgi 127.0.0.1 8301");
});

Deno.test("a hanging exec command is killed with its children at the timeout", async () => {
  const marker = `fulcrum-hang-${crypto.randomUUID().slice(0, 8)}`;
  const started = performance.now();
  const r = await checkExec(
    ["bash", "-c", `(exec -a ${marker} sleep 30) & exec -a ${marker} sleep 31`],
    { timeout: 300 },
  );
  assert.equal(r.ok, false);
  assert.equal(r.reason, "timeout after 300ms (killed)");
  assert.ok(performance.now() - started < 5000);
  await new Promise((res) => setTimeout(res, 100));
  assert.deepEqual(processesWith(marker), []);
});

Deno.test("exec leaves no background child behind after it exits", async () => {
  const marker = `fulcrum-bg-${crypto.randomUUID().slice(0, 8)}`;
  const r = await checkExec(["bash", "-c", `(exec -a ${marker} sleep 30) & exit 0`], {
    timeout: 5000,
  });
  assert.equal(r.ok, true);
  await new Promise((res) => setTimeout(res, 100));
  assert.deepEqual(processesWith(marker), []);
});

Deno.test("an exec command flooding stdout keeps only a bounded head and is killed", async () => {
  const r = await checkExec(["bash", "-c", "yes flood"], { timeout: 300 });
  assert.equal(r.ok, false);
  assert.equal(r.reason, "timeout after 300ms (killed)");
  assert.equal(r.stdout.length, MAX_OUTPUT);
  assert.ok(r.stdout.startsWith("flood\nflood\n"));
});

Deno.test("a missing command and a crashing one fail with a reason", async () => {
  const missing = await checkExec(["/nonexistent/fulcrum-check"], { timeout: 1000 });
  assert.deepEqual([missing.ok, missing.reason], [
    false,
    "exec failed: command not found: /nonexistent/fulcrum-check",
  ]);
  const crash = await checkExec(["bash", "-c", "kill -SEGV $$"], { timeout: 1000 });
  assert.deepEqual([crash.ok, crash.reason], [false, "killed by SIGSEGV"]);
});

Deno.test("an aborted exec check kills the command and reports stopped", async () => {
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 100);
  const r = await checkExec(["sleep", "30"], { timeout: 10_000, signal: ac.signal });
  assert.equal(r.reason, "check stopped");
});
