import assert from "node:assert/strict";
import { hash32 } from "./hash.ts";
import { buildRing, pickBounded, type Ring, type RingMember } from "./ring.ts";

function owner(ring: Ring, key: string): string {
  const pick = pickBounded(ring, hash32(key));
  assert.ok(pick);
  return ring.members[pick.member].id;
}

function shares(ring: Ring, keys: number): Map<string, number> {
  const counts = new Map<string, number>();
  for (let i = 0; i < keys; i++) {
    const id = owner(ring, `/page/${i}.html`);
    counts.set(id, (counts.get(id) ?? 0) + 1);
  }
  return counts;
}

Deno.test("keys spread within 10% of each server's weight share", () => {
  const members: RingMember[] = [
    { id: "10.0.0.1:80", weight: 1 },
    { id: "10.0.0.2:80", weight: 2 },
    { id: "10.0.0.3:80", weight: 3 },
    { id: "10.0.0.4:80", weight: 2 },
  ];
  const ring = buildRing(members);
  const keys = 200_000;
  const counts = shares(ring, keys);
  for (const member of members) {
    const expected = (keys * member.weight) / 8;
    const got = counts.get(member.id) ?? 0;
    assert.ok(Math.abs(got - expected) / expected < 0.1, `${member.id}: ${got} vs ${expected}`);
  }
});

Deno.test("equal weights stay within 10% for 8 servers", () => {
  const members = Array.from({ length: 8 }, (_, i) => ({ id: `127.0.0.1:${8100 + i}`, weight: 5 }));
  const counts = shares(buildRing(members), 160_000);
  for (const m of members) {
    const got = counts.get(m.id) ?? 0;
    assert.ok(Math.abs(got - 20_000) / 20_000 < 0.1, `${m.id}: ${got}`);
  }
});

Deno.test("adding a fifth server moves about 1/5 of the keys, all of them to the new one", () => {
  const four = Array.from({ length: 4 }, (_, i) => ({ id: `s${i}`, weight: 1 }));
  const before = buildRing(four);
  const after = buildRing([...four, { id: "s4", weight: 1 }]);
  const keys = 50_000;
  let moved = 0;
  for (let i = 0; i < keys; i++) {
    const a = owner(before, `/k/${i}`);
    const b = owner(after, `/k/${i}`);
    if (a !== b) {
      moved++;
      assert.equal(b, "s4", "a key moved between two old servers");
    }
  }
  const fraction = moved / keys;
  assert.ok(fraction > 0.15 && fraction < 0.25, `moved ${fraction}`);
});

Deno.test("removing one of five servers moves only that server's keys", () => {
  const five = Array.from({ length: 5 }, (_, i) => ({ id: `s${i}`, weight: 1 }));
  const before = buildRing(five);
  const after = buildRing(five.filter((m) => m.id !== "s2"));
  let moved = 0;
  for (let i = 0; i < 50_000; i++) {
    const a = owner(before, `/k/${i}`);
    const b = owner(after, `/k/${i}`);
    if (a !== b) {
      moved++;
      assert.equal(a, "s2");
    }
  }
  assert.ok(moved / 50_000 > 0.15 && moved / 50_000 < 0.25, `moved ${moved / 50_000}`);
});

Deno.test("a zero-weight member is not on the ring", () => {
  const ring = buildRing([{ id: "a", weight: 0 }, { id: "b", weight: 1 }]);
  assert.deepEqual(ring.members.map((m) => m.id), ["b"]);
  assert.equal(owner(ring, "/anything"), "b");
  assert.equal(pickBounded(buildRing([]), 5), undefined);
});

Deno.test("under a skewed stream no server exceeds bound × its share of in-flight load", () => {
  const members = [
    { id: "a", weight: 1 },
    { id: "b", weight: 1 },
    { id: "c", weight: 2 },
  ];
  const ring = buildRing(members);
  const bound = 1.25;
  const loads = [0, 0, 0];
  let total = 0;
  let diverted = 0;
  // 90% of requests hit one hot URL; nothing completes, so in-flight keeps growing.
  for (let i = 0; i < 2000; i++) {
    const key = i % 10 === 0 ? `/cold/${i}` : "/hot.jpg";
    const pick = pickBounded(ring, hash32(key), { load: (m) => loads[m], totalLoad: total, bound });
    assert.ok(pick);
    if (pick.diverted) diverted++;
    loads[pick.member]++;
    total++;
    for (let m = 0; m < members.length; m++) {
      const cap = Math.ceil((bound * total * members[m].weight) / 4);
      assert.ok(loads[m] <= cap, `member ${m} load ${loads[m]} above ${cap} at ${total}`);
    }
  }
  assert.ok(diverted > 0, "the hot key never walked past its home");
});

Deno.test("with no load the hot key always stays on its home", () => {
  const ring = buildRing([{ id: "a", weight: 1 }, { id: "b", weight: 1 }]);
  const first = pickBounded(ring, hash32("/x"), { load: () => 0, bound: 1.25 });
  assert.ok(first);
  assert.equal(first.diverted, false);
  assert.equal(first.member, first.home);
});
