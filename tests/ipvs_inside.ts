/**
 * The IPVS suite that runs INSIDE the VM (tests/ipvs_vm.sh), started by
 * tests/ipvs_vm_test.ts as `deno test -A --no-check tests/ipvs_inside.ts`. It needs a
 * kernel with ip_vs and ipvsadm, so it is not named *_test.ts: the host suite does not
 * pick it up. Every test flushes IPVS first; namespaces are removed in `finally`.
 * @module
 */
import assert from "node:assert/strict";
import { buildModel, type Model } from "../config/model.ts";
import { diff } from "../config/diff.ts";
import { configSchema } from "../config/schema.ts";
import { ServerStates } from "../health/state.ts";
import { RoleBoard } from "../vrrp/role.ts";
import { createLogger } from "../log.ts";
import { createIpvsDataplane, ipvsAvailable } from "../l4/ipvs/mod.ts";
import { formatList, formatSave } from "../l4/ipvs/format.ts";
import { observeAll } from "../l4/ipvs/reconciler.ts";
import { IpvsClient } from "../sys/ipvs.ts";
import type { SubsystemDeps } from "../subsystem.ts";
import { SCHEDULERS } from "../config/schema.ts";

/** Every scheduler but twos, which this Debian kernel does not ship as a module. */
const SCHEDS = SCHEDULERS.filter((s) => s !== "twos");

async function sh(cmd: string, check = true): Promise<string> {
  const out = await new Deno.Command("sh", { args: ["-c", cmd], stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (check && !out.success) {
    throw new Error(`${cmd} failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`);
  }
  return text;
}

function model(config: unknown): Model {
  return buildModel(configSchema.parse(config), { path: "inside.yaml", hash: "0" });
}

function deps(states = new ServerStates(), roles = new RoleBoard()): SubsystemDeps {
  return { states, roles, log: createLogger({ write: () => {} }) };
}

function up(states: ServerStates, pool: string, address: string, weight: number, extra = {}) {
  states.set({
    pool,
    address,
    health: "up",
    admin: "enabled",
    configuredWeight: weight,
    effectiveWeight: weight,
    reason: "test",
    since: 0,
    ...extra,
  });
}

async function until(what: string, ok: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const TUNNELS = [
  { type: "ipip" },
  { type: "gue", port: 6080, csum: "csum" },
  { type: "gre", csum: "remcsum" },
];

function schedulerConfig() {
  const services = SCHEDS.map((s, i) => {
    const forward = ["nat", "dr", "tun"][i % 3];
    return {
      name: `svc-${s}`,
      vip: `10.0.0.${i + 1}:80`,
      scheduler: s,
      forward,
      pool: "p",
      ...(forward === "tun" ? { tunnel: TUNNELS[Math.floor(i / 3) % 3] } : {}),
      ...(s === "sh"
        ? {
          scheduler_flags: ["sh-fallback", "sh-port"],
          persistence: { timeout: "5m", netmask: "255.255.255.0" },
        }
        : {}),
      ...(s === "mh" ? { scheduler_flags: ["mh-port"] } : {}),
    };
  });
  services.push(
    {
      name: "dns",
      vip: "10.0.0.100:53",
      protocol: "udp",
      scheduler: "rr",
      forward: "nat",
      pool: "p",
    } as never,
    {
      name: "diameter",
      vip: "10.0.0.101:3868",
      protocol: "sctp",
      scheduler: "wlc",
      forward: "dr",
      pool: "p",
    } as never,
    {
      name: "marked",
      fwmark: 7,
      scheduler: "wlc",
      forward: "dr",
      pool: "p",
      persistence: { timeout: "360s" },
    } as never,
    {
      name: "v6",
      vip: "[2001:db8::1]:443",
      scheduler: "lc",
      forward: "nat",
      pool: "p6",
      persistence: { timeout: "60s", netmask: "64" },
    } as never,
  );
  return {
    pools: {
      p: {
        servers: [{ address: "10.0.1.1:80", weight: 1 }, {
          address: "10.0.1.2:80",
          weight: 2,
          upper_threshold: 50,
          lower_threshold: 5,
        }],
      },
      p6: { servers: [{ address: "[2001:db8::10]:443", weight: 4 }] },
    },
    l4: { services },
  };
}

/** What ipvsadm-save -n must print for schedulerConfig(), written from the config by hand rules. */
function expectedSave(): string {
  const lines: string[] = [];
  SCHEDS.forEach((s, i) => {
    const vip = `10.0.0.${i + 1}:80`;
    const forward = ["-m", "-g", "-i"][i % 3];
    let head = `-A -t ${vip} -s ${s}`;
    if (s === "sh") head += " -p 300 -M 255.255.255.0 -b sh-fallback,sh-port";
    if (s === "mh") head += " -b mh-port";
    lines.push(head);
    let tun = "";
    if (forward === "-i") {
      const t = TUNNELS[Math.floor(i / 3) % 3];
      tun = ` --tun-type ${t.type}` + (t.type === "gue" ? " --tun-port 6080 --tun-csum" : "") +
        (t.type === "gre" ? " --tun-remcsum" : "");
    }
    lines.push(`-a -t ${vip} -r 10.0.1.1:80 ${forward} -w 1${tun}`);
    lines.push(`-a -t ${vip} -r 10.0.1.2:80 ${forward} -w 2${tun}`);
  });
  lines.push(
    "-A -u 10.0.0.100:53 -s rr",
    "-a -u 10.0.0.100:53 -r 10.0.1.1:80 -m -w 1",
    "-a -u 10.0.0.100:53 -r 10.0.1.2:80 -m -w 2",
    "-A --sctp-service 10.0.0.101:3868 -s wlc",
    "-a --sctp-service 10.0.0.101:3868 -r 10.0.1.1:80 -g -w 1",
    "-a --sctp-service 10.0.0.101:3868 -r 10.0.1.2:80 -g -w 2",
    "-A -t [2001:db8::1]:443 -s lc -p 60 -M 64",
    "-a -t [2001:db8::1]:443 -r [2001:db8::10]:443 -m -w 4",
    "-A -f 7 -s wlc -p 360",
    "-a -f 7 -r 10.0.1.1:80 -g -w 1",
    "-a -f 7 -r 10.0.1.2:80 -g -w 2",
  );
  return lines.join("\n") + "\n";
}

Deno.test("the IPVS family is found inside the VM", async () => {
  assert.equal(await ipvsAvailable(), true);
});

Deno.test("every scheduler and forwarding method is programmed as ipvsadm shows it", async () => {
  await sh("ipvsadm -C");
  const plane = createIpvsDataplane(deps(), { resyncMs: 0 });
  await plane.start(model(schedulerConfig()));
  try {
    const save = await sh("ipvsadm-save -n");
    assert.equal(save, expectedSave());
    // Thresholds are not in ipvsadm-save; --thresholds shows them.
    const thr = await sh("ipvsadm -Ln --thresholds -t 10.0.0.1:80");
    assert.match(thr, /10\.0\.1\.2:80\s+50\s+5\s/);
    // Fulcrum's own list/save print exactly what ipvsadm prints.
    const client = await IpvsClient.open();
    try {
      const table = await observeAll(client);
      assert.equal(formatSave(table), save);
      assert.equal(formatList(await client.info(), table), await sh("ipvsadm -Ln"));
      assert.equal(
        formatList(await client.info(), table, { mode: "rate" }),
        await sh("ipvsadm -Ln --rate"),
      );
    } finally {
      client.close();
    }
    // And so does the CLI (`fulcrum ipvs list` / `save` → l4/ipvs/cli.ts).
    const cli = (sub: string) =>
      sh(`"${Deno.execPath()}" run -A --no-check --frozen l4/ipvs/cli.ts ${sub}`);
    assert.equal(await cli("list"), await sh("ipvsadm -Ln"));
    assert.equal(await cli("save"), save);
    const views = await plane.services();
    assert.equal(views.length, SCHEDS.length + 4);
    assert.deepEqual(views.find((v) => v.name === "svc-sh")?.flags, [
      "persistent",
      "sh-fallback",
      "sh-port",
    ]);
  } finally {
    await plane.stop();
  }
  assert.equal(await sh("ipvsadm-save -n"), "", "stop removes the services Fulcrum owns");
});

Deno.test("errors name the service and leave the kernel as it was", async () => {
  await sh("ipvsadm -C");
  await sh("ipvsadm -A -t 10.99.0.1:80 -s rr");
  const before = await sh("ipvsadm-save -n");
  const base = { pools: { p: { servers: [{ address: "10.0.1.1:80" }] } } };
  const cases: [unknown, RegExp][] = [
    [
      {
        ...base,
        l4: {
          services: [{ name: "ok", vip: "10.0.0.1:80", pool: "p" }, {
            name: "fancy",
            vip: "10.0.0.2:80",
            scheduler: "twos",
            pool: "p",
          }],
        },
      },
      /l4 service "fancy" \(tcp 10\.0\.0\.2:80\).*no scheduler "twos".*nothing was changed/,
    ],
    [
      {
        ...base,
        l4: {
          services: [{ name: "a", vip: "10.0.0.1:80", pool: "p" }, {
            name: "b",
            vip: "10.0.0.1:80",
            pool: "p",
          }],
        },
      },
      /l4 service "b" duplicates service "a"/,
    ],
    [
      {
        pools: { p: { servers: [{ address: "[2001:db8::2]:80" }] } },
        l4: { services: [{ name: "mixed", vip: "10.0.0.1:80", pool: "p" }] },
      },
      /l4 service "mixed" \(tcp 10\.0\.0\.1:80\) is IPv4 but real server \[2001:db8::2\]:80 is IPv6/,
    ],
  ];
  for (const [config, pattern] of cases) {
    const plane = createIpvsDataplane(deps(), { resyncMs: 0 });
    await assert.rejects(plane.start(model(config)), pattern);
    assert.equal(await sh("ipvsadm-save -n"), before, `nothing half-applied for ${pattern}`);
  }
  await sh("ipvsadm -C");
});

Deno.test("a failing reload is rolled back and the previous table stays", async () => {
  await sh("ipvsadm -C");
  const config = {
    pools: { p: { servers: [{ address: "10.0.1.1:80", weight: 3 }] } },
    l4: { services: [{ name: "web", vip: "10.0.0.1:80", scheduler: "rr", pool: "p" }] },
  };
  const plane = createIpvsDataplane(deps(), { resyncMs: 0 });
  const m1 = model(config);
  await plane.start(m1);
  try {
    const before = await sh("ipvsadm-save -n");
    const m2 = model({
      ...config,
      pools: { p: { servers: [{ address: "10.0.1.1:80", weight: 9 }] } },
      l4: {
        services: [...config.l4.services, {
          name: "bad",
          vip: "10.0.0.2:80",
          scheduler: "twos",
          pool: "p",
        }],
      },
    });
    await assert.rejects(plane.apply(m2, diff(m1, m2)), /l4 service "bad".*nothing was changed/);
    assert.equal(await sh("ipvsadm-save -n"), before);
    // A reload that moves the service to another VIP and scheduler leaves no orphan.
    const m3 = model({
      ...config,
      l4: { services: [{ name: "web", vip: "10.0.0.5:80", scheduler: "wlc", pool: "p" }] },
    });
    await plane.apply(m3, diff(m1, m3));
    assert.equal(
      await sh("ipvsadm-save -n"),
      "-A -t 10.0.0.5:80 -s wlc\n-a -t 10.0.0.5:80 -r 10.0.1.1:80 -m -w 3\n",
    );
  } finally {
    await plane.stop();
  }
});

Deno.test("health verdicts set kernel weights; a one-weight reload sends one message", async () => {
  await sh("ipvsadm -C");
  const states = new ServerStates();
  for (const pool of ["p", "q"]) {
    up(states, pool, "10.0.1.1:80", 1);
    up(states, pool, "10.0.1.2:80", 2);
  }
  let writes = 0;
  const plane = createIpvsDataplane(deps(states), {
    resyncMs: 0,
    onMessage: (kind) => void (kind === "write" && writes++),
  });
  const servers = (w: number) => ({
    servers: [{ address: "10.0.1.1:80", weight: 1 }, { address: "10.0.1.2:80", weight: w }],
  });
  const config = (w: number) => ({
    pools: { p: servers(w), q: servers(2) },
    l4: {
      services: [
        { name: "web", vip: "10.0.0.1:80", scheduler: "wrr", pool: "p", on_down: "quiesce" },
        { name: "web2", vip: "10.0.0.2:80", scheduler: "wrr", pool: "q", on_down: "remove" },
      ],
    },
  });
  const m1 = model(config(2));
  await plane.start(m1);
  try {
    // down: quiesce → weight 0 on "web"; remove → gone from "web2".
    for (const pool of ["p", "q"]) {
      states.set({ ...states.get(pool, "10.0.1.1:80")!, health: "down", effectiveWeight: 0 });
      await plane.serverChanged(pool, "10.0.1.1:80");
    }
    let save = await sh("ipvsadm-save -n");
    assert.match(save, /-a -t 10\.0\.0\.1:80 -r 10\.0\.1\.1:80 -m -w 0/);
    assert.doesNotMatch(save, /-a -t 10\.0\.0\.2:80 -r 10\.0\.1\.1:80/);
    // drain → weight 0; disabled → removed.
    states.set({ ...states.get("q", "10.0.1.2:80")!, admin: "drain", effectiveWeight: 0 });
    await plane.serverChanged("q", "10.0.1.2:80");
    assert.match(await sh("ipvsadm-save -n"), /-a -t 10\.0\.0\.2:80 -r 10\.0\.1\.2:80 -m -w 0/);
    states.set({ ...states.get("p", "10.0.1.2:80")!, admin: "disabled", effectiveWeight: 0 });
    await plane.serverChanged("p", "10.0.1.2:80");
    save = await sh("ipvsadm-save -n");
    assert.doesNotMatch(save, /-a -t 10\.0\.0\.1:80 -r 10\.0\.1\.2:80/);
    // back up → weights return.
    for (const pool of ["p", "q"]) {
      up(states, pool, "10.0.1.1:80", 1);
      up(states, pool, "10.0.1.2:80", 2);
      await plane.serverChanged(pool, "10.0.1.1:80");
    }
    assert.match(await sh("ipvsadm-save -n"), /-a -t 10\.0\.0\.1:80 -r 10\.0\.1\.2:80 -m -w 2/);
    // a reload changing one weight (the health table follows the config) = one write.
    up(states, "p", "10.0.1.2:80", 7);
    const m2 = model(config(7));
    writes = 0;
    await plane.apply(m2, diff(m1, m2));
    assert.equal(writes, 1, "one weight, one message");
    assert.match(await sh("ipvsadm-save -n"), /-a -t 10\.0\.0\.1:80 -r 10\.0\.1\.2:80 -m -w 7/);
    assert.equal((plane.status().messages as { write: number }).write > 1, true);
  } finally {
    await plane.stop();
  }
});

Deno.test("drift is repaired and foreign services are left alone unless told", async () => {
  await sh("ipvsadm -C");
  await sh("ipvsadm -A -t 10.99.0.1:80 -s rr && ipvsadm -a -t 10.99.0.1:80 -r 10.99.1.1:80 -m");
  const config = (foreign: string) => ({
    pools: { p: { servers: [{ address: "10.0.1.1:80" }, { address: "10.0.1.2:80" }] } },
    l4: {
      foreign_services: foreign,
      services: [{ name: "web", vip: "10.0.0.1:80", scheduler: "rr", pool: "p" }],
    },
  });
  const plane = createIpvsDataplane(deps(), { resyncMs: 300 });
  const m1 = model(config("keep"));
  await plane.start(m1);
  try {
    const want = await sh("ipvsadm-save -n");
    assert.match(want, /-A -t 10\.99\.0\.1:80 -s rr/);
    await sh("ipvsadm -d -t 10.0.0.1:80 -r 10.0.1.2:80");
    await sh("ipvsadm -e -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 9");
    await until(
      "the deleted dest to come back",
      async () => (await sh("ipvsadm-save -n")) === want,
    );
    await sh("ipvsadm -D -t 10.0.0.1:80");
    await until(
      "the deleted service to come back",
      async () => (await sh("ipvsadm-save -n")) === want,
    );
    assert.ok((plane.status().counters as { repairs: number }).repairs >= 3);
    const m2 = model(config("remove"));
    await plane.apply(m2, diff(m1, m2));
    assert.doesNotMatch(await sh("ipvsadm-save -n"), /10\.99\.0\.1/);
  } finally {
    await plane.stop();
    await sh("ipvsadm -C");
  }
});

Deno.test("timeouts, defense sysctls and the sync daemon follow config and VRRP role", async () => {
  await sh("ipvsadm -C");
  const roles = new RoleBoard();
  const plane = createIpvsDataplane(deps(new ServerStates(), roles), { resyncMs: 0 });
  const base = model({
    l4: {
      timeouts: { tcp: "10m", tcp_fin: "30s", udp: "45s" },
      defense: { drop_entry: 1, secure_tcp: 3, amemthresh: 2048 },
      sync_daemon: { interface: "lo", sync_id: 9 },
    },
  });
  const withVrrp: Model = {
    ...base,
    vrrp: { ...base.vrrp, instances: [{ name: "vi1" } as never] },
  };
  await plane.start(withVrrp);
  try {
    assert.equal((await sh("ipvsadm -L --timeout")).trim(), "Timeout (tcp tcpfin udp): 600 30 45");
    assert.equal((await sh("cat /proc/sys/net/ipv4/vs/drop_entry")).trim(), "1");
    assert.equal((await sh("cat /proc/sys/net/ipv4/vs/secure_tcp")).trim(), "3");
    assert.equal((await sh("cat /proc/sys/net/ipv4/vs/amemthresh")).trim(), "2048");
    assert.match(await sh("ipvsadm -L --daemon"), /^backup sync daemon \(mcast=lo, syncid=9/);
    roles.set("vi1", "master");
    await until(
      "the master sync daemon",
      async () => /^master sync daemon \(mcast=lo, syncid=9/.test(await sh("ipvsadm -L --daemon")),
    );
    assert.doesNotMatch(await sh("ipvsadm -L --daemon"), /backup/);
    roles.set("vi1", "backup");
    await until(
      "the backup sync daemon",
      async () => /^backup sync daemon/.test(await sh("ipvsadm -L --daemon")),
    );
  } finally {
    await plane.stop();
    await sh(
      "echo 0 > /proc/sys/net/ipv4/vs/drop_entry; echo 0 > /proc/sys/net/ipv4/vs/secure_tcp; echo 1024 > /proc/sys/net/ipv4/vs/amemthresh",
    );
    await sh("ipvsadm --set 900 120 300");
  }
  assert.equal(
    (await sh("ipvsadm -L --daemon")).trim(),
    "",
    "stop stops the sync daemon it started",
  );
});

// ---------------------------------------------------------------- traffic

interface Lab {
  readonly namespaces: string[];
  readonly servers: Deno.ChildProcess[];
}

async function lab(): Promise<Lab> {
  const l: Lab = { namespaces: ["fcl", "frs1", "frs2"], servers: [] };
  await sh(
    "sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.all.accept_local=1",
  );
  await sh(
    "ip netns add fcl && ip link add fcl0 type veth peer name fcl1 && ip link set fcl1 netns fcl",
  );
  await sh(
    "ip addr add 10.9.0.1/24 dev fcl0 && ip addr add 10.9.0.100/24 dev fcl0 && ip link set fcl0 up",
  );
  await sh(
    "ip netns exec fcl sh -c 'ip link set lo up; ip addr add 10.9.0.2/24 dev fcl1; ip link set fcl1 up; ip route add default via 10.9.0.1'",
  );
  for (const i of [1, 2]) {
    const ns = `frs${i}`;
    await sh(
      `ip netns add ${ns} && ip link add frs${i}a type veth peer name frs${i}b && ip link set frs${i}b netns ${ns}`,
    );
    await sh(
      `ip addr add 10.1.${i}.1/24 dev frs${i}a && ip link set frs${i}a up && sysctl -qw net.ipv4.conf.frs${i}a.rp_filter=0 net.ipv4.conf.frs${i}a.accept_local=1`,
    );
    await sh(
      `ip netns exec ${ns} sh -c 'ip link set lo up; ip addr add 10.1.${i}.2/24 dev frs${i}b; ip link set frs${i}b up; ip route add default via 10.1.${i}.1; ip addr add 10.9.0.100/32 dev lo; sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.all.rp_filter=0'`,
    );
    await sh(`mkdir -p /tmp/www${i} && echo rs${i} > /tmp/www${i}/index.html`);
    l.servers.push(
      new Deno.Command("ip", {
        args: ["netns", "exec", ns, "busybox", "httpd", "-f", "-p", "80", "-h", `/tmp/www${i}`],
        stdout: "null",
        stderr: "null",
      }).spawn(),
    );
  }
  await until("the real servers", async () => {
    const a = await sh("ip netns exec fcl curl -sS -m 2 http://10.1.1.2/ 2>/dev/null", false);
    const b = await sh("ip netns exec fcl curl -sS -m 2 http://10.1.2.2/ 2>/dev/null", false);
    return a.trim() === "rs1" && b.trim() === "rs2";
  });
  return l;
}

async function teardown(l: Lab): Promise<void> {
  for (const s of l.servers) {
    try {
      s.kill("SIGKILL");
      await s.status;
    } catch { /* gone */ }
  }
  for (const ns of l.namespaces) await sh(`ip netns del ${ns}`, false);
  await sh("ip link del fcl0; ip link del frs1a; ip link del frs2a", false);
}

async function requests(n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    out.push((await sh("ip netns exec fcl curl -sS -m 3 http://10.9.0.100/")).trim());
  }
  return out;
}

Deno.test("traffic through a VIP: NAT and DR spread as the scheduler says; health moves it; stats match", async () => {
  await sh("ipvsadm -C");
  const l = await lab();
  const states = new ServerStates();
  const plane = createIpvsDataplane(deps(states), { resyncMs: 0 });
  const cfg = (scheduler: string, forward: string, w2 = 1) => ({
    pools: {
      nat: {
        servers: [{ address: "10.1.1.2:80", weight: 1 }, { address: "10.1.2.2:80", weight: w2 }],
      },
    },
    l4: {
      services: [{
        name: "web",
        vip: "10.9.0.100:80",
        scheduler,
        forward,
        pool: "nat",
        on_down: "quiesce",
      }],
    },
  });
  try {
    const m1 = model(cfg("rr", "nat"));
    await plane.start(m1);
    const rr = await requests(6);
    // The kernel keeps dests newest-first, so rr alternates starting from either one.
    for (let i = 1; i < rr.length; i++) assert.notEqual(rr[i], rr[i - 1], `rr alternates: ${rr}`);
    assert.equal(rr.filter((x) => x === "rs1").length, 3);

    const m2 = model(cfg("wrr", "nat", 3));
    await plane.apply(m2, diff(m1, m2));
    const wrr = await requests(8);
    assert.equal(wrr.filter((x) => x === "rs2").length, 6, `wrr 1:3 → ${wrr}`);

    states.set({
      pool: "nat",
      address: "10.1.2.2:80",
      health: "down",
      admin: "enabled",
      configuredWeight: 3,
      effectiveWeight: 0,
      reason: "test",
      since: 0,
    });
    await plane.serverChanged("nat", "10.1.2.2:80");
    assert.match(await sh("ipvsadm-save -n"), /-r 10\.1\.2\.2:80 -m -w 0/);
    assert.deepEqual(await requests(3), ["rs1", "rs1", "rs1"]);

    // Stats read back over netlink print exactly as ipvsadm --stats (no traffic between reads).
    // The kernel folds per-CPU counters into what it reports every 2 s (its estimator).
    const client = await IpvsClient.open();
    try {
      await until(
        "the counters to catch up",
        async () => (await observeAll(client))[0].service.stats.conns === 17,
      );
      const table = await observeAll(client);
      assert.equal(
        formatList(await client.info(), table, { mode: "stats" }),
        await sh("ipvsadm -Ln --stats"),
      );
      const views = await plane.services();
      assert.equal(views[0].stats.conns, 17);
      assert.equal(views[0].dests.reduce((s, d) => s + d.stats.conns, 0), 17);
    } finally {
      client.close();
    }

    up(states, "nat", "10.1.2.2:80", 1);
    const m3 = model(cfg("rr", "dr"));
    await plane.apply(m3, diff(m2, m3));
    assert.match(await sh("ipvsadm-save -n"), /-r 10\.1\.1\.2:80 -g -w 1/);
    const dr = await requests(4);
    assert.equal(dr.filter((x) => x === "rs1").length, 2, `dr rr → ${dr}`);
  } finally {
    await plane.stop();
    await teardown(l);
  }
});

Deno.test("zero and flush clear counters and the whole table", async () => {
  await sh("ipvsadm -C");
  await sh("ipvsadm -A -t 10.98.0.1:80 -s rr && ipvsadm -a -t 10.98.0.1:80 -r 10.98.1.1:80 -m");
  const client = await IpvsClient.open();
  try {
    await client.zero();
    assert.equal((await client.services()).length, 1);
    await client.flush();
    assert.deepEqual(await client.services(), []);
    assert.equal(await sh("ipvsadm-save -n"), "");
    await client.setTimeouts({ tcp: 901, tcpFin: 121, udp: 301 });
    assert.deepEqual(await client.timeouts(), { tcp: 901, tcpFin: 121, udp: 301 });
    assert.equal(
      (await sh("ipvsadm -L --timeout")).trim(),
      "Timeout (tcp tcpfin udp): 901 121 301",
    );
    await client.setTimeouts({ tcp: 900, tcpFin: 120, udp: 300 });
  } finally {
    client.close();
  }
});

Deno.test("fulcrum run with dataplane auto picks IPVS, programs the kernel and cleans up on stop", async () => {
  await sh("ipvsadm -C");
  const yaml = [
    "admin: { listen: 127.0.0.1:19090 }",
    "pools:",
    "  web:",
    "    check: { type: none }",
    "    servers:",
    "      - { address: 10.0.1.1:80, weight: 2 }",
    "      - { address: 10.0.1.2:80, weight: 3 }",
    "l4:",
    "  dataplane: auto",
    "  services:",
    "    - { name: web, vip: 10.0.0.1:80, scheduler: wrr, pool: web }",
    "",
  ].join("\n");
  await Deno.writeTextFile("/tmp/fulcrum-ipvs.yaml", yaml);
  await sh("ip addr add 10.0.0.1/32 dev lo");
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--no-check",
      "--frozen",
      "main.ts",
      "run",
      "-c",
      "/tmp/fulcrum-ipvs.yaml",
    ],
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const stderr = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let log = "";
  const reading = (async () => {
    for (;;) {
      const { value, done } = await stderr.read();
      if (done) return;
      log += value;
    }
  })();
  try {
    let status: {
      subsystems?: Record<string, { dataplane?: string; reason?: string; state?: string }>;
    } = {};
    await until("the appliance to start", async () => {
      if (log.includes("not started")) throw new Error("the appliance refused to start");
      try {
        const res = await fetch("http://127.0.0.1:19090/api/v1/status");
        status = await res.json();
        return status.subsystems?.l4?.state === "running";
      } catch {
        return false;
      }
    }, 60_000).catch((e) => {
      throw new Error(`${e.message}; its log:\n${log}`);
    });
    assert.equal(status.subsystems?.l4?.dataplane, "ipvs");
    assert.equal(status.subsystems?.l4?.reason, "auto: the kernel has IPVS");
    assert.equal(
      await sh("ipvsadm-save -n"),
      "-A -t 10.0.0.1:80 -s wrr\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 2\n-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m -w 3\n",
    );
  } finally {
    try {
      child.kill("SIGTERM");
    } catch { /* it already exited; the assertions above say why */ }
    await child.status;
    await reading;
    await sh("ip addr del 10.0.0.1/32 dev lo", false);
  }
  assert.equal(await sh("ipvsadm-save -n"), "", `stop removes what it programmed; log:\n${log}`);
});
