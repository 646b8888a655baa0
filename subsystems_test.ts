import assert from "node:assert/strict";
import { ServerStates } from "./health/state.ts";
import { createLogger } from "./log.ts";
import { createSubsystems } from "./subsystems.ts";
import { RoleBoard } from "./vrrp/role.ts";

Deno.test("the appliance starts health, then l4 and l7, then vrrp", () => {
  const subsystems = createSubsystems({
    states: new ServerStates(),
    roles: new RoleBoard(),
    log: createLogger({ write: () => {} }),
  });
  assert.deepEqual(subsystems.map((s) => s.name), ["health", "l4", "l7", "vrrp"]);
});
