import assert from "node:assert/strict";
import {
  type Action,
  initial,
  type MachineConfig,
  type MachineEvent,
  type MachineState,
  masterDownMs,
  nextDeadline,
  skewMs,
  step,
} from "./machine.ts";

const BASE: MachineConfig = {
  version: 3,
  priority: 100,
  intervalMs: 1000,
  preempt: true,
  preemptDelayMs: 0,
  primary: "10.0.0.2",
};

/** A fake clock driving one machine; records every action. */
class Rig {
  state: MachineState;
  now = 0;
  actions: Action[] = [];
  constructor(config: Partial<MachineConfig> = {}) {
    this.state = initial({ ...BASE, ...config }, 0);
  }
  feed(event: MachineEvent, at = this.now): readonly Action[] {
    this.now = at;
    const r = step(this.state, event, at);
    this.state = r.state;
    this.actions.push(...r.actions);
    return r.actions;
  }
  /** Advances the clock, firing due timers like the shell does. */
  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const due = nextDeadline(this.state);
      if (due === undefined || due > end) break;
      this.feed({ kind: "timer" }, Math.max(this.now, due));
    }
    this.now = end;
  }
  kinds(actions: readonly Action[]): string[] {
    return actions.map((a) =>
      a.kind === "send" ? `send${a.priority}` : a.kind === "role" ? `role:${a.role}` : a.kind
    );
  }
}

function advert(from: string, priority: number, intervalMs = 1000): MachineEvent {
  return { kind: "advert", from, priority, intervalMs };
}

Deno.test("timing formulas follow RFC 3768 (v2, seconds) and RFC 5798 (v3, master's interval)", () => {
  assert.equal(skewMs(100, { version: 2, intervalMs: 3000 }), (156 * 1000) / 256);
  assert.equal(masterDownMs(100, { version: 2, intervalMs: 3000 }), 9000 + (156 * 1000) / 256);
  assert.equal(skewMs(100, { version: 3, intervalMs: 100 }), (156 * 100) / 256);
  assert.equal(masterDownMs(254, { version: 3, intervalMs: 1000 }), 3000 + 2000 / 256);
});

Deno.test("Initialize → Master at startup when priority is 255 (address owner)", () => {
  const r = new Rig({ priority: 255 });
  const acts = r.feed({ kind: "startup" });
  assert.deepEqual(r.kinds(acts), ["send255", "addVips", "garp", "role:master"]);
  assert.equal(r.state.role, "master");
  assert.equal(nextDeadline(r.state), 1000);
});

Deno.test("Initialize → Backup at startup, master declared down after Master_Down_Interval", () => {
  const r = new Rig();
  assert.deepEqual(r.kinds(r.feed({ kind: "startup" })), ["role:backup"]);
  const mdi = masterDownMs(100, { version: 3, intervalMs: 1000 });
  assert.equal(nextDeadline(r.state), mdi);
  r.advance(mdi - 1);
  assert.equal(r.state.role, "backup");
  r.advance(1);
  assert.equal(r.state.role, "master");
  assert.deepEqual(r.kinds(r.actions.slice(-4)), ["send100", "addVips", "garp", "role:master"]);
});

Deno.test("Backup: an advert from a higher master resets Master_Down_Timer and teaches its interval (v3)", () => {
  const r = new Rig();
  r.feed({ kind: "startup" });
  r.feed(advert("10.0.0.9", 200, 100), 500);
  assert.equal(r.state.masterIntervalMs, 100);
  assert.equal(r.state.downAt, 500 + masterDownMs(100, { version: 3, intervalMs: 100 }));
  assert.equal(r.state.master, "10.0.0.9");
  r.advance(300);
  r.feed(advert("10.0.0.9", 200, 100));
  r.advance(300);
  assert.equal(r.state.role, "backup");
  r.advance(100);
  assert.equal(r.state.role, "master");
});

Deno.test("Backup in v2 keeps its own interval whatever the master advertises", () => {
  const r = new Rig({ version: 2 });
  r.feed({ kind: "startup" });
  r.feed(advert("10.0.0.9", 200, 3000), 10);
  assert.equal(r.state.masterIntervalMs, 1000);
  assert.equal(r.state.downAt, 10 + masterDownMs(100, { version: 2, intervalMs: 1000 }));
});

Deno.test("Backup: a priority-0 advert makes it master after Skew_Time", () => {
  const r = new Rig();
  r.feed({ kind: "startup" });
  r.feed(advert("10.0.0.9", 200), 100);
  r.feed(advert("10.0.0.9", 0), 900);
  assert.equal(r.state.downAt, 900 + skewMs(100, { version: 3, intervalMs: 1000 }));
  r.advance(skewMs(100, { version: 3, intervalMs: 1000 }));
  assert.equal(r.state.role, "master");
  assert.match(r.state.reason, /released/);
});

Deno.test("Backup with preempt ignores a lower-priority master and takes over", () => {
  const r = new Rig();
  r.feed({ kind: "startup" });
  for (let t = 0; t < 5000; t += 1000) {
    r.advance(t - r.now);
    if (r.state.role === "backup") r.feed(advert("10.0.0.9", 50));
  }
  assert.equal(r.state.role, "master");
});

Deno.test("Backup with nopreempt keeps following a lower-priority master", () => {
  const r = new Rig({ preempt: false });
  r.feed({ kind: "startup" });
  for (let t = 0; t < 10_000; t += 1000) {
    r.advance(t - r.now);
    r.feed(advert("10.0.0.9", 50));
  }
  assert.equal(r.state.role, "backup");
  assert.equal(r.state.master, "10.0.0.9");
});

Deno.test("preempt_delay: a lower master is followed until the delay has passed", () => {
  const r = new Rig({ preemptDelayMs: 5000 });
  r.feed({ kind: "startup" });
  for (let t = 0; t <= 12_000; t += 1000) {
    r.advance(t - r.now);
    if (r.state.role === "backup") r.feed(advert("10.0.0.9", 50));
    if (t < 5000) assert.equal(r.state.role, "backup", `at ${t}`);
  }
  assert.equal(r.state.role, "master");
  const became = r.state.since;
  assert.ok(
    became >= 5000 && became <= 5000 + masterDownMs(100, { version: 3, intervalMs: 1000 }) + 1,
    `${became}`,
  );
});

Deno.test("Backup → Initialize on shutdown, no advert sent", () => {
  const r = new Rig();
  r.feed({ kind: "startup" });
  assert.deepEqual(r.kinds(r.feed({ kind: "shutdown" })), ["role:init"]);
  assert.equal(nextDeadline(r.state), undefined);
});

Deno.test("Master sends an advert every Advertisement_Interval", () => {
  const r = new Rig({ priority: 255 });
  r.feed({ kind: "startup" });
  r.actions = [];
  r.advance(3500);
  assert.deepEqual(r.kinds(r.actions), ["send255", "send255", "send255"]);
});

Deno.test("Master → Initialize on shutdown sends priority 0 and removes the VIPs", () => {
  const r = new Rig({ priority: 255 });
  r.feed({ kind: "startup" });
  assert.deepEqual(r.kinds(r.feed({ kind: "shutdown" })), ["send0", "removeVips", "role:init"]);
});

Deno.test("Master answers a priority-0 advert with an advert at once", () => {
  const r = new Rig({ priority: 255 });
  r.feed({ kind: "startup" });
  assert.deepEqual(r.kinds(r.feed(advert("10.0.0.9", 0), 300)), ["send255"]);
  assert.equal(r.state.advertAt, 1300);
});

Deno.test("Master → Backup on a higher-priority advert", () => {
  const r = new Rig();
  r.feed({ kind: "startup" });
  r.advance(5000);
  assert.equal(r.state.role, "master");
  const acts = r.feed(advert("10.0.0.1", 150, 200));
  assert.deepEqual(r.kinds(acts), ["removeVips", "role:backup"]);
  assert.equal(r.state.masterIntervalMs, 200);
  assert.equal(r.state.master, "10.0.0.1");
});

Deno.test("equal priority: the higher primary address wins, the lower yields", () => {
  const low = new Rig({ primary: "10.0.0.2" });
  low.feed({ kind: "startup" });
  low.advance(5000);
  low.feed(advert("10.0.0.3", 100));
  assert.equal(low.state.role, "backup");

  const high = new Rig({ primary: "10.0.0.2" });
  high.feed({ kind: "startup" });
  high.advance(5000);
  assert.deepEqual(high.kinds(high.feed(advert("10.0.0.1", 100))), ["send100", "garp"]);
  assert.equal(high.state.role, "master");
});

Deno.test("Master stays master on a lower-priority advert, asserts itself and re-announces the VIPs", () => {
  const r = new Rig();
  r.feed({ kind: "startup" });
  r.advance(5000);
  assert.deepEqual(r.kinds(r.feed(advert("10.0.0.200", 99))), ["send100", "garp"]);
  assert.equal(r.state.role, "master");
});

Deno.test("fault: master releases and goes FAULT, recovery goes back through backup", () => {
  const r = new Rig();
  r.feed({ kind: "startup" });
  r.advance(5000);
  const acts = r.feed({ kind: "fault", what: "interface eth1", on: true });
  assert.deepEqual(r.kinds(acts), ["send0", "removeVips", "role:fault"]);
  assert.equal(nextDeadline(r.state), undefined);
  assert.deepEqual(r.kinds(r.feed(advert("10.0.0.9", 50))), []);
  r.feed({ kind: "fault", what: "pool web", on: true });
  r.feed({ kind: "fault", what: "interface eth1", on: false });
  assert.equal(r.state.role, "fault");
  assert.deepEqual(r.kinds(r.feed({ kind: "fault", what: "pool web", on: false })), [
    "role:backup",
  ]);
});

Deno.test("a fault present at startup keeps the instance in FAULT", () => {
  const r = new Rig({ priority: 255 });
  r.feed({ kind: "fault", what: "pool web", on: true });
  assert.deepEqual(r.kinds(r.feed({ kind: "startup" })), ["role:fault"]);
});

Deno.test("tracked weights change the priority in adverts and the skew of the down timer", () => {
  const r = new Rig();
  r.feed({ kind: "startup" });
  r.feed(advert("10.0.0.9", 150), 0);
  const before = r.state.downAt!;
  r.feed({ kind: "priority", priority: 200 }, 10);
  assert.equal(r.state.priority, 200);
  assert.equal(
    r.state.downAt,
    before - masterDownMs(100, { version: 3, intervalMs: 1000 }) +
      masterDownMs(200, { version: 3, intervalMs: 1000 }),
  );
  r.advance(5000);
  assert.equal(r.state.role, "master");
  assert.deepEqual(r.kinds(r.feed({ kind: "priority", priority: 90 })), ["send90"]);
});

Deno.test("the address owner's priority is never adjusted", () => {
  const r = new Rig({ priority: 255 });
  r.feed({ kind: "startup" });
  r.feed({ kind: "priority", priority: 200 });
  assert.equal(r.state.priority, 255);
});

Deno.test("step down releases with priority 0 and holds backup until rejoin", () => {
  const r = new Rig();
  r.feed({ kind: "startup" });
  r.advance(5000);
  const acts = r.feed({ kind: "stepdown" });
  assert.deepEqual(r.kinds(acts), ["send0", "removeVips", "role:backup"]);
  r.advance(60_000);
  assert.equal(r.state.role, "backup");
  r.feed(advert("10.0.0.9", 0));
  r.advance(10_000);
  assert.equal(r.state.role, "backup");
  r.feed({ kind: "rejoin" });
  r.advance(masterDownMs(100, { version: 3, intervalMs: 1000 }) + 1);
  assert.equal(r.state.role, "master");
});

Deno.test("sync group: members follow master, backup and fault, and init ignores it", () => {
  const r = new Rig();
  assert.deepEqual(r.kinds(r.feed({ kind: "sync", role: "master", group: "g" })), []);
  r.feed({ kind: "startup" });
  assert.deepEqual(r.kinds(r.feed({ kind: "sync", role: "master", group: "g" })), [
    "send100",
    "addVips",
    "garp",
    "role:master",
  ]);
  assert.deepEqual(r.kinds(r.feed({ kind: "sync", role: "backup", group: "g" })), [
    "removeVips",
    "role:backup",
  ]);
  assert.deepEqual(r.kinds(r.feed({ kind: "sync", role: "fault", group: "g" })), ["role:fault"]);
  assert.deepEqual(r.kinds(r.feed({ kind: "sync", role: "backup", group: "g" })), ["role:backup"]);
});

Deno.test("a timer event before its deadline changes nothing", () => {
  const r = new Rig();
  r.feed({ kind: "startup" });
  const before = r.state;
  assert.deepEqual(r.feed({ kind: "timer" }, 100), []);
  assert.equal(r.state, before);
});
