import assert from "node:assert/strict";
import { createLogger } from "../log.ts";
import { NotifyQueue } from "./notify.ts";

Deno.test("notify hooks run one at a time, in order, with state instance priority appended", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const log = `${dir}/log`;
    const script = `${dir}/hook.sh`;
    await Deno.writeTextFile(
      script,
      `#!/bin/sh\necho "start $1 $2 $3" >> ${log}\nsleep 0.1\necho "end $1" >> ${log}\n`,
    );
    await Deno.chmod(script, 0o755);
    const q = new NotifyQueue(createLogger({ write: () => {} }));
    void q.enqueue([script], ["BACKUP", "vi", "100"]);
    void q.enqueue([script], ["MASTER", "vi", "100"]);
    void q.enqueue(["/nonexistent/hook"], ["X", "vi", "1"]);
    void q.enqueue([script], ["FAULT", "vi", "100"]);
    assert.equal(q.pending, 4);
    await q.idle();
    assert.equal(q.pending, 0);
    const lines = (await Deno.readTextFile(log)).trim().split("\n");
    assert.deepEqual(lines, [
      "start BACKUP vi 100",
      "end BACKUP",
      "start MASTER vi 100",
      "end MASTER",
      "start FAULT vi 100",
      "end FAULT",
    ]);
    assert.deepEqual(q.recent.map((r) => r.code), [0, 0, -1, 0]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a hook that hangs is killed after the timeout and the queue goes on", async () => {
  const q = new NotifyQueue(createLogger({ write: () => {} }), { timeoutMs: 200 });
  const t0 = performance.now();
  void q.enqueue(["sleep"], ["30"]);
  void q.enqueue(["true"], []);
  await q.idle();
  assert.ok(performance.now() - t0 < 5000);
  assert.equal(q.recent.at(-1)?.code, 0);
  assert.notEqual(q.recent[0].code, 0);
});
