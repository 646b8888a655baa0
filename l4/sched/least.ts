/**
 * The stateless schedulers that compare destinations at each pick, as the kernel does
 * (ip_vs_lc.c, ip_vs_wlc.c, ip_vs_sed.c, ip_vs_nq.c, ip_vs_fo.c, ip_vs_ovf.c,
 * ip_vs_twos.c). Ties go to the earlier destination of the list.
 * @module
 */
import {
  connOverhead,
  NO_CACHE,
  type SchedDest,
  type Scheduler,
  type SchedulerOptions,
  usable,
} from "./types.ts";

type Name = "lc" | "wlc" | "sed" | "nq" | "fo" | "ovf" | "twos";

/** Least connection: the smallest `256 × active + inactive`. */
export function pickLc(list: readonly SchedDest[]): SchedDest | undefined {
  let least: SchedDest | undefined;
  let loh = 0;
  for (const d of list) {
    if (!usable(d)) continue;
    const doh = connOverhead(d);
    if (!least || doh < loh) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

/**
 * Weighted least connection (and sed with `overhead = active + 1`): the smallest
 * overhead/weight, compared by cross-multiplication.
 */
function pickWeighted(
  list: readonly SchedDest[],
  overhead: (d: SchedDest) => number,
): SchedDest | undefined {
  let i = 0;
  let least: SchedDest | undefined;
  for (; i < list.length; i++) {
    if (usable(list[i])) {
      least = list[i];
      break;
    }
  }
  if (!least) return undefined;
  let loh = overhead(least);
  for (i++; i < list.length; i++) {
    const d = list[i];
    if (d.overloaded) continue;
    const doh = overhead(d);
    if (loh * d.weight > doh * least.weight) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

function sedOverhead(d: SchedDest): number {
  return d.activeConns + 1;
}

/** Weighted least connection. */
export function pickWlc(list: readonly SchedDest[]): SchedDest | undefined {
  return pickWeighted(list, connOverhead);
}

/** Shortest expected delay: the smallest (active + 1)/weight. */
export function pickSed(list: readonly SchedDest[]): SchedDest | undefined {
  return pickWeighted(list, sedOverhead);
}

/** Never queue: the first idle destination (no active connections), else as sed. */
export function pickNq(list: readonly SchedDest[]): SchedDest | undefined {
  let least: SchedDest | undefined;
  let loh = 0;
  for (const d of list) {
    if (!usable(d)) continue;
    const doh = sedOverhead(d);
    if (d.activeConns === 0) return d;
    if (!least || loh * d.weight > doh * least.weight) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

/** Weighted failover: the usable destination with the highest weight. */
export function pickFo(list: readonly SchedDest[]): SchedDest | undefined {
  let best: SchedDest | undefined;
  for (const d of list) {
    if (usable(d) && d.weight > (best?.weight ?? 0)) best = d;
  }
  return best;
}

/**
 * Weighted overflow: the highest weight among destinations whose active connections do
 * not exceed their weight.
 */
export function pickOvf(list: readonly SchedDest[]): SchedDest | undefined {
  let best: SchedDest | undefined;
  for (const d of list) {
    if (!usable(d) || d.activeConns > d.weight) continue;
    if (!best || d.weight > best.weight) best = d;
  }
  return best;
}

/**
 * Power of two choices: two destinations drawn at random in proportion to weight
 * (`rand1`, `rand2` are uniform 32-bit values), the one with the lower
 * overhead/weight wins, the first drawn on a tie.
 */
export function pickTwos(
  list: readonly SchedDest[],
  rand1: number,
  rand2: number,
): SchedDest | undefined {
  let total = 0;
  let choice1: SchedDest | undefined;
  for (const d of list) {
    if (usable(d)) {
      total += d.weight;
      choice1 = d;
    }
  }
  if (!choice1) return undefined;
  total += 1;
  let r1 = rand1 % total;
  let r2 = rand2 % total;
  let choice2: SchedDest | undefined;
  let w1 = -1;
  let w2 = -1;
  let oh1 = 0;
  let oh2 = 0;
  for (const d of list) {
    if (!usable(d)) continue;
    r1 -= d.weight;
    r2 -= d.weight;
    if (r1 <= 0 && w1 === -1) {
      choice1 = d;
      w1 = d.weight;
      oh1 = connOverhead(d);
    }
    if (r2 <= 0 && w2 === -1) {
      choice2 = d;
      w2 = d.weight;
      oh2 = connOverhead(d);
    }
    if (w1 !== -1 && w2 !== -1) break;
  }
  if (choice2 && w2 * oh1 > w1 * oh2) return choice2;
  return choice1;
}

/** A pseudo-random 32-bit value, like the kernel's prandom_u32 (not for secrets). */
function randomU32(): number {
  return (Math.random() * 0x100000000) >>> 0;
}

/** One of lc, wlc, sed, nq, fo, ovf, twos. */
export function createLeastConnection(name: Name, options: SchedulerOptions = {}): Scheduler {
  let list: readonly SchedDest[] = [];
  const random = options.random ?? randomU32;
  const pickers: Record<Name, (l: readonly SchedDest[]) => SchedDest | undefined> = {
    lc: pickLc,
    wlc: pickWlc,
    sed: pickSed,
    nq: pickNq,
    fo: pickFo,
    ovf: pickOvf,
    twos: (l) => pickTwos(l, random() >>> 0, random() >>> 0),
  };
  const pick = pickers[name];
  return {
    name,
    ...NO_CACHE,
    update(dests) {
      list = [...dests];
    },
    pick() {
      return pick(list);
    },
  };
}
