import assert from "node:assert/strict";
import type { ServiceView } from "./dataplane.ts";
import { formatServices, shortNumber, statusCommand } from "./cli.ts";

const zero = { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };
const stats = { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0 };
function dest(address: string, weight: number, active: number, inactive: number) {
  return {
    address,
    forward: "local" as const,
    weight,
    activeConns: active,
    inactiveConns: inactive,
    persistentConns: 0,
    stats: { ...stats, conns: active + inactive },
    rates: zero,
  };
}
const views: ServiceView[] = [
  {
    name: "udp",
    protocol: "udp",
    vip: "127.0.0.1:5353",
    scheduler: "sh",
    flags: ["sh-port"],
    dests: [dest("127.0.0.1:5301", 1, 0, 2)],
    stats,
    rates: zero,
  },
  {
    name: "web",
    protocol: "tcp",
    vip: "127.0.0.1:8090",
    scheduler: "wlc",
    flags: [],
    persistence: { timeout: 300_000, netmask: "255.255.255.0" },
    dests: [dest("127.0.0.1:8102", 1, 0, 0), dest("127.0.0.1:8101", 2, 3, 1)],
    stats: { conns: 123456, inPkts: 10, outPkts: 20, inBytes: 3000, outBytes: 250_000_000 },
    rates: { ...zero, cps: 12 },
  },
];

Deno.test("the table reads like ipvsadm -Ln, sorted by protocol, address and server", () => {
  assert.equal(
    formatServices(views),
    [
      "Fulcrum L4 director",
      "Prot LocalAddress:Port Scheduler Flags",
      "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
      "TCP  127.0.0.1:8090 wlc persistent 300 mask 255.255.255.0",
      "  -> 127.0.0.1:8101               Local   2      3          1",
      "  -> 127.0.0.1:8102               Local   1      0          0",
      "UDP  127.0.0.1:5353 sh (sh-port)",
      "  -> 127.0.0.1:5301               Local   1      0          2",
      "",
    ].join("\n"),
  );
});

Deno.test("--stats shows counters with ipvsadm's K/M/G abbreviations", () => {
  const text = formatServices(views, "stats");
  assert.match(text, /^TCP {2}127\.0\.0\.1:8090\s+123K\s+10\s+20\s+3000\s+250M$/m);
  assert.match(text, /^ {2}-> 127\.0\.0\.1:8101\s+4\s+0\s+0\s+0\s+0$/m);
  assert.equal(shortNumber(99_999), "99999");
  assert.equal(shortNumber(100_000), "100K");
});

Deno.test("--rate shows the estimator's rates", () => {
  assert.match(formatServices(views, "rate"), /^TCP {2}127\.0\.0\.1:8090\s+12\s+0\s+0\s+0\s+0$/m);
});

Deno.test("status l4 fetches the services from the admin API and prints them", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    return new URL(req.url).pathname === "/api/v1/services"
      ? Response.json(views)
      : new Response("no", { status: 404 });
  });
  const printed: string[] = [];
  const write = Deno.stdout.writeSync;
  Deno.stdout.writeSync = (b: Uint8Array) => {
    printed.push(new TextDecoder().decode(b));
    return b.length;
  };
  try {
    const code = await statusCommand([], { adminUrl: `http://127.0.0.1:${server.addr.port}` });
    assert.equal(code, 0);
  } finally {
    Deno.stdout.writeSync = write;
    await server.shutdown();
  }
  assert.match(printed.join(""), /TCP {2}127\.0\.0\.1:8090 wlc/);
});

Deno.test("status l4 exits 1 with advice when the appliance is not running", async () => {
  const errors: string[] = [];
  const original = console.error;
  console.error = (m: string) => errors.push(m);
  try {
    assert.equal(await statusCommand([], { adminUrl: "http://127.0.0.1:9" }), 1);
    assert.equal(await statusCommand(["--bogus"], { adminUrl: "http://127.0.0.1:9" }), 2);
  } finally {
    console.error = original;
  }
  assert.match(errors[0], /cannot reach the appliance at http:\/\/127\.0\.0\.1:9/);
  assert.match(errors[1], /use --stats, --rate or --json/);
});
