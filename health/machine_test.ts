import assert from "node:assert/strict";
import {
  type CheckOutcome,
  effectiveWeight,
  type HealthState,
  initialHealth,
  isTransitioning,
  nextRampAt,
  observe,
} from "./machine.ts";

const pass: CheckOutcome = { ok: true, reason: "status 200" };
const fail: CheckOutcome = { ok: false, reason: "connect refused" };

function feed(
  state: HealthState,
  outcomes: CheckOutcome[],
  options: { rise: number; fall: number; start?: number; step?: number },
): { state: HealthState; transitions: string[] } {
  const transitions: string[] = [];
  let now = options.start ?? 0;
  for (const outcome of outcomes) {
    now += options.step ?? 1000;
    const r = observe(state, outcome, { rise: options.rise, fall: options.fall, now });
    state = r.state;
    if (r.transition) transitions.push(`${r.transition}@${now}:${r.state.reason}`);
  }
  return { state, transitions };
}

Deno.test("an up server goes down only after fall failures in a row", () => {
  const { state, transitions } = feed(
    initialHealth("up", 0),
    [fail, fail, pass, fail, fail, fail, fail],
    { rise: 2, fall: 3 },
  );
  assert.deepEqual(transitions, ["down@6000:connect refused"]);
  assert.equal(state.health, "down");
  assert.equal(state.since, 6000);
});

Deno.test("a down server comes up only after rise passes in a row", () => {
  const { state, transitions } = feed(
    initialHealth("down", 0),
    [pass, fail, pass, pass],
    { rise: 2, fall: 3 },
  );
  assert.deepEqual(transitions, ["up@4000:status 200"]);
  assert.equal(state.recoveredAt, 4000);
});

Deno.test("assume down needs rise passes before the first up; assume up starts up", () => {
  const down = initialHealth("down", 5);
  assert.equal(down.health, "down");
  assert.equal(down.reason, "assumed down");
  const up = feed(initialHealth("up", 0), [pass, pass, pass], { rise: 3, fall: 1 });
  assert.deepEqual(up.transitions, []);
  const r = feed(down, [pass, pass, pass], { rise: 3, fall: 1 });
  assert.deepEqual(r.transitions, ["up@3000:status 200"]);
});

Deno.test("rise 1 and fall 1 flip on every differing outcome", () => {
  const { transitions } = feed(initialHealth("up", 0), [fail, pass, pass, fail], {
    rise: 1,
    fall: 1,
  });
  assert.deepEqual(transitions.map((t) => t.split("@")[0]), ["down", "up", "down"]);
});

Deno.test("a server counting toward a flip is transitioning", () => {
  let s = initialHealth("up", 0);
  assert.equal(isTransitioning(s), false);
  s = observe(s, fail, { rise: 2, fall: 3, now: 1 }).state;
  assert.equal(isTransitioning(s), true);
  s = observe(s, pass, { rise: 2, fall: 3, now: 2 }).state;
  assert.equal(isTransitioning(s), false);
});

Deno.test("effective weight is 0 when down, disabled or draining", () => {
  const base = { configured: 5, health: "up" as const, admin: "enabled" as const };
  const opts = { now: 0, slowstart: 0 };
  assert.equal(effectiveWeight(base, opts), 5);
  assert.equal(effectiveWeight({ ...base, health: "down" }, opts), 0);
  assert.equal(effectiveWeight({ ...base, admin: "disabled" }, opts), 0);
  assert.equal(effectiveWeight({ ...base, admin: "drain" }, opts), 0);
});

Deno.test("an admin override wins over a dynamic exec weight, which wins over the config", () => {
  const base = { configured: 5, health: "up" as const, admin: "enabled" as const };
  const opts = { now: 0, slowstart: 0 };
  assert.equal(effectiveWeight({ ...base, dynamic: 7 }, opts), 7);
  assert.equal(effectiveWeight({ ...base, dynamic: 7, override: 2 }, opts), 2);
  assert.equal(effectiveWeight({ ...base, override: 0 }, opts), 0);
});

Deno.test("slow start ramps the weight after a recovery, never below 1", () => {
  const inputs = {
    configured: 100,
    health: "up" as const,
    admin: "enabled" as const,
    recoveredAt: 10_000,
  };
  const at = (now: number) => effectiveWeight(inputs, { now, slowstart: 10_000 });
  assert.equal(at(10_000), 1);
  assert.equal(at(12_500), 25);
  assert.equal(at(15_000), 50);
  assert.equal(at(19_999), 100);
  assert.equal(at(20_000), 100);
  assert.equal(at(30_000), 100);
  // Never recovered (up since start): full weight at once.
  assert.equal(
    effectiveWeight({ ...inputs, recoveredAt: undefined }, { now: 10_000, slowstart: 10_000 }),
    100,
  );
});

Deno.test("the ramp is recomputed in steps until slow start ends", () => {
  const steps: number[] = [];
  let now = 0;
  for (let i = 0; i < 100; i++) {
    const next = nextRampAt(0, { now, slowstart: 4000 });
    if (next === undefined) break;
    steps.push(next);
    now = next;
  }
  assert.equal(steps.length, 20);
  assert.equal(steps[0], 200);
  assert.equal(steps.at(-1), 4000);
  assert.equal(nextRampAt(undefined, { now: 0, slowstart: 4000 }), undefined);
  assert.equal(nextRampAt(0, { now: 0, slowstart: 0 }), undefined);
});
