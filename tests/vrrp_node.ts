/**
 * A test driver: runs only the VRRP subsystem from a JSON config file (the shape of
 * appliance.yaml), prints one JSON line per role change on stdout, and takes
 * commands on stdin (`stepdown NAME`, `rejoin NAME`, `status`, `stop`). SIGTERM
 * stops gracefully (priority-0 adverts, VIPs removed).
 *
 *   ip netns exec NS deno run -A tests/vrrp_node.ts config.json
 * @module
 */
import { configSchema } from "../config/schema.ts";
import { buildModel } from "../config/model.ts";
import { ServerStates } from "../health/state.ts";
import { createLogger } from "../log.ts";
import { RoleBoard } from "../vrrp/role.ts";
import { createVrrp } from "../vrrp/mod.ts";

/** Prints one JSON line on stdout. */
function emit(record: Record<string, unknown>): void {
  Deno.stdout.writeSync(
    new TextEncoder().encode(JSON.stringify({ t: Date.now(), ...record }) + "\n"),
  );
}

/** Runs the driver with the config at `path` until stopped. */
export async function main(path: string): Promise<void> {
  const raw = JSON.parse(await Deno.readTextFile(path));
  const config = configSchema.parse(raw);
  const model = buildModel(config, { path, hash: "test" });
  const roles = new RoleBoard();
  roles.subscribe((c) =>
    emit({ event: "role", instance: c.instance, role: c.role, reason: c.reason })
  );
  const vrrp = createVrrp({
    states: new ServerStates(),
    roles,
    log: createLogger({
      component: "vrrp",
      level: Deno.env.get("VRRP_LOG") === "debug" ? "debug" : "info",
    }),
  });
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      await vrrp.stop();
      emit({ event: "stopped" });
      Deno.exit(0);
    })();
    return stopping;
  };
  Deno.addSignalListener("SIGTERM", () => void stop());
  Deno.addSignalListener("SIGINT", () => void stop());
  await vrrp.start(model);
  emit({ event: "started", status: vrrp.list() });
  const lines = Deno.stdin.readable.pipeThrough(new TextDecoderStream());
  let buffer = "";
  for await (const chunk of lines) {
    buffer += chunk;
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const [cmd, arg] = buffer.slice(0, nl).trim().split(/\s+/);
      buffer = buffer.slice(nl + 1);
      const inst = arg ? vrrp.instances().get(arg) : undefined;
      if (cmd === "stepdown" && inst) inst.stepdown();
      else if (cmd === "rejoin" && inst) inst.rejoin();
      else if (cmd === "stop") await stop();
      emit({ event: "status", status: vrrp.list() });
    }
  }
  // stdin closed: keep running until a signal
  await new Promise(() => {});
}

if (import.meta.main) await main(Deno.args[0]);
