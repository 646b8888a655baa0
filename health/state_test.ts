import assert from "node:assert/strict";
import { isUsable, type ServerEvent, type ServerState, ServerStates } from "./state.ts";

function server(overrides: Partial<ServerState> = {}): ServerState {
  return {
    pool: "html",
    address: "127.0.0.1:8101",
    health: "up",
    admin: "enabled",
    configuredWeight: 1,
    effectiveWeight: 1,
    reason: "start",
    since: 0,
    ...overrides,
  };
}

Deno.test("ServerStates tells subscribers what changed, in order", () => {
  const states = new ServerStates();
  const seen: ServerEvent["kind"][] = [];
  states.subscribe((e) => seen.push(e.kind));
  states.set(server());
  states.set(server({ health: "down", effectiveWeight: 0 }));
  states.set(server({ health: "down", effectiveWeight: 0 }));
  states.set(server({ admin: "drain", effectiveWeight: 0 }));
  states.set(server({ admin: "drain", effectiveWeight: 0, configuredWeight: 5 }));
  states.set(server({ effectiveWeight: 3 }));
  states.delete("html", "127.0.0.1:8101");
  assert.deepEqual(seen, ["added", "down", "drain", "enable", "removed"]);
  assert.equal(states.get("html", "127.0.0.1:8101"), undefined);
});

Deno.test("a server with effective weight 0 takes no new traffic", () => {
  assert.equal(isUsable(server()), true);
  assert.equal(isUsable(server({ effectiveWeight: 0, admin: "drain" })), false);
});

Deno.test("unsubscribing stops events and list filters by pool", () => {
  const states = new ServerStates();
  let count = 0;
  const stop = states.subscribe(() => count++);
  states.set(server());
  stop();
  states.set(server({ pool: "images", address: "127.0.0.1:8201" }));
  assert.equal(count, 1);
  assert.equal(states.list("images").length, 1);
  assert.equal(states.list().length, 2);
});
