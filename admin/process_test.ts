import assert from "node:assert/strict";
import { cpuSeconds, openFds, processMetrics } from "./process.ts";

Deno.test("process metrics report CPU, memory and descriptors of this process", () => {
  const cpu = cpuSeconds();
  assert.ok(cpu !== undefined && cpu >= 0);
  const fds = openFds();
  assert.ok(fds !== undefined && fds >= 3);
  const text = processMetrics(Date.parse("2026-01-01T00:00:00Z"));
  assert.match(text, /^process_start_time_seconds 1767225600$/m);
  assert.match(text, /^# TYPE process_cpu_seconds_total counter$/m);
  assert.match(text, /^process_resident_memory_bytes [1-9]\d*$/m);
});
