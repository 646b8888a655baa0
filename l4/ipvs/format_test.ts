import assert from "node:assert/strict";
import { type IpvsDestEntry, type IpvsServiceEntry, ZERO_STATS } from "../../sys/ipvs.ts";
import { formatList, formatSave, largeNumber, type TableEntry } from "./format.ts";

const zero = ZERO_STATS;

function svc(s: Partial<IpvsServiceEntry>): IpvsServiceEntry {
  return {
    family: 4,
    protocol: "tcp",
    scheduler: "rr",
    flags: 2,
    timeout: 0,
    netmask: 0xffffffff,
    stats: zero,
    ...s,
  };
}

function dest(d: Partial<IpvsDestEntry>): IpvsDestEntry {
  return {
    family: 4,
    address: "10.0.1.2",
    port: 80,
    forward: "nat",
    weight: 1,
    upperThreshold: 0,
    lowerThreshold: 0,
    activeConns: 0,
    inactiveConns: 0,
    persistentConns: 0,
    stats: zero,
    ...d,
  };
}

// The same table an ipvsadm 1.31 session built in the VM (see tests/ipvs_inside.ts),
// given here out of order: the formatters must sort as ipvsadm does.
const table: TableEntry[] = [
  {
    service: svc({ fwmark: 7, scheduler: "wlc", flags: 3, timeout: 360 }),
    dests: [dest({ address: "10.0.1.8", port: 0, forward: "dr" })],
  },
  {
    service: svc({
      protocol: "udp",
      address: "10.0.0.1",
      port: 53,
      scheduler: "sh",
      flags: 0x1b,
      timeout: 300,
      netmask: 0xffffff00,
    }),
    dests: [dest({ address: "10.0.1.4", port: 53, forward: "dr" })],
  },
  {
    service: svc({ address: "10.0.0.1", port: 80 }),
    dests: [
      dest({ address: "10.0.1.3", port: 8080, weight: 0 }),
      dest({ address: "10.0.1.2", port: 8080, weight: 3, upperThreshold: 100 }),
    ],
  },
  {
    service: svc({
      protocol: "sctp",
      address: "10.0.0.2",
      port: 3868,
      scheduler: "mh",
      flags: 0x12,
    }),
    dests: [
      dest({
        address: "10.0.1.6",
        port: 3868,
        forward: "tun",
        weight: 2,
        tunnel: { type: "gre", port: 0, csum: "csum" },
      }),
      dest({
        address: "10.0.1.5",
        port: 3868,
        forward: "tun",
        weight: 2,
        tunnel: { type: "gue", port: 6080, csum: "none" },
      }),
      dest({
        address: "10.0.1.7",
        port: 3868,
        forward: "tun",
        weight: 2,
        tunnel: { type: "ipip", port: 0, csum: "none" },
      }),
    ],
  },
  {
    service: svc({
      family: 6,
      address: "2001:db8::1",
      port: 443,
      scheduler: "lc",
      flags: 3,
      timeout: 60,
      netmask: 64,
    }),
    dests: [dest({ family: 6, address: "2001:db8::10", port: 443 })],
  },
];

Deno.test("fulcrum ipvs list prints what ipvsadm -Ln prints, byte for byte", () => {
  const expected = [
    "IP Virtual Server version 1.2.1 (size=4096)",
    "Prot LocalAddress:Port Scheduler Flags",
    "  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn",
    "TCP  10.0.0.1:80 rr",
    "  -> 10.0.1.2:8080                Masq    3      0          0         ",
    "  -> 10.0.1.3:8080                Masq    0      0          0         ",
    "UDP  10.0.0.1:53 sh (sh-fallback,sh-port) persistent 300 mask 255.255.255.0",
    "  -> 10.0.1.4:53                  Route   1      0          0         ",
    "SCTP 10.0.0.2:3868 mh (mh-port)",
    "  -> 10.0.1.5:3868                Tunnel  2      0          0         ",
    "  -> 10.0.1.6:3868                Tunnel  2      0          0         ",
    "  -> 10.0.1.7:3868                Tunnel  2      0          0         ",
    "TCP  [2001:db8::1]:443 lc persistent 60 mask 64",
    "  -> [2001:db8::10]:443           Masq    1      0          0         ",
    "FWM  7 wlc persistent 360",
    "  -> 10.0.1.8:0                   Route   1      0          0         ",
    "",
  ].join("\n");
  assert.equal(formatList({ version: 0x010201, connTabSize: 4096 }, table), expected);
});

Deno.test("fulcrum ipvs save prints what ipvsadm-save -n prints, tunnels included", () => {
  const expected = [
    "-A -t 10.0.0.1:80 -s rr",
    "-a -t 10.0.0.1:80 -r 10.0.1.2:8080 -m -w 3",
    "-a -t 10.0.0.1:80 -r 10.0.1.3:8080 -m -w 0",
    "-A -u 10.0.0.1:53 -s sh -p 300 -M 255.255.255.0 -b sh-fallback,sh-port",
    "-a -u 10.0.0.1:53 -r 10.0.1.4:53 -g -w 1",
    "-A --sctp-service 10.0.0.2:3868 -s mh -b mh-port",
    "-a --sctp-service 10.0.0.2:3868 -r 10.0.1.5:3868 -i -w 2 --tun-type gue --tun-port 6080 --tun-nocsum",
    "-a --sctp-service 10.0.0.2:3868 -r 10.0.1.6:3868 -i -w 2 --tun-type gre --tun-csum",
    "-a --sctp-service 10.0.0.2:3868 -r 10.0.1.7:3868 -i -w 2 --tun-type ipip",
    "-A -t [2001:db8::1]:443 -s lc -p 60 -M 64",
    "-a -t [2001:db8::1]:443 -r [2001:db8::10]:443 -m -w 1",
    "-A -f 7 -s wlc -p 360",
    "-a -f 7 -r 10.0.1.8:0 -g -w 1",
    "",
  ].join("\n");
  assert.equal(formatSave(table), expected);
  assert.equal(formatSave([]), "");
});

Deno.test("stats lines use ipvsadm's 9-wide columns and K/M/G scaling", () => {
  const t: TableEntry[] = [{
    service: svc({
      address: "10.0.0.1",
      port: 80,
      stats: {
        ...zero,
        conns: 17,
        inPkts: 120,
        outPkts: 98,
        inBytes: 7_960,
        outBytes: 123_456_789_012,
      },
    }),
    dests: [dest({ stats: { ...zero, conns: 9, inBytes: 250_000_000 } })],
  }];
  assert.equal(
    formatList({ version: 0x010201, connTabSize: 4096 }, t, { mode: "stats" }),
    [
      "IP Virtual Server version 1.2.1 (size=4096)",
      "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes",
      "  -> RemoteAddress:Port",
      "TCP  10.0.0.1:80                        17      120       98     7960     123G",
      "  -> 10.0.1.2:80                         9        0        0  250000K        0",
      "",
    ].join("\n"),
  );
  assert.equal(largeNumber(99_999_999), " 99999999");
  assert.equal(largeNumber(5_000_000_000), "    5000M");
});
