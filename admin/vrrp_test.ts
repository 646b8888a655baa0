import assert from "node:assert/strict";
import { Hono } from "hono";
import type { AdminEnv } from "../subsystem.ts";
import type { InstanceStatus } from "../vrrp/instance.ts";
import { REJECT_REASONS, type RejectReason } from "../vrrp/packet.ts";
import { mountVrrpRoutes, type VrrpInstanceHandle, vrrpMetrics } from "./vrrp.ts";

/** An instance handle whose state the test controls (the routes are what is tested). */
class Handle implements VrrpInstanceHandle {
  readonly name: string;
  state: InstanceStatus["state"] = "master";
  calls: string[] = [];
  constructor(name: string) {
    this.name = name;
  }
  stepdown(): void {
    this.calls.push("stepdown");
    this.state = "backup";
  }
  rejoin(): void {
    this.calls.push("rejoin");
  }
  status(): InstanceStatus {
    const errors = Object.fromEntries(
      REJECT_REASONS.map((r) => [r, r === "ttl" ? 3 : 0]),
    ) as Record<
      RejectReason,
      number
    >;
    return {
      name: this.name,
      interface: "eth0",
      vrid: 51,
      version: 3,
      state: this.state,
      priority: 90,
      configuredPriority: 100,
      master: "10.0.0.1",
      masterPriority: 90,
      primary: "10.0.0.1",
      vips: ["10.0.0.100/24"],
      held: false,
      faults: [],
      lastTransition: null,
      transitions: 2,
      advertsIn: 5,
      advertsOut: 7,
      intervalMismatches: 0,
      errors,
      timerLatenessMs: { last: 1, max: 2, over10ms: 0 },
      notifyPending: 0,
    };
  }
  lateness() {
    return { buckets: [1, 2, 2, 2, 2, 2, 2], sum: 0.004, count: 2 };
  }
}

function setup() {
  const h = new Handle("vi");
  const app = new Hono<AdminEnv>();
  mountVrrpRoutes(app, { instances: () => new Map([["vi", h]]), list: () => [h.status()] });
  return { h, app };
}

Deno.test("GET /api/v1/vrrp lists every instance's status", async () => {
  const { app } = setup();
  const res = await app.request("/api/v1/vrrp");
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.instances[0].name, "vi");
  assert.equal(body.instances[0].errors.ttl, 3);
});

Deno.test("POST stepdown and rejoin reach the instance; an unknown one is a 404 naming the running ones", async () => {
  const { h, app } = setup();
  const res = await app.request("/api/v1/vrrp/vi/stepdown", { method: "POST" });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).instance.state, "backup");
  await app.request("/api/v1/vrrp/vi/rejoin", { method: "POST" });
  assert.deepEqual(h.calls, ["stepdown", "rejoin"]);
  const missing = await app.request("/api/v1/vrrp/nope/rejoin", { method: "POST" });
  assert.equal(missing.status, 404);
  const err = await missing.json();
  assert.equal(err.error.code, "not_found");
  assert.match(err.error.message, /running instances: vi/);
});

Deno.test("metrics expose state, priority, adverts, rejects by reason and the lateness histogram", () => {
  const text = vrrpMetrics([new Handle("vi")]);
  assert.match(text, /# TYPE fulcrum_vrrp_state gauge/);
  assert.match(text, /fulcrum_vrrp_state\{instance="vi",state="master"\} 1/);
  assert.match(text, /fulcrum_vrrp_state\{instance="vi",state="backup"\} 0/);
  assert.match(text, /fulcrum_vrrp_priority\{instance="vi"\} 90/);
  assert.match(text, /fulcrum_vrrp_adverts_sent_total\{instance="vi"\} 7/);
  assert.match(text, /fulcrum_vrrp_rejected_total\{instance="vi",reason="ttl"\} 3/);
  assert.match(text, /fulcrum_vrrp_timer_lateness_seconds_bucket\{instance="vi",le="\+Inf"\} 2/);
  assert.match(text, /fulcrum_vrrp_timer_lateness_seconds_count\{instance="vi"\} 2/);
});
