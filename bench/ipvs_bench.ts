/**
 * Benchmark (inside the IPVS VM, not part of the test suite):
 *
 *   IPVS_VM_DENO=$(command -v deno) tests/ipvs_vm.sh -- sh -c '"$DENO" run -A --no-check bench/ipvs_bench.ts'
 *
 * Programs 1,000 services × 10 destinations with Fulcrum's IPVS data plane (with and
 * without the verifying re-read) and with `ipvsadm-restore` of the same rules,
 * interleaved over rounds, checks both produce the same table, and prints the time
 * ratios. Then changes one weight through a reload and prints how many messages that
 * sent. Times under qemu TCG vary a lot: compare only within one run.
 * @module
 */
import { buildModel, type Model } from "../config/model.ts";
import { diff } from "../config/diff.ts";
import { configSchema } from "../config/schema.ts";
import { ServerStates } from "../health/state.ts";
import { createLogger } from "../log.ts";
import { RoleBoard } from "../vrrp/role.ts";
import { createIpvsDataplane } from "../l4/ipvs/mod.ts";
import type { Dataplane } from "../l4/dataplane.ts";

const SERVICES = 1000;
const DESTS = 10;
const ROUNDS = 3;

async function sh(cmd: string, stdin?: string): Promise<string> {
  const child = new Deno.Command("sh", {
    args: ["-c", cmd],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  if (!out.success) throw new Error(`${cmd}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

function vip(i: number): string {
  return `10.${100 + Math.floor(i / 250)}.${i % 250}.1:80`;
}

function server(i: number, j: number): string {
  return `10.${200 + Math.floor(i / 250)}.${i % 250}.${j + 1}:80`;
}

function config(bump = 0) {
  const pools: Record<string, unknown> = {};
  const services = [];
  for (let i = 0; i < SERVICES; i++) {
    pools[`p${i}`] = {
      servers: Array.from({ length: DESTS }, (_, j) => ({
        address: server(i, j),
        weight: i === 0 && j === 0 ? 1 + bump : 1 + (j % 3),
      })),
    };
    services.push({ name: `s${i}`, vip: vip(i), scheduler: "wlc", pool: `p${i}` });
  }
  return { pools, l4: { services } };
}

function rules(): string {
  const lines: string[] = [];
  for (let i = 0; i < SERVICES; i++) {
    lines.push(`-A -t ${vip(i)} -s wlc`);
    for (let j = 0; j < DESTS; j++) {
      lines.push(`-a -t ${vip(i)} -r ${server(i, j)} -m -w ${1 + (j % 3)}`);
    }
  }
  return lines.join("\n") + "\n";
}

function model(c: unknown): Model {
  return buildModel(configSchema.parse(c), { path: "bench.yaml", hash: "0" });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

const m1 = model(config());
const text = rules();
const messages = { write: 0, read: 0 };
const times = { restore: [] as number[], verified: [] as number[], unverified: [] as number[] };
let restored = "";

function plane(verify: boolean): Dataplane {
  return createIpvsDataplane(
    { states: new ServerStates(), roles: new RoleBoard(), log: createLogger({ write: () => {} }) },
    { resyncMs: 0, removeOnStop: false, verify, onMessage: (kind) => void messages[kind]++ },
  );
}

for (let round = 0; round < ROUNDS; round++) {
  await sh("ipvsadm -C");
  let t = performance.now();
  await sh("ipvsadm-restore", text);
  times.restore.push(performance.now() - t);
  restored = await sh("ipvsadm-save -n");
  for (const verify of [true, false]) {
    await sh("ipvsadm -C");
    const p = plane(verify);
    messages.write = 0;
    messages.read = 0;
    t = performance.now();
    await p.start(m1);
    times[verify ? "verified" : "unverified"].push(performance.now() - t);
    if ((await sh("ipvsadm-save -n")) !== restored) {
      throw new Error("Fulcrum and ipvsadm-restore programmed different tables");
    }
    console.log(
      `round ${round + 1} verify=${verify}: ${
        times[verify ? "verified" : "unverified"][round].toFixed(0)
      } ms, ${messages.write} change messages, ${messages.read} reads; ipvsadm-restore ${
        times.restore[round].toFixed(0)
      } ms`,
    );
    if (round === ROUNDS - 1 && verify) {
      const m2 = model(config(4));
      const d = diff(m1, m2);
      messages.write = 0;
      messages.read = 0;
      t = performance.now();
      await p.apply(m2, d);
      const ms = performance.now() - t;
      const after = await sh(`ipvsadm-save -n | grep -c -- '-r ${server(0, 0)} -m -w 5' || true`);
      console.log(
        `one-weight reload: ${messages.write} change message(s) + ${messages.read} verifying read(s), ${
          ms.toFixed(1)
        } ms; the kernel shows the new weight: ${after.trim() === "1"}`,
      );
    }
    await p.stop();
  }
}
await sh("ipvsadm -C");
const r = median(times.restore);
console.log(
  `${SERVICES} services x ${DESTS} dests, median of ${ROUNDS} interleaved rounds: ipvsadm-restore ${
    r.toFixed(0)
  } ms; fulcrum apply+verify ${median(times.verified).toFixed(0)} ms (ratio ${
    (median(times.verified) / r).toFixed(2)
  }); fulcrum apply without the re-read ${median(times.unverified).toFixed(0)} ms (ratio ${
    (median(times.unverified) / r).toFixed(2)
  })`,
);
