/**
 * `fulcrum ipvs list [--stats|--rate]` and `fulcrum ipvs save`: the kernel's IPVS
 * table read over generic netlink and printed as ipvsadm does.
 * @module
 */
import { IpvsClient } from "../../sys/ipvs.ts";
import { formatList, formatSave, type ListMode } from "./format.ts";
import { observeAll } from "./reconciler.ts";

const USAGE = "usage: fulcrum ipvs list [--stats | --rate] | fulcrum ipvs save";

/** Runs `fulcrum ipvs ARGS`; returns the exit code (0 ok, 1 kernel error, 2 usage). */
export async function ipvsCommand(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  if (sub !== "list" && sub !== "save") {
    console.error(USAGE);
    return 2;
  }
  let mode: ListMode = "plain";
  for (const a of rest) {
    if (sub === "list" && (a === "--stats" || a === "--rate")) {
      mode = a === "--stats" ? "stats" : "rate";
    } else if (a === "-n" || a === "--numeric") continue;
    else {
      console.error(`unknown option "${a}"; ${USAGE}`);
      return 2;
    }
  }
  let client: IpvsClient;
  try {
    client = await IpvsClient.open();
  } catch (error) {
    console.error(`fulcrum ipvs ${sub}: ${(error as Error).message}`);
    return 1;
  }
  try {
    const table = await observeAll(client);
    const text = sub === "save"
      ? formatSave(table)
      : formatList(await client.info(), table, { mode });
    await Deno.stdout.write(new TextEncoder().encode(text));
    return 0;
  } catch (error) {
    console.error(`fulcrum ipvs ${sub}: ${(error as Error).message}`);
    return 1;
  } finally {
    client.close();
  }
}

if (import.meta.main) Deno.exit(await ipvsCommand(Deno.args));
