import assert from "node:assert/strict";
import { connectReason, formatDuration, head, timeoutReason } from "./reason.ts";

Deno.test("durations are worded as the config writes them", () => {
  assert.equal(formatDuration(500), "500ms");
  assert.equal(formatDuration(1000), "1s");
  assert.equal(formatDuration(1500), "1.5s");
  assert.equal(formatDuration(120_000), "2m");
  assert.equal(timeoutReason(1000), "timeout after 1s");
  assert.equal(timeoutReason(250, "reading response"), "timeout after 250ms reading response");
});

Deno.test("connect errors become short reasons", () => {
  assert.equal(connectReason(new Deno.errors.ConnectionRefused("x")), "connect refused");
  assert.equal(
    connectReason(new Error("Network is unreachable (os error 101)")),
    "unreachable: Network is unreachable (os error 101)",
  );
  assert.equal(connectReason(new Error("boom")), "connect failed: boom");
});

Deno.test("a head is one printable line, cut to length", () => {
  assert.equal(head("  first\nsecond"), "first");
  assert.equal(head("a\x00b"), "a?b");
  assert.equal(head("x".repeat(200), 10), "xxxxxxxxxx…");
});
