import assert from "node:assert/strict";
import { buildModel, type Model } from "../../config/model.ts";
import { configSchema } from "../../config/schema.ts";
import { createLogger } from "../../log.ts";
import type {
  IpvsDaemon,
  IpvsDest,
  IpvsDestEntry,
  IpvsService,
  IpvsServiceEntry,
  IpvsTimeouts,
  ServiceKey,
} from "../../sys/ipvs.ts";
import { ZERO_STATS } from "../../sys/ipvs.ts";
import { destKey, keyOf } from "./desired.ts";
import { type IpvsKernel, Reconciler } from "./reconciler.ts";

const zero = ZERO_STATS;

/**
 * An in-memory IPVS table with the kernel's refusals that matter here (unknown
 * scheduler: ENOENT; existing service: EEXIST; missing entry: ESRCH). The real kernel
 * is exercised by tests/ipvs_vm_test.ts.
 */
class MemoryKernel implements IpvsKernel {
  readonly table = new Map<string, { service: IpvsService; dests: Map<string, IpvsDest> }>();
  readonly schedulers = new Set(["rr", "wrr", "wlc"]);
  writes = 0;
  daemonList: IpvsDaemon[] = [];
  t: IpvsTimeouts = { tcp: 900, tcpFin: 120, udp: 300 };

  #fail(what: string, errno: number): never {
    const e = new Error(`${what}: errno ${errno}`) as Error & { errno: number };
    e.errno = errno;
    throw e;
  }
  #svc(key: ServiceKey) {
    return this.table.get(keyOf(key)) ?? this.#fail("no service", 3);
  }
  newService(s: IpvsService): Promise<void> {
    this.writes++;
    if (!this.schedulers.has(s.scheduler)) this.#fail(`no scheduler "${s.scheduler}"`, 2);
    if (this.table.has(keyOf(s))) this.#fail("exists", 17);
    this.table.set(keyOf(s), { service: { ...s, flags: s.flags | 2 }, dests: new Map() });
    return Promise.resolve();
  }
  setService(s: IpvsService): Promise<void> {
    this.writes++;
    if (!this.schedulers.has(s.scheduler)) this.#fail(`no scheduler "${s.scheduler}"`, 2);
    this.#svc(s).service = { ...s, flags: s.flags | 2 };
    return Promise.resolve();
  }
  delService(k: ServiceKey): Promise<void> {
    this.writes++;
    this.#svc(k);
    this.table.delete(keyOf(k));
    return Promise.resolve();
  }
  newDest(k: ServiceKey, d: IpvsDest): Promise<void> {
    this.writes++;
    const s = this.#svc(k);
    if (s.dests.has(destKey(d))) this.#fail("dest exists", 17);
    s.dests.set(destKey(d), d);
    return Promise.resolve();
  }
  setDest(k: ServiceKey, d: IpvsDest): Promise<void> {
    this.writes++;
    const s = this.#svc(k);
    if (!s.dests.has(destKey(d))) this.#fail("no dest", 3);
    s.dests.set(destKey(d), d);
    return Promise.resolve();
  }
  delDest(k: ServiceKey, d: Pick<IpvsDest, "family" | "address" | "port">): Promise<void> {
    this.writes++;
    if (!this.#svc(k).dests.delete(destKey(d))) this.#fail("no dest", 3);
    return Promise.resolve();
  }
  services(): Promise<IpvsServiceEntry[]> {
    return Promise.resolve([...this.table.values()].map((t) => ({ ...t.service, stats: zero })));
  }
  service(k: ServiceKey): Promise<IpvsServiceEntry | undefined> {
    const t = this.table.get(keyOf(k));
    return Promise.resolve(t ? { ...t.service, stats: zero } : undefined);
  }
  dests(k: ServiceKey): Promise<IpvsDestEntry[]> {
    return Promise.resolve([...this.#svc(k).dests.values()].map((d) => ({
      ...d,
      activeConns: 0,
      inactiveConns: 0,
      persistentConns: 0,
      stats: zero,
    })));
  }
  newDaemon(d: IpvsDaemon): Promise<void> {
    this.writes++;
    this.daemonList.push(d);
    return Promise.resolve();
  }
  delDaemon(state: IpvsDaemon["state"]): Promise<void> {
    this.writes++;
    this.daemonList = this.daemonList.filter((d) => d.state !== state);
    return Promise.resolve();
  }
  daemons(): Promise<IpvsDaemon[]> {
    return Promise.resolve([...this.daemonList]);
  }
  setTimeouts(t: IpvsTimeouts): Promise<void> {
    this.writes++;
    this.t = t;
    return Promise.resolve();
  }
  timeouts(): Promise<IpvsTimeouts> {
    return Promise.resolve(this.t);
  }
  dump(): string {
    return JSON.stringify(
      [...this.table.entries()].sort().map((
        [k, v],
      ) => [k, v.service.scheduler, [...v.dests.values()].map((d) => `${destKey(d)}=${d.weight}`)]),
    );
  }
}

function model(services: unknown[], weights = [1, 2]): Model {
  return buildModel(
    configSchema.parse({
      pools: {
        p: {
          servers: [{ address: "10.0.1.1:80", weight: weights[0] }, {
            address: "10.0.1.2:80",
            weight: weights[1],
          }],
        },
      },
      l4: { services },
    }),
    { path: "t.yaml", hash: "0" },
  );
}

function reconciler(kernel: MemoryKernel): Reconciler {
  return new Reconciler(kernel, {
    log: createLogger({ write: () => {} }),
    lookup: () => undefined,
  });
}

const web = { name: "web", vip: "10.0.0.1:80", scheduler: "wrr", pool: "p" };

Deno.test("a sync programs the table and a second sync changes nothing", async () => {
  const k = new MemoryKernel();
  const r = reconciler(k);
  const first = await r.sync(model([web]), { full: true });
  assert.equal(first.ops.length, 3);
  assert.equal(k.dump(), '[["4|tcp|10.0.0.1|80","wrr",["10.0.1.1:80=1","10.0.1.2:80=2"]]]');
  k.writes = 0;
  assert.equal((await r.sync(model([web]), { full: true })).ops.length, 0);
  assert.equal(k.writes, 0);
});

Deno.test("a reload that changes one weight sends one message", async () => {
  const k = new MemoryKernel();
  const r = reconciler(k);
  await r.sync(model([web]), { full: true });
  k.writes = 0;
  await r.sync(model([web], [1, 7]));
  assert.equal(k.writes, 1);
  assert.match(k.dump(), /10\.0\.1\.2:80=7/);
});

Deno.test("a refused change rolls back what was applied and names the service", async () => {
  const k = new MemoryKernel();
  const r = reconciler(k);
  await r.sync(model([web]), { full: true });
  const before = k.dump();
  const next = model([
    { ...web, scheduler: "rr" },
    { name: "fresh", vip: "10.0.0.2:80", pool: "p", scheduler: "rr" },
    { name: "fancy", vip: "10.0.0.3:80", pool: "p", scheduler: "twos" },
  ], [4, 4]);
  await assert.rejects(
    r.sync(next),
    /l4 service "fancy" \(tcp 10\.0\.0\.3:80\): no scheduler "twos".*; nothing was changed/,
  );
  assert.equal(k.dump(), before);
  assert.equal(r.counters.rollbacks, 1);
  assert.match(r.lastError ?? "", /fancy/);
});

Deno.test("a full sync repairs drift; services it does not own stay", async () => {
  const k = new MemoryKernel();
  await k.newService({
    family: 4,
    protocol: "udp",
    address: "10.99.0.1",
    port: 53,
    scheduler: "rr",
    flags: 0,
    timeout: 0,
    netmask: 0xffffffff,
  });
  const r = reconciler(k);
  await r.sync(model([web]), { full: true });
  const want = k.dump();
  const svc = k.table.get("4|tcp|10.0.0.1|80")!;
  svc.dests.delete("10.0.1.2:80");
  svc.dests.set("10.0.1.1:80", { ...svc.dests.get("10.0.1.1:80")!, weight: 9 });
  const repaired = await r.sync(model([web]), { full: true, repair: true });
  assert.deepEqual(repaired.ops.map((o) => o.kind), ["setDest", "newDest"]);
  assert.equal(k.dump(), want);
  assert.match(want, /10\.99\.0\.1/);
  // Leaving the config removes what Fulcrum owned and still not the foreign one.
  await r.sync(model([]), { full: true });
  assert.equal(k.dump(), '[["4|udp|10.99.0.1|53","rr",[]]]');
});

Deno.test("the sync daemon is switched between master and backup, timeouts set once", async () => {
  const k = new MemoryKernel();
  const r = reconciler(k);
  assert.deepEqual(await r.syncDaemon({ state: "backup", interface: "eth1", syncId: 3 }), [
    "start backup on eth1 sync id 3",
  ]);
  assert.deepEqual(await r.syncDaemon({ state: "master", interface: "eth1", syncId: 3 }), [
    "stop backup",
    "start master on eth1 sync id 3",
  ]);
  assert.deepEqual(await r.syncDaemon({ state: "master", interface: "eth1", syncId: 3 }), []);
  assert.deepEqual(await r.syncDaemon(undefined), ["stop master"]);
  assert.equal(await r.syncTimeouts({ tcp: 600, tcpFin: 30, udp: 45 }), true);
  assert.equal(await r.syncTimeouts({ tcp: 600, tcpFin: 30, udp: 45 }), false);
});

Deno.test("a health change re-plans only the services of that pool, one message per weight", async () => {
  const k = new MemoryKernel();
  const down = new Set<string>();
  const r = new Reconciler(k, {
    log: createLogger({ write: () => {} }),
    lookup: (pool, address) =>
      down.has(`${pool}/${address}`)
        ? {
          pool,
          address,
          health: "down",
          admin: "enabled",
          configuredWeight: 1,
          effectiveWeight: 0,
          reason: "test",
          since: 0,
        }
        : undefined,
  });
  const m = model([
    { ...web, on_down: "quiesce" },
    { name: "other", vip: "10.0.0.2:80", scheduler: "rr", pool: "p" },
  ]);
  await r.sync(m, { full: true });
  k.writes = 0;
  down.add("p/10.0.1.2:80");
  const result = await r.sync(m, { only: new Set(["web"]) });
  assert.deepEqual(result.ops.map((o) => `${o.kind} ${o.name}`), ["setDest web"]);
  assert.equal(k.writes, 1);
  assert.match(
    k.dump(),
    /"4\|tcp\|10\.0\.0\.1\|80","wrr",\["10\.0\.1\.1:80=1","10\.0\.1\.2:80=0"\]/,
  );
  assert.match(
    k.dump(),
    /"4\|tcp\|10\.0\.0\.2\|80","rr",\["10\.0\.1\.1:80=1","10\.0\.1\.2:80=2"\]/,
  );
  assert.deepEqual(r.desired.map((d) => d.name), ["web", "other"]);
});
