/**
 * rr and wrr as the kernel runs them (ip_vs_rr.c, ip_vs_wrr.c).
 * @module
 */
import { NO_CACHE, type SchedDest, type Scheduler, usable } from "./types.ts";

/**
 * Round robin: the next usable destination after the last one picked, wrapping around;
 * the first pick is the head of the list (the newest destination).
 */
export function createRoundRobin(): Scheduler {
  let list: readonly SchedDest[] = [];
  // The last pick; undefined = the list head (before the first entry).
  let cursor: SchedDest | undefined;
  let cursorIndex = -1;
  return {
    name: "rr",
    ...NO_CACHE,
    update(dests) {
      if (cursor && !dests.includes(cursor)) {
        // The kernel moves the cursor to the entry before the removed one.
        const old = list.indexOf(cursor);
        cursor = undefined;
        for (let i = old - 1; i >= 0; i--) {
          if (dests.includes(list[i])) {
            cursor = list[i];
            break;
          }
        }
      }
      list = [...dests];
      cursorIndex = cursor ? list.indexOf(cursor) : -1;
    },
    pick() {
      const n = list.length;
      if (n === 0) return undefined;
      if (cursor && list[cursorIndex] !== cursor) cursorIndex = list.indexOf(cursor);
      const start = cursor ? cursorIndex + 1 : 0;
      for (let i = 0; i < n; i++) {
        const index = (start + i) % n;
        const dest = list[index];
        if (usable(dest)) {
          cursor = dest;
          cursorIndex = index;
          return dest;
        }
      }
      return undefined;
    },
  };
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * Weighted round robin: walks the list repeatedly, each pass taking the destinations
 * whose weight is at least the current weight `cw`, which steps down from the maximum
 * weight by the gcd of the weights.
 */
export function createWeightedRoundRobin(): Scheduler {
  let list: readonly SchedDest[] = [];
  // Index of the last pick; -1 = the list head.
  let cl = -1;
  let di = 1; // gcd of the positive weights
  let mw = 0; // max weight - (di - 1)
  let cw = 0; // current weight
  return {
    name: "wrr",
    ...NO_CACHE,
    update(dests) {
      list = [...dests];
      cl = -1;
      let g = 0;
      let max = 0;
      for (const d of list) {
        if (d.weight > 0) g = g > 0 ? gcd(d.weight, g) : d.weight;
        if (d.weight > max) max = d.weight;
      }
      di = g || 1;
      mw = max - (di - 1);
      if (cw > mw || !cw) cw = mw;
      else if (di > 1) cw = Math.trunc(cw / di) * di + 1;
    },
    pick() {
      if (mw === 0) return undefined;
      const n = list.length;
      const last = cl;
      let stop = -2;
      let lastPass = false;
      let restarted = false;
      let index = cl;
      for (;;) {
        for (index = index + 1; index < n; index++) {
          const d = list[index];
          if (!d.overloaded && d.weight >= cw) {
            cl = index;
            return d;
          }
          if (index === stop) {
            cl = index;
            return undefined;
          }
        }
        index = -1;
        cw -= di;
        if (cw <= 0) {
          cw = mw;
          if (lastPass || last === -1) {
            cl = -1;
            return undefined;
          }
          restarted = true;
        }
        lastPass = cw <= di;
        if (lastPass && restarted && last !== -1) stop = last;
      }
    },
  };
}
