/**
 * The real subsystems in start order: health first (so servers have a verdict), then
 * the L4 and L7 data paths, then VRRP (addresses are claimed only when the services
 * behind them are ready). The CLI passes this to the appliance; tests pass their own.
 * @module
 */
import { createHealth } from "./health/mod.ts";
import { createIpvsDataplane, ipvsAvailable } from "./l4/ipvs/mod.ts";
import { createL4 } from "./l4/mod.ts";
import { createL7 } from "./l7/mod.ts";
import type { Subsystem, SubsystemDeps } from "./subsystem.ts";
import { createVrrp } from "./vrrp/mod.ts";

/** Creates every subsystem of the appliance. */
export function createSubsystems(deps: SubsystemDeps): Subsystem[] {
  const bind = (name: string): SubsystemDeps => ({ ...deps, log: deps.log.child(name) });
  return [
    createHealth(bind("health")),
    createL4(bind("l4"), {
      ipvs: { available: ipvsAvailable, create: (d) => createIpvsDataplane(d) },
    }),
    createL7(bind("l7")),
    createVrrp(bind("vrrp")),
  ];
}
