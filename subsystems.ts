/**
 * The real subsystems in start order: health first (so servers have a verdict), then
 * the L4 and L7 data paths, then VRRP (addresses are claimed only when the services
 * behind them are ready). The CLI passes this to the appliance; tests pass their own.
 * @module
 */
import { createHealth } from "./health/mod.ts";
import type { Subsystem, SubsystemDeps } from "./subsystem.ts";

/** Creates every subsystem of the appliance. */
export function createSubsystems(deps: SubsystemDeps): Subsystem[] {
  const bind = (name: string): SubsystemDeps => ({ ...deps, log: deps.log.child(name) });
  return [createHealth(bind("health"))];
}
