/**
 * Runs one L4 scenario inside the network namespace it is started in (by
 * tests/l4_netns_test.ts via `ip netns exec`) and prints its results as one JSON line.
 * Everything — backends, the userspace plane, clients — uses addresses of that
 * namespace only.
 *
 *   deno run -A tests/l4_lab.ts persistence|blackhole
 * @module
 */
import net from "node:net";
import { configSchema } from "../config/schema.ts";
import { buildModel } from "../config/model.ts";
import { ServerStates } from "../health/state.ts";
import { createLogger } from "../log.ts";
import { createUserspacePlane } from "../l4/proxy/mod.ts";

/** A backend that answers each connection with its name and closes. */
async function namedBackend(host: string, port: number, name: string): Promise<net.Server> {
  const server = net.createServer((s) => {
    s.on("error", () => {});
    s.end(name);
  });
  await new Promise<void>((r) => server.listen(port, host, r));
  return server;
}

/** Connects from `localAddress`, returns what the server said ("" when reset). */
function ask(host: string, port: number, localAddress: string) {
  return new Promise<{ text: string; error?: string; ms: number }>((resolve) => {
    const started = performance.now();
    const chunks: Uint8Array[] = [];
    const c = net.connect({ host, port, localAddress });
    c.on("data", (d: Uint8Array) => chunks.push(d));
    c.on(
      "error",
      (e: NodeJS.ErrnoException) =>
        resolve({ text: "", error: e.code, ms: performance.now() - started }),
    );
    c.on(
      "close",
      () =>
        resolve({
          text: new TextDecoder().decode(Buffer.concat(chunks)),
          ms: performance.now() - started,
        }),
    );
  });
}

function model(config: unknown) {
  return buildModel(configSchema.parse(config), { path: "lab.yaml", hash: "0" });
}

async function persistence(): Promise<unknown> {
  const backends = [
    await namedBackend("10.77.0.10", 8080, "s10"),
    await namedBackend("10.77.0.11", 8080, "s11"),
  ];
  const plane = createUserspacePlane({
    states: new ServerStates(),
    log: createLogger({ write: () => {} }),
  });
  await plane.start(model({
    pools: { web: { servers: [{ address: "10.77.0.10:8080" }, { address: "10.77.0.11:8080" }] } },
    l4: {
      dataplane: "userspace",
      services: [{
        name: "web",
        vip: "10.77.0.1:80",
        pool: "web",
        scheduler: "rr",
        persistence: { timeout: "5m", netmask: "255.255.255.0" },
      }],
    },
  }));
  const answers: Record<string, string[]> = {};
  try {
    for (const client of ["10.77.0.2", "10.78.0.2", "10.77.0.3"]) {
      answers[client] = [];
      for (let i = 0; i < 3; i++) answers[client].push((await ask("10.77.0.1", 80, client)).text);
    }
    return { answers, services: plane.services() };
  } finally {
    await plane.stop();
    for (const b of backends) b.close();
  }
}

async function blackhole(): Promise<unknown> {
  const fds = () => [...Deno.readDirSync("/proc/self/fd")].length;
  const plane = createUserspacePlane({
    states: new ServerStates(),
    log: createLogger({ write: () => {} }),
  });
  await plane.start(model({
    pools: { web: { servers: [{ address: "10.77.0.20:80" }] } },
    l4: {
      dataplane: "userspace",
      services: [{ name: "web", vip: "10.77.0.1:80", pool: "web", timeouts: { connect: "300ms" } }],
    },
  }));
  try {
    const before = fds();
    const results = await Promise.all([1, 2, 3].map(() => ask("10.77.0.1", 80, "10.77.0.2")));
    // the clients' sockets close a little after their reset: give them up to 2 s
    for (let i = 0; i < 20 && fds() > before; i++) await new Promise((r) => setTimeout(r, 100));
    return { results, drops: plane.drops(), table: plane.table.size, leakedFds: fds() - before };
  } finally {
    await plane.stop();
  }
}

const scenario = Deno.args[0];
const result = scenario === "persistence"
  ? await persistence()
  : scenario === "blackhole"
  ? await blackhole()
  : { error: `unknown scenario "${scenario}"; use persistence or blackhole` };
console.log(JSON.stringify(result));
