/**
 * The scheduler names of IPVS, kept apart from the zod schema so that code which
 * only needs the names (l4's scheduler registry) does not load the schema.
 * @module
 */

/** Every scheduler the kernel's IPVS offers, and so every one Fulcrum implements. */
export const SCHEDULERS = [
  "rr",
  "wrr",
  "lc",
  "wlc",
  "lblc",
  "lblcr",
  "dh",
  "sh",
  "sed",
  "nq",
  "mh",
  "fo",
  "ovf",
  "twos",
] as const;

/** A scheduler name. */
export type SchedulerName = typeof SCHEDULERS[number];

/** Flags a service may pass to its scheduler (ipvsadm `-b`). */
export const SCHEDULER_FLAGS = ["sh-fallback", "sh-port", "mh-fallback", "mh-port"] as const;
