import assert from "node:assert/strict";
import { formatDuration, parseDuration } from "./duration.ts";

Deno.test("parseDuration reads every unit and compound durations", () => {
  assert.equal(parseDuration("500ms"), 500);
  assert.equal(parseDuration("2s"), 2000);
  assert.equal(parseDuration("1.5s"), 1500);
  assert.equal(parseDuration("5m"), 300_000);
  assert.equal(parseDuration("1h"), 3_600_000);
  assert.equal(parseDuration("1m30s"), 90_000);
  assert.equal(parseDuration("250us"), 0.25);
});

Deno.test("parseDuration refuses text without a unit or with a bad unit", () => {
  for (const bad of ["2", "", "2 s", "2sec", "-1s", "s", "1x"]) {
    assert.equal(parseDuration(bad), undefined, bad);
  }
});

Deno.test("formatDuration writes the shortest unit that is exact", () => {
  assert.equal(formatDuration(0), "0s");
  assert.equal(formatDuration(300), "300ms");
  assert.equal(formatDuration(1500), "1.5s");
  assert.equal(formatDuration(120_000), "2m");
  assert.equal(formatDuration(7_200_000), "2h");
});
