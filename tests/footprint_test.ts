/**
 * What the long-running appliance loads: modules it needs only for moments (the YAML
 * parser and zod, in config/isolated.ts's child) or only for some configs (node:net and
 * node:dgram, with the first L4 service) stay out of its static import graph, where
 * they would cost RSS for the whole run.
 */
import assert from "node:assert/strict";

/** One import of a module in `deno info --json`. */
interface Dependency {
  readonly code?: { readonly specifier: string };
  readonly isDynamic?: boolean;
}

/** Every module main.ts reaches through static (not type-only, not dynamic) imports. */
async function staticGraph(): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL("../main.ts", import.meta.url).href],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout));
  const modules = new Map<string, { dependencies?: Dependency[] }>(
    info.modules.map((m: { specifier: string }) => [m.specifier, m]),
  );
  const reached = new Set<string>();
  const queue: string[] = [...info.roots];
  while (queue.length) {
    const specifier = queue.pop()!;
    if (reached.has(specifier)) continue;
    reached.add(specifier);
    for (const dep of modules.get(specifier)?.dependencies ?? []) {
      if (dep.code && !dep.isDynamic) queue.push(dep.code.specifier);
    }
  }
  return [...reached];
}

Deno.test("main.ts never loads the config loader, zod, yaml, node:net or node:dgram statically", async () => {
  const reached = await staticGraph();
  for (const module of ["/config/isolated.ts", "/l7/proxy.ts", "/l4/proxy/mod.ts"]) {
    assert.ok(reached.some((s) => s.endsWith(module)), `the walk reaches ${module}`);
  }
  const heavy = reached.filter((s) =>
    /zod|yaml|\/config\/(load|schema)\.ts$|^node:(net|dgram)$|\/l4\/proxy\/(tcp|udp)\.ts$/.test(s)
  );
  assert.deepEqual(heavy, []);
});
