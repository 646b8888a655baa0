import assert from "node:assert/strict";
import { createScheduler } from "../l4/sched/mod.ts";
import { SCHEDULER_FLAGS, SCHEDULERS } from "./schedulers.ts";

Deno.test("the scheduler names are IPVS's fourteen, each one implemented by l4", () => {
  assert.deepEqual([...SCHEDULERS].sort(), [
    "dh",
    "fo",
    "lblc",
    "lblcr",
    "lc",
    "mh",
    "nq",
    "ovf",
    "rr",
    "sed",
    "sh",
    "twos",
    "wlc",
    "wrr",
  ]);
  for (const name of SCHEDULERS) assert.ok(createScheduler(name), name);
  assert.deepEqual([...SCHEDULER_FLAGS], ["sh-fallback", "sh-port", "mh-fallback", "mh-port"]);
});
