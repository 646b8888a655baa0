import assert from "node:assert/strict";
import { createLogger } from "./log.ts";

const now = () => new Date(0);

Deno.test("logfmt lines quote values with spaces and drop undefined fields", () => {
  const lines: string[] = [];
  const log = createLogger({ write: (l) => lines.push(l), now, level: "info" }).child("l4");
  log.info("server down", { server: "127.0.0.1:8101", reason: "connect refused", x: undefined });
  assert.deepEqual(lines, [
    'ts=1970-01-01T00:00:00.000Z level=info component=l4 msg="server down" server=127.0.0.1:8101 reason="connect refused"',
  ]);
});

Deno.test("lines below the level are dropped and JSON format is one object a line", () => {
  const lines: string[] = [];
  const log = createLogger({ write: (l) => lines.push(l), now, level: "warn", format: "json" });
  log.info("hidden");
  log.error("shown", { code: 1 });
  assert.equal(lines.length, 1);
  assert.deepEqual(JSON.parse(lines[0]), {
    ts: "1970-01-01T00:00:00.000Z",
    level: "error",
    msg: "shown",
    code: 1,
  });
});
