/**
 * The userspace L4 plane in a network namespace of its own: persistence by source
 * netmask with client addresses in two /24s, and the connect timeout toward a server
 * whose SYNs iptables drops. Backends, plane and clients all run inside the namespace.
 */
import assert from "node:assert/strict";
import { canUseNetns, Netns } from "./netns.ts";

const lab = new URL("./l4_lab.ts", import.meta.url).pathname;

async function withLab(
  fn: (ns: Netns) => Promise<void>,
): Promise<void> {
  const ns = await Netns.create("fl4");
  try {
    // Every address on the namespace's loopback: traffic never leaves it.
    for (const a of ["1", "2", "3", "10", "11", "20"]) {
      await ns.exec(["ip", "addr", "add", `10.77.0.${a}/32`, "dev", "lo"]);
    }
    await ns.exec(["ip", "addr", "add", "10.78.0.2/32", "dev", "lo"]);
    await fn(ns);
  } finally {
    await ns.delete();
  }
}

async function scenario(ns: Netns, name: string): Promise<Record<string, unknown>> {
  const r = await ns.exec([Deno.execPath(), "run", "-A", lab, name], { timeoutMs: 30_000 });
  const line = r.stdout.trim().split("\n").at(-1) ?? "";
  return JSON.parse(line);
}

Deno.test({
  name: "persistence keeps a client /24 on one server while another /24 is scheduled by rr",
  ignore: !(await canUseNetns()),
  fn: () =>
    withLab(async (ns) => {
      const out = await scenario(ns, "persistence") as {
        answers: Record<string, string[]>;
        services: { dests: { address: string; persistentConns: number }[] }[];
      };
      // rr's list is newest first (s11, s10): the first client gets s11 and a template
      // for 10.77.0.0/24; 10.78.0.2 is scheduled next: s10; 10.77.0.3 shares the /24.
      assert.deepEqual(out.answers["10.77.0.2"], ["s11", "s11", "s11"]);
      assert.deepEqual(out.answers["10.78.0.2"], ["s10", "s10", "s10"]);
      assert.deepEqual(out.answers["10.77.0.3"], ["s11", "s11", "s11"]);
      const dests = out.services[0].dests;
      assert.deepEqual(dests.map((d) => d.persistentConns), [1, 1]);
    }),
});

Deno.test({
  name: "a black-holed server: the connect timeout resets clients and counts the drop",
  ignore: !(await canUseNetns()),
  fn: () =>
    withLab(async (ns) => {
      await ns.exec(["iptables", "-A", "INPUT", "-d", "10.77.0.20", "-p", "tcp", "-j", "DROP"]);
      const out = await scenario(ns, "blackhole") as {
        results: { text: string; error?: string; ms: number }[];
        drops: { services: Record<string, Record<string, number>> };
        table: number;
        leakedFds: number;
      };
      for (const r of out.results) {
        assert.equal(r.text, "");
        assert.equal(r.error, "ECONNRESET");
        assert.ok(r.ms >= 250, `closed only after the 300 ms connect timeout (${r.ms} ms)`);
      }
      assert.equal(out.drops.services.web.connect_timeout, 3);
      assert.equal(out.table, 0, "no table entry is left behind");
      assert.ok(out.leakedFds <= 0, `no socket is left open (${out.leakedFds} more fds)`);
    }),
});
