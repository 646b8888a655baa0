/**
 * Counters and the kernel's rate estimator (ip_vs_est.c): every 2 s each rate moves a
 * quarter of the way toward the last interval's rate, kept in fixed point like the
 * kernel (conns and packets ×2¹⁰, bytes ×2⁵) and rounded the same way when read.
 * @module
 */
import type { Counters, Rates } from "./dataplane.ts";

/** The estimator's period in milliseconds. */
export const ESTIMATOR_INTERVAL = 2000;

/** Counters a data plane adds to. */
export class Stats implements Counters {
  conns = 0;
  inPkts = 0;
  outPkts = 0;
  inBytes = 0;
  outBytes = 0;

  /** Adds `n` bytes in one packet from the client (`in`) or from the server (`out`). */
  add(direction: "in" | "out", bytes: number, packets = 1): void {
    if (direction === "in") {
      this.inBytes += bytes;
      this.inPkts += packets;
    } else {
      this.outBytes += bytes;
      this.outPkts += packets;
    }
  }

  /** A frozen copy. */
  snapshot(): Counters {
    const { conns, inPkts, outPkts, inBytes, outBytes } = this;
    return { conns, inPkts, outPkts, inBytes, outBytes };
  }
}

/** The kernel's `>> 2` on a signed value: floor division by 4. */
function quarter(x: number): number {
  return Math.floor(x / 4);
}

/** A 2 s EWMA estimator over one {@link Counters}, as `ipvsadm --rate` shows. */
export class Estimator {
  #last: Counters;
  #cps = 0;
  #inpps = 0;
  #outpps = 0;
  #inbps = 0;
  #outbps = 0;

  /** Starts from the counters' current values. */
  constructor(readonly source: Counters) {
    this.#last = { ...source };
  }

  /** One estimator period passed (call every {@link ESTIMATOR_INTERVAL} ms). */
  tick(): void {
    const s = this.source;
    const l = this.#last;
    // Per-second rate over 2 s, scaled: conns/pkts << 9 = ×2¹⁰/2; bytes << 4 = ×2⁵/2.
    this.#cps += quarter((s.conns - l.conns) * 512 - this.#cps);
    this.#inpps += quarter((s.inPkts - l.inPkts) * 512 - this.#inpps);
    this.#outpps += quarter((s.outPkts - l.outPkts) * 512 - this.#outpps);
    this.#inbps += quarter((s.inBytes - l.inBytes) * 16 - this.#inbps);
    this.#outbps += quarter((s.outBytes - l.outBytes) * 16 - this.#outbps);
    this.#last = { ...s };
  }

  /** Rates per second, rounded as the kernel reads them. */
  rates(): Rates {
    return {
      cps: Math.floor((this.#cps + 0x1ff) / 1024),
      inpps: Math.floor((this.#inpps + 0x1ff) / 1024),
      outpps: Math.floor((this.#outpps + 0x1ff) / 1024),
      inbps: Math.floor((this.#inbps + 0xf) / 32),
      outbps: Math.floor((this.#outbps + 0xf) / 32),
    };
  }
}

/** Rates of nothing. */
export const ZERO_RATES: Rates = { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };
