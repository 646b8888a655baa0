import assert from "node:assert/strict";
import { type ByteConn, Deadlines, Reader, writeAll } from "./io.ts";

function chunks(parts: string[]): ByteConn & { written: Uint8Array[] } {
  const te = new TextEncoder();
  const queue = parts.map((p) => te.encode(p));
  const written: Uint8Array[] = [];
  return {
    written,
    read(p) {
      const next = queue.shift();
      if (!next) return Promise.resolve(null);
      p.set(next.subarray(0, p.length));
      if (next.length > p.length) queue.unshift(next.subarray(p.length));
      return Promise.resolve(Math.min(next.length, p.length));
    },
    write(p) {
      const n = Math.min(p.length, 3);
      written.push(p.slice(0, n));
      return Promise.resolve(n);
    },
    close() {},
  };
}

Deno.test("the reader grows up to its limit, compacts and reports the end of stream", async () => {
  const r = new Reader(chunks(["abcd", "efgh", "ijkl"]), 4);
  assert.equal(await r.fill(16), true);
  assert.equal(new TextDecoder().decode(r.view()), "abcd");
  assert.equal(await r.fill(16), true);
  assert.equal(r.available, 8);
  r.consume(6);
  assert.equal(await r.fill(16), true);
  assert.equal(new TextDecoder().decode(r.view()), "ghijkl");
  assert.equal(await r.fill(16), false);
  assert.equal(r.total, 12);
});

Deno.test("writeAll loops over short writes", async () => {
  const c = chunks([]);
  await writeAll(c, new TextEncoder().encode("hello world"));
  assert.equal(c.written.map((w) => new TextDecoder().decode(w)).join(""), "hello world");
});

Deno.test("deadlines fire once after they pass, disarmed ones never", async () => {
  const wheel = new Deadlines(10);
  let fired = 0;
  let other = 0;
  wheel.arm({ deadline: Date.now() + 20, fire: () => fired++ });
  const never = { deadline: Date.now() + 20, fire: () => other++ };
  wheel.arm(never);
  wheel.disarm(never);
  await new Promise((r) => setTimeout(r, 80));
  wheel.close();
  assert.equal(fired, 1);
  assert.equal(other, 0);
});

Deno.test("a reader with headroom reads after it, compacts and grows keeping it free", async () => {
  const r = new Reader(chunks(["abcd", "efgh", "ijkl"]), 4, { headroom: 3 });
  assert.equal(await r.fill(16), true);
  assert.equal(r.start, 3);
  assert.equal(new TextDecoder().decode(r.view()), "abcd");
  assert.equal(await r.fill(16), true);
  assert.equal(r.start, 3);
  assert.equal(new TextDecoder().decode(r.view()), "abcdefgh");
  r.consume(6);
  assert.equal(await r.fill(16), true);
  assert.equal(r.start, 3);
  assert.equal(new TextDecoder().decode(r.view()), "ghijkl");
  r.consume(6);
  assert.equal(r.start, 3);
  assert.equal(r.end, 3);
  assert.equal(await r.fill(16), false);
});

Deno.test("a reader swaps its buffer only when nothing is unread", async () => {
  const r = new Reader(chunks(["abcd", "efgh"]), 4, { headroom: 2 });
  const first = r.buf;
  assert.equal(await r.fill(), true);
  assert.equal(r.swap(new Uint8Array(16)), undefined);
  assert.equal(r.buf, first);
  r.consume(4);
  const big = new Uint8Array(18);
  assert.equal(r.swap(big), first);
  assert.equal(r.buf, big);
  assert.equal(await r.fill(), true);
  assert.equal(new TextDecoder().decode(r.view()), "efgh");
  assert.equal(r.start, 2);
});

Deno.test("deadlines: many entries, some disarmed in the middle; the rest fire once each", async () => {
  const wheel = new Deadlines(5);
  const fired: number[] = [];
  const entries = Array.from({ length: 20 }, (_, i) => ({
    deadline: Date.now() + 10,
    slot: -1,
    fire: () => fired.push(i),
  }));
  for (const e of entries) wheel.arm(e);
  wheel.arm(entries[0]); // armed twice is armed once
  for (const i of [0, 7, 19, 3]) wheel.disarm(entries[i]);
  wheel.disarm(entries[7]); // disarming twice is harmless
  assert.equal(wheel.size, 16);
  await new Promise((r) => setTimeout(r, 60));
  assert.deepEqual(
    [...fired].sort((a, b) => a - b),
    [1, 2, 4, 5, 6, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18],
  );
  assert.equal(wheel.size, 0);
  // a fired entry can be armed again and fires again
  entries[1].deadline = Date.now() + 10;
  wheel.arm(entries[1]);
  await new Promise((r) => setTimeout(r, 60));
  wheel.close();
  assert.equal(fired.filter((i) => i === 1).length, 2);
});

Deno.test("deadlines: an entry that disarms or arms others while firing loses none", async () => {
  const wheel = new Deadlines(5);
  const fired: string[] = [];
  const later = { deadline: Date.now() + 10_000, fire: () => fired.push("later") };
  const cancelled = { deadline: Date.now() + 10, fire: () => fired.push("cancelled") };
  const due = { deadline: Date.now() + 10, fire: () => fired.push("due") };
  const rearmed = { deadline: 0, fire: () => fired.push("rearmed") };
  const first = {
    deadline: Date.now() + 10,
    fire: () => {
      fired.push("first");
      wheel.disarm(cancelled);
      wheel.disarm(later);
      rearmed.deadline = Date.now() + 10;
      wheel.arm(rearmed);
    },
  };
  for (const e of [first, cancelled, later, due]) wheel.arm(e);
  await new Promise((r) => setTimeout(r, 80));
  wheel.close();
  assert.deepEqual([...fired].sort(), ["due", "first", "rearmed"]);
  assert.equal(wheel.size, 0);
});
