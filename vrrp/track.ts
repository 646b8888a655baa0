/**
 * Tracking, keepalived-style: each tracked interface or pool is up or down. Without a
 * weight, down means FAULT. With a positive weight, up adds it to the priority; with
 * a negative weight, down adds it (lowering the priority). Pure.
 * @module
 */

/** One tracked object and its state now. */
export interface Tracked {
  /** `interface eth1` or `pool web`. */
  readonly what: string;
  readonly up: boolean;
  /** 0 (or absent) means: down is a fault. */
  readonly weight?: number;
}

/** What tracking asks of the machine. */
export interface TrackVerdict {
  readonly priority: number;
  /** Tracked objects that are down without a weight. */
  readonly faults: readonly string[];
}

/**
 * The priority and faults from `base` and the tracked objects. The address owner
 * (255) is never adjusted; others stay within 1–254.
 */
export function trackVerdict(base: number, tracked: readonly Tracked[]): TrackVerdict {
  const faults: string[] = [];
  let delta = 0;
  for (const t of tracked) {
    const w = t.weight ?? 0;
    if (w === 0) {
      if (!t.up) faults.push(t.what);
    } else if (w > 0 && t.up) delta += w;
    else if (w < 0 && !t.up) delta += w;
  }
  if (base === 255) return { priority: 255, faults };
  return { priority: Math.min(254, Math.max(1, base + delta)), faults };
}

/** Whether a pool can serve: some server has an effective weight above 0. */
export function poolUp(servers: readonly { effectiveWeight: number }[]): boolean {
  return servers.some((s) => s.effectiveWeight > 0);
}
