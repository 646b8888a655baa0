import assert from "node:assert/strict";
import type { ResolvedCheck } from "../config/model.ts";
import { createProber, probe } from "./probe.ts";

const timing = {
  interval: 1000,
  timeout: 500,
  rise: 1,
  fall: 1,
  fastinter: 1000,
  downinter: 1000,
  assume: "up" as const,
  jitter: 0,
};

Deno.test("probe connects to the check port when one is set", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const accepting = (async () => {
    for await (const conn of listener) conn.close();
  })();
  try {
    const target = { pool: "web", host: "127.0.0.1", port: 9 };
    const direct = { type: "tcp", ...timing } as ResolvedCheck;
    assert.equal((await probe(target, direct)).reason, "connect refused");
    const viaPort = { type: "tcp", port, ...timing } as ResolvedCheck;
    assert.deepEqual(await probe(target, viaPort), { ok: true, reason: "connected" });
  } finally {
    listener.close();
    await accepting.catch(() => {});
  }
});

Deno.test("probe gives exec commands the pool, host and port; none always passes", async () => {
  const target = { pool: "cgi", host: "127.0.0.1", port: 8301 };
  const exec = {
    type: "exec",
    command: [
      "bash",
      "-c",
      'echo "$FULCRUM_POOL/$FULCRUM_SERVER_HOST/$FULCRUM_SERVER_PORT" >&2; exit 1',
    ],
    ...timing,
  } as ResolvedCheck;
  assert.equal((await probe(target, exec)).reason, "exit 1: cgi/127.0.0.1/8301");
  const none = { type: "none", ...timing } as ResolvedCheck;
  assert.deepEqual(await probe(target, none), { ok: true, reason: "no check" });
});

Deno.test("a prober runs at most maxExec exec checks at once; tcp checks do not wait", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fulcrum-exec-" });
  const { probe: run, close } = createProber({ maxExec: 2 });
  try {
    const exec = {
      type: "exec",
      command: [
        "bash",
        "-c",
        `touch ${dir}/$$; n=$(ls ${dir} | wc -l); sleep 0.2; rm ${dir}/$$; echo $n >&2; exit 1`,
      ],
      ...timing,
      timeout: 5000,
    } as ResolvedCheck;
    const target = { pool: "cgi", host: "127.0.0.1", port: 9 };
    const execs = Array.from({ length: 6 }, () => run(target, exec, {}));
    const tcp = await run(target, { type: "tcp", ...timing } as ResolvedCheck, {});
    assert.equal(tcp.reason, "connect refused");
    const counts = (await Promise.all(execs)).map((r) => Number(r.reason.replace("exit 1: ", "")));
    assert.equal(counts.length, 6);
    assert.ok(Math.max(...counts) <= 2, `ran together: ${counts}`);
    assert.ok(Math.min(...counts) >= 1);
  } finally {
    close();
    await Deno.remove(dir, { recursive: true });
  }
});
