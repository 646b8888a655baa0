import assert from "node:assert/strict";
import { byteSum, fmix32, hash32 } from "./hash.ts";

Deno.test("hash32 is deterministic and spreads one-character changes over the word", () => {
  assert.equal(hash32("/a.jpg"), hash32("/a.jpg"));
  let flipped = 0;
  for (let i = 0; i < 200; i++) {
    const a = hash32(`/page/${i}`);
    const b = hash32(`/page/${i}x`);
    flipped += popcount(a ^ b);
  }
  const meanFlipped = flipped / 200;
  assert.ok(meanFlipped > 12 && meanFlipped < 20, `mean flipped bits ${meanFlipped}`);
});

Deno.test("hash32 fills the 32-bit range evenly across 16 buckets", () => {
  const buckets = new Array(16).fill(0);
  for (let i = 0; i < 16_000; i++) buckets[hash32(`/u/${i}`) >>> 28]++;
  for (const count of buckets) assert.ok(count > 850 && count < 1150, `bucket ${count}`);
});

Deno.test("a seed changes the hash and fmix32 maps 0 to 0", () => {
  assert.notEqual(hash32("/x", 1), hash32("/x", 2));
  assert.equal(fmix32(0), 0);
});

Deno.test("byteSum adds the bytes of the URL as KTCPVS did", () => {
  assert.equal(byteSum("AB"), 65 + 66);
  assert.equal(byteSum("/ab"), byteSum("/ba"));
});

function popcount(value: number): number {
  let v = value >>> 0;
  let n = 0;
  while (v) {
    n += v & 1;
    v >>>= 1;
  }
  return n;
}
