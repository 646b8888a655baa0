import assert from "node:assert/strict";
import { Estimator, Stats } from "./stats.ts";

Deno.test("counters add bytes and packets per direction", () => {
  const s = new Stats();
  s.conns++;
  s.add("in", 100);
  s.add("out", 1500, 2);
  assert.deepEqual(s.snapshot(), { conns: 1, inPkts: 1, outPkts: 2, inBytes: 100, outBytes: 1500 });
});

Deno.test("the estimator moves a quarter of the way to each 2 s rate", () => {
  const s = new Stats();
  const e = new Estimator(s);
  // 200 connections and 2000 bytes in 2 s = 100 cps, 1000 B/s.
  s.conns += 200;
  s.add("in", 2000, 20);
  e.tick();
  // cps: 200·512 = 102400 → /4 = 25600 → (25600 + 511) >> 10 = 25.
  // inbps: 2000·16 = 32000 → /4 = 8000 → (8000 + 15) >> 5 = 250. inpps: 10/s → 2.
  assert.deepEqual(e.rates(), { cps: 25, inpps: 2, outpps: 0, inbps: 250, outbps: 0 });
  e.tick(); // nothing new: rate 0, the average falls by a quarter
  // cps: 25600 + (0 - 25600)/4 = 19200 → (19200 + 511) >> 10 = 19.
  assert.equal(e.rates().cps, 19);
  for (let i = 0; i < 40; i++) {
    s.conns += 200;
    e.tick();
  }
  assert.equal(e.rates().cps, 100, "a steady rate converges to the true one");
});
