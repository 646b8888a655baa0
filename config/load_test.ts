import assert from "node:assert/strict";
import { formatError, loadConfigFile, loadConfigText } from "./load.ts";

const localAddresses = () => ["127.0.0.1", "192.0.2.5"];

/** Bad configs and the exact located messages `fulcrum check` prints for them. */
const BAD: { name: string; yaml: string; errors: string[] }[] = [
  {
    name: "a misspelt server key with a hint",
    yaml: "pools:\n  html:\n    servers:\n      - { address: 127.0.0.1:80, wieght: 2 }\n",
    errors: [
      't.yaml:4:34: unknown key "wieght" in a server; did you mean "weight"?',
    ],
  },
  {
    name: "an address without a port",
    yaml: "pools:\n  html:\n    servers:\n      - address: 127.0.0.1\n",
    errors: [
      't.yaml:4:18: "127.0.0.1" is not an address:port; write e.g. 127.0.0.1:8080 or [::1]:8080',
    ],
  },
  {
    name: "a weight above 65535",
    yaml: "pools:\n  html:\n    servers:\n      - address: 127.0.0.1:80\n        weight: 70000\n",
    errors: [
      "t.yaml:5:17: weight must be from 0 to 65535",
    ],
  },
  {
    name: "a duration without a unit",
    yaml: "pools:\n  html:\n    check: { type: tcp, interval: 2 }\n    servers: []\n",
    errors: [
      "t.yaml:3:35: duration 2 has no unit; write it like 2s or 2ms",
    ],
  },
  {
    name: "an unknown check type",
    yaml: "pools:\n  html:\n    check: { type: icmp }\n    servers: []\n",
    errors: [
      "t.yaml:3:20: check type must be one of tcp, http, exec, none",
    ],
  },
  {
    name: "a pool without servers",
    yaml: "pools:\n  html: {}\n",
    errors: [
      't.yaml:2:3: missing required key "servers" in pools.html; add servers: ...',
    ],
  },
  {
    name: "a rule naming an undefined pool",
    yaml:
      "l7:\n  listeners:\n    - name: web\n      listen: 127.0.0.1:8080\n      rules:\n        - { pool: imgs }\n",
    errors: [
      't.yaml:6:19: pool "imgs" is not defined; defined pools: (none)',
    ],
  },
  {
    name: "an unclosed flow sequence at its opening bracket",
    yaml:
      "l7:\n  listeners:\n    - name: web\n      listen: 127.0.0.1:8080\n      rules: [{ pool: a\n",
    errors: [
      't.yaml:5:14: "[" opened here is never closed; add the closing "]"',
    ],
  },
  {
    name: "a mapping nested in a compact mapping",
    yaml: "a: b\n  c: d\n",
    errors: [
      "t.yaml:1:4: YAML syntax: nested mappings are not allowed in compact mappings; check the indentation and punctuation here",
    ],
  },
  {
    name: "a tab used for indentation",
    yaml: "pools:\n\thtml: {}\n",
    errors: [
      "t.yaml:2:1: tab used for indentation; YAML indents with spaces only",
    ],
  },
  {
    name: "a duplicate top-level key",
    yaml: "pools: {}\npools: {}\n",
    errors: [
      "t.yaml:2:1: duplicate key; each key may appear once in a mapping, remove or rename one",
    ],
  },
  {
    name: "a top level that is a list",
    yaml: "- a\n- b\n",
    errors: [
      "t.yaml:1:1: the top level must be a mapping of keys such as pools:, l7:, l4:, vrrp:",
    ],
  },
  {
    name: "an empty file",
    yaml: "",
    errors: [
      "t.yaml:1:1: the file is empty; start from examples/production.yaml or appliance.yaml",
    ],
  },
  {
    name: "a misspelt scheduler with a hint",
    yaml:
      "l4:\n  services:\n    - { name: x, vip: 127.0.0.1:80, pool: p, scheduler: wcl }\npools:\n  p: { servers: [] }\n",
    errors: [
      't.yaml:3:57: unknown scheduler "wcl"; did you mean "wlc"? (schedulers: rr wrr lc wlc lblc lblcr dh sh sed nq mh fo ovf twos)',
    ],
  },
  {
    name: "priority 255 without address_owner",
    yaml:
      "vrrp:\n  instances:\n    - name: VI_1\n      interface: eth0\n      vrid: 51\n      priority: 255\n      virtual_ipaddress: [10.0.0.1/24]\n",
    errors: [
      "t.yaml:6:17: priority 255 is reserved for the address owner; use 1-254, or set address_owner: true if this box owns the virtual addresses",
    ],
  },
  {
    name: "two instances sharing a VRID on one interface",
    yaml:
      "vrrp:\n  instances:\n    - { name: a, interface: eth0, vrid: 5, virtual_ipaddress: [10.0.0.1/24] }\n    - { name: b, interface: eth0, vrid: 5, virtual_ipaddress: [10.0.0.2/24] }\n",
    errors: [
      "t.yaml:4:41: vrid 5 is already used on eth0 by vrrp.instances[0]; VRIDs must be unique per interface",
    ],
  },
  {
    name: "an admin endpoint off loopback without a token",
    yaml: "admin:\n  listen: 0.0.0.0:9090\n",
    errors: [
      "t.yaml:2:11: admin listens on 0.0.0.0:9090 without a token; set admin.token_file or listen on 127.0.0.1",
    ],
  },
  {
    name: "a server listed twice in a pool",
    yaml:
      "pools:\n  p:\n    servers:\n      - { address: 127.0.0.1:81 }\n      - { address: 127.0.0.1:81 }\n",
    errors: [
      't.yaml:5:20: server 127.0.0.1:81 is listed twice in pool "p"; remove one',
    ],
  },
  {
    name: "a listener on the admin port",
    yaml:
      "l7:\n  listeners:\n    - name: web\n      listen: 127.0.0.1:9090\n      rules: [{ pool: p }]\npools: { p: { servers: [] } }\n",
    errors: [
      "t.yaml:4:15: tcp 127.0.0.1:9090 is already used by admin.listen; pick another port",
    ],
  },
  {
    name: "a rule after the default rule",
    yaml:
      "l7:\n  listeners:\n    - name: web\n      listen: 127.0.0.1:8080\n      rules:\n        - { pool: p }\n        - { match: { path_prefix: /x }, pool: p }\npools: { p: { servers: [] } }\n",
    errors: [
      "t.yaml:7:11: rule 1 is unreachable: rule 0 has no match and catches every request; move the default rule last",
    ],
  },
  {
    name: "a VIP that is neither local nor a VRRP address",
    yaml:
      "l4:\n  services:\n    - { name: x, vip: 10.9.9.9:80, pool: p }\npools: { p: { servers: [] } }\n",
    errors: [
      "t.yaml:3:23: VIP 10.9.9.9 is neither a virtual_ipaddress of a VRRP instance nor an address of this host; add it to a VRRP instance or use a local address",
    ],
  },
  {
    name: "a sub-second VRRPv2 interval",
    yaml:
      "vrrp:\n  instances:\n    - { name: a, interface: eth0, vrid: 5, version: 2, advert_interval: 100ms, virtual_ipaddress: [10.0.0.1/24] }\n",
    errors: [
      "t.yaml:3:73: VRRPv2 advertises in whole seconds from 1s to 255s; use version: 3 for sub-second intervals",
    ],
  },
  {
    name: "a duration that is a word",
    yaml: "defaults:\n  check: { interval: fast }\n",
    errors: [
      't.yaml:2:22: "fast" is not a duration; write it like 500ms, 2s, 5m or 1h',
    ],
  },
  {
    name: "an unknown dataplane",
    yaml: "l4:\n  dataplane: kernel\n",
    errors: [
      "t.yaml:2:14: dataplane must be auto, ipvs or userspace",
    ],
  },
  {
    name: "servers given as a mapping",
    yaml: "pools:\n  html:\n    servers: { address: 127.0.0.1:80 }\n",
    errors: [
      "t.yaml:3:14: servers must be a list of { address, weight } entries",
    ],
  },
  {
    name: "a listener without a name",
    yaml:
      "l7:\n  listeners:\n    - listen: 127.0.0.1:8080\n      rules: [{ pool: p }]\npools: { p: { servers: [] } }\n",
    errors: [
      't.yaml:3:7: missing required key "name" in l7.listeners[0]; add name: ...',
    ],
  },
  {
    name: "a misspelt top-level key",
    yaml: "pool:\n  p: { servers: [] }\n",
    errors: [
      't.yaml:1:1: unknown key "pool" in the top level; did you mean "pools"?',
    ],
  },
  {
    name: "authentication on VRRPv3",
    yaml:
      "vrrp:\n  instances:\n    - { name: a, interface: eth0, vrid: 5, virtual_ipaddress: [10.0.0.1/24], auth: { type: pass, password: x } }\n",
    errors: [
      "t.yaml:3:78: VRRPv3 has no authentication (RFC 5798 removed it); remove auth or use version: 2",
    ],
  },
  {
    name: "a sync group naming an undefined instance",
    yaml:
      "vrrp:\n  instances:\n    - { name: a, interface: eth0, vrid: 5, virtual_ipaddress: [10.0.0.1/24] }\n    - { name: b, interface: eth1, vrid: 5, virtual_ipaddress: [10.0.0.2/24] }\n  sync_groups:\n    - { name: g, instances: [a, c] }\n",
    errors: [
      't.yaml:6:33: VRRP instance "c" is not defined; defined instances: a, b',
    ],
  },
  {
    name: "a service with both vip and fwmark",
    yaml:
      "pools: { p: { servers: [{ address: 127.0.0.1:81 }] } }\nl4:\n  services:\n    - { name: x, vip: 127.0.0.1:80, fwmark: 3, pool: p }\n",
    errors: [
      't.yaml:4:15: service "x" needs exactly one of vip: ADDRESS:PORT or fwmark: N',
    ],
  },
  {
    name: "a scheduler flag for another scheduler",
    yaml:
      "pools: { p: { servers: [{ address: 127.0.0.1:81 }] } }\nl4:\n  services:\n    - { name: x, vip: 127.0.0.1:80, pool: p, scheduler: wlc, scheduler_flags: [sh-port] }\n",
    errors: [
      "t.yaml:4:80: flag sh-port applies to the sh scheduler, not wlc",
    ],
  },
  {
    name: "DR forwarding that would change the port",
    yaml:
      "pools: { p: { servers: [{ address: 127.0.0.1:81 }] } }\nl4:\n  services:\n    - { name: x, vip: 127.0.0.1:80, pool: p, forward: dr }\n",
    errors: [
      't.yaml:1:36: service "x" forwards by dr, which cannot change the port: use port 80 here or forward: nat',
    ],
  },
  {
    name: "a non-contiguous persistence netmask",
    yaml:
      "pools: { p: { servers: [{ address: 127.0.0.1:81 }] } }\nl4:\n  services:\n    - name: x\n      vip: 127.0.0.1:80\n      pool: p\n      persistence: { netmask: 255.0.255.0 }\n",
    errors: [
      't.yaml:7:31: netmask "255.0.255.0" is not a contiguous IPv4 mask; write e.g. 255.255.255.0',
    ],
  },
  {
    name: "a balance with both hash and scheduler",
    yaml:
      "pools: { p: { servers: [{ address: 127.0.0.1:81 }] } }\nl7:\n  listeners:\n    - name: web\n      listen: 127.0.0.1:8080\n      rules: [{ pool: p, balance: { hash: uri, scheduler: rr } }]\n",
    errors: [
      "t.yaml:6:35: balance takes either hash or scheduler, not both",
    ],
  },
  {
    name: "an invalid path_regex",
    yaml:
      "pools: { p: { servers: [{ address: 127.0.0.1:81 }] } }\nl7:\n  listeners:\n    - name: web\n      listen: 127.0.0.1:8080\n      rules: [{ match: { path_regex: '([a-' }, pool: p }]\n",
    errors: [
      't.yaml:6:38: "([a-" is not a valid regular expression',
    ],
  },
  {
    name: "an unknown hash key",
    yaml:
      "pools: { p: { servers: [{ address: 127.0.0.1:81 }] } }\nl7:\n  listeners:\n    - name: web\n      listen: 127.0.0.1:8080\n      rules: [{ pool: p }]\n      balance: { hash: url }\n",
    errors: [
      "t.yaml:7:24: hash must be uri, path, host, source, 'header NAME' or 'cookie NAME'",
    ],
  },
  {
    name: "an HTTP status out of range",
    yaml: "pools:\n  p:\n    check: { type: http, expect: { status: 700 } }\n    servers: []\n",
    errors: [
      "t.yaml:3:44: status must be from 100 to 599",
    ],
  },
  {
    name: "an exec check with an empty command",
    yaml: "pools:\n  p:\n    check: { type: exec, command: [] }\n    servers: []\n",
    errors: [
      "t.yaml:3:35: command needs at least the program to run",
    ],
  },
  {
    name: "a load_bound below 1",
    yaml:
      "pools: { p: { servers: [{ address: 127.0.0.1:81 }] } }\nl7:\n  listeners:\n    - name: web\n      listen: 127.0.0.1:8080\n      rules: [{ pool: p }]\n      balance: { load_bound: 0.5 }\n",
    errors: [
      "t.yaml:7:30: load_bound must be at least 1 (1.25 is typical)",
    ],
  },
  {
    name: "a VRID above 255",
    yaml:
      "vrrp:\n  instances:\n    - { name: a, interface: eth0, vrid: 300, virtual_ipaddress: [10.0.0.1/24] }\n",
    errors: [
      "t.yaml:3:41: vrid must be from 1 to 255",
    ],
  },
  {
    name: "a prefix too long for IPv4",
    yaml:
      "vrrp:\n  instances:\n    - { name: a, interface: eth0, vrid: 3, virtual_ipaddress: [10.0.0.1/40] }\n",
    errors: [
      "t.yaml:3:64: prefix /40 is out of range for IPv4; use 0-32",
    ],
  },
  {
    name: "a unicast peer of the wrong family",
    yaml:
      "vrrp:\n  instances:\n    - { name: a, interface: eth0, vrid: 3, virtual_ipaddress: [10.0.0.1/24], unicast_peers: ['fe80::2'] }\n",
    errors: [
      "t.yaml:3:94: unicast peer fe80::2 is not IPv4 like the instance's virtual addresses",
    ],
  },
  {
    name: "a tracked pool that does not exist",
    yaml:
      "vrrp:\n  instances:\n    - name: a\n      interface: eth0\n      vrid: 3\n      virtual_ipaddress: [10.0.0.1/24]\n      track: { pools: [web] }\n",
    errors: [
      't.yaml:7:24: pool "web" is not defined; defined pools: (none)',
    ],
  },
  {
    name: "two listeners with one name",
    yaml:
      "pools: { p: { servers: [{ address: 127.0.0.1:81 }] } }\nl7:\n  listeners:\n    - { name: web, listen: 127.0.0.1:8080, rules: [{ pool: p }] }\n    - { name: web, listen: 127.0.0.1:8081, rules: [{ pool: p }] }\n",
    errors: [
      't.yaml:5:15: listener "web" is defined twice (also at l7.listeners[0]); give each a unique name',
    ],
  },
  {
    name: "port 0",
    yaml: "admin: { listen: '[::1]:0' }\n",
    errors: [
      "t.yaml:1:18: port 0 is out of range; use 1-65535",
    ],
  },
  {
    name: "address_owner below priority 255",
    yaml:
      "vrrp:\n  instances:\n    - { name: a, interface: eth0, vrid: 3, priority: 200, address_owner: true, virtual_ipaddress: [10.0.0.1/24] }\n",
    errors: [
      "t.yaml:3:74: an address owner always runs at priority 255; set priority: 255 or remove address_owner",
    ],
  },
  {
    name: "every problem of a file at once",
    yaml:
      "pools:\n  p:\n    servers:\n      - { address: 127.0.0.1:80, weight: -1 }\n      - { address: nohost:80 }\nl4:\n  dataplane: fast\n",
    errors: [
      "t.yaml:4:42: weight must be from 0 to 65535",
      't.yaml:5:20: "nohost" is not an IP address; write a literal such as 127.0.0.1 or ::1 (names are not resolved)',
      "t.yaml:7:14: dataplane must be auto, ipvs or userspace",
    ],
  },
  {
    name: "a misspelt required key once, with its hint",
    yaml:
      "pools: { p: { servers: [{ address: 127.0.0.1:81 }] } }\nl7:\n  listeners:\n    - name: web\n      listen: 127.0.0.1:8080\n      rule: [{ pool: p }]\n",
    errors: [
      't.yaml:6:7: unknown key "rule" in a listener; did you mean "rules"?',
    ],
  },
  {
    name: "a check path without a leading slash",
    yaml: "pools:\n  p:\n    check: { type: http, path: healthz }\n    servers: []\n",
    errors: [
      "t.yaml:3:32: a check path must start with /",
    ],
  },
  {
    name: "an unknown VRRP version",
    yaml:
      "vrrp:\n  instances:\n    - { name: a, interface: eth0, vrid: 3, version: 4, virtual_ipaddress: [10.0.0.1/24] }\n",
    errors: [
      "t.yaml:3:53: version must be 2 or 3",
    ],
  },
  {
    name: "an unknown log level",
    yaml: "log: { level: verbose }\n",
    errors: [
      "t.yaml:1:15: log level must be debug, info, warn or error",
    ],
  },
];

for (const bad of BAD) {
  Deno.test(`check reports ${bad.name} at its line and column`, () => {
    const result = loadConfigText(bad.yaml, { path: "t.yaml", localAddresses });
    assert.equal(result.ok, false);
    if (!result.ok) assert.deepEqual(result.errors.map(formatError), bad.errors);
  });
}

Deno.test("the shipped appliance.yaml and examples/production.yaml are valid", async () => {
  for (const file of ["appliance.yaml", "examples/production.yaml"]) {
    const result = await loadConfigFile(new URL(`../${file}`, import.meta.url).pathname, {
      localAddresses,
    });
    assert.equal(result.ok, true, result.ok ? "" : result.errors.map(formatError).join("\n"));
    if (result.ok) assert.match(result.model.source.hash, /^[0-9a-f]{64}$/);
  }
});

Deno.test("a missing file, a directory and non-UTF-8 bytes are reported by name", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const missing = await loadConfigFile(`${dir}/nope.yaml`);
    assert.deepEqual(
      missing.ok ? [] : missing.errors.map(formatError),
      [`${dir}/nope.yaml: file not found; create it (see examples/production.yaml) or pass -c PATH`],
    );
    const isDir = await loadConfigFile(dir);
    assert.match(isDir.ok ? "" : formatError(isDir.errors[0]), /is a directory/);
    await Deno.writeFile(`${dir}/bin.yaml`, new Uint8Array([0xff, 0xfe, 0x00]));
    const binary = await loadConfigFile(`${dir}/bin.yaml`);
    assert.match(binary.ok ? "" : formatError(binary.errors[0]), /is not UTF-8 text/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("defaults fill the model: check timings, timeouts and the admin endpoint", () => {
  const result = loadConfigText("pools:\n  p:\n    servers: [{ address: 127.0.0.1:81 }]\n", {
    localAddresses,
  });
  assert.equal(result.ok, true);
  if (!result.ok) return;
  const pool = result.model.pools.p;
  assert.equal(pool.check.type, "tcp");
  assert.equal(pool.check.interval, 2000);
  assert.equal(pool.check.fastinter, 2000);
  assert.equal(pool.servers[0].weight, 1);
  assert.equal(result.model.admin.listen.text, "127.0.0.1:9090");
  assert.equal(result.model.l4.dataplane, "auto");
  assert.ok(Object.isFrozen(result.model.pools.p.servers));
});

Deno.test("shape errors and cross-section errors of valid sections are reported in one pass", () => {
  const yaml = [
    "pools:",
    "  html: { servers: [{ address: 127.0.0.1:8101, wieght: 1 }] }",
    "l7:",
    "  listeners:",
    "    - name: web",
    "      listen: 127.0.0.1:8080",
    "      rules: [{ pool: html }, { match: { path_prefix: /x }, pool: html }]",
    "vrrp:",
    "  instances:",
    "    - { name: a, interface: eth0, vrid: 5, virtual_ipaddress: [10.0.0.1/24] }",
    "    - { name: b, interface: eth0, vrid: 5, virtual_ipaddress: [10.0.0.2/24] }",
    "",
  ].join("\n");
  const result = loadConfigText(yaml, { path: "t.yaml", localAddresses });
  assert.equal(result.ok, false);
  if (result.ok) return;
  assert.deepEqual(result.errors.map(formatError), [
    't.yaml:2:48: unknown key "wieght" in a server; did you mean "weight"?',
    "t.yaml:7:31: rule 1 is unreachable: rule 0 has no match and catches every request; move the default rule last",
    "t.yaml:11:41: vrid 5 is already used on eth0 by vrrp.instances[0]; VRIDs must be unique per interface",
  ], "the pool reference to html is not reported: the pools section is what is broken");
});
