/**
 * The shape of appliance.yaml, written once for every subsystem as a zod schema.
 *
 * Values come out parsed: durations in milliseconds, endpoints as {@link Endpoint},
 * prefixes as {@link Cidr}. `fulcrum schema` derives the JSON Schema from here, so the
 * documentation cannot drift from the code.
 * @module
 */
import { z } from "zod";
import { type Cidr, type Endpoint, ipFamily, parseCidr, parseEndpoint } from "./address.ts";
import { DURATION_PATTERN, parseDuration } from "./duration.ts";
import { SCHEDULER_FLAGS, SCHEDULERS } from "./schedulers.ts";
import { suggest } from "./suggest.ts";

export { SCHEDULER_FLAGS, type SchedulerName, SCHEDULERS } from "./schedulers.ts";

/**
 * A strict object: unknown keys are errors. The error text carries one line per
 * unknown key, each with a "did you mean" hint; the loader splits them by key.
 */
function obj<T extends z.core.$ZodLooseShape>(shape: T, what: string) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (issue) => {
      if (issue.code !== "unrecognized_keys") return undefined;
      return issue.keys.map((key) => unknownKeyMessage(key, known, what)).join("\n");
    },
  });
}

function unknownKeyMessage(key: string, known: string[], what: string): string {
  const hint = suggest(key, known);
  const list = known.join(", ");
  return hint
    ? `unknown key "${key}" in ${what}; did you mean "${hint}"?`
    : `unknown key "${key}" in ${what}; allowed keys: ${list}`;
}

function duration(what = "a duration") {
  return z.string({
    error: (iss) =>
      typeof iss.input === "number"
        ? `duration ${iss.input} has no unit; write it like ${iss.input}s or ${iss.input}ms`
        : `${what} must be a string such as 500ms, 2s or 5m`,
  })
    .regex(new RegExp(DURATION_PATTERN), {
      error: (iss) =>
        /^\d+(\.\d+)?$/.test(String(iss.input))
          ? `duration "${iss.input}" has no unit; write it like ${iss.input}s or ${iss.input}ms`
          : `"${iss.input}" is not a duration; write it like 500ms, 2s, 5m or 1h`,
    })
    .transform((text) => parseDuration(text) as number);
}

function intIn(min: number, max: number, what: string) {
  return z.number({ error: `${what} must be a whole number from ${min} to ${max}` })
    .int({ error: `${what} must be a whole number from ${min} to ${max}` })
    .min(min, { error: `${what} must be from ${min} to ${max}` })
    .max(max, { error: `${what} must be from ${min} to ${max}` });
}

const endpoint = z.string({ error: "an address must be a string like 127.0.0.1:8080" })
  .transform((text, ctx): Endpoint => {
    const parsed = parseEndpoint(text);
    if (typeof parsed === "string") {
      ctx.addIssue({ code: "custom", message: parsed });
      return z.NEVER;
    }
    return parsed;
  });

const cidr = z.string({ error: "an address must be a string like 10.0.0.100/24" })
  .transform((text, ctx): Cidr => {
    const parsed = parseCidr(text);
    if (typeof parsed === "string") {
      ctx.addIssue({ code: "custom", message: parsed });
      return z.NEVER;
    }
    return parsed;
  });

const ip = z.string({ error: "an IP address must be a string like 10.0.0.1" })
  .refine((text) => ipFamily(text) !== undefined, {
    error: (iss) => `"${iss.input}" is not an IP address; write e.g. 10.0.0.2 or fe80::2`,
  });

const oneOrMany = (item: z.ZodString) => z.union([item, z.array(item).min(1)]);

const regexText = z.string().refine((text) => {
  try {
    new RegExp(text);
    return true;
  } catch {
    return false;
  }
}, { error: (iss) => `"${iss.input}" is not a valid regular expression` });

const schedulerName = z.enum(SCHEDULERS, {
  error: (iss) => {
    const hint = suggest(String(iss.input), [...SCHEDULERS]);
    const list = SCHEDULERS.join(" ");
    return hint
      ? `unknown scheduler "${iss.input}"; did you mean "${hint}"? (schedulers: ${list})`
      : `unknown scheduler "${iss.input}"; use one of ${list}`;
  },
});

// ---------------------------------------------------------------- health checks

const checkTiming = {
  interval: duration().optional(),
  timeout: duration().optional(),
  rise: intIn(1, 100, "rise").optional(),
  fall: intIn(1, 100, "fall").optional(),
  fastinter: duration().optional(),
  downinter: duration().optional(),
  assume: z.enum(["up", "down"], { error: "assume must be up or down" }).optional(),
  port: intIn(1, 65535, "check port").optional(),
};

const tcpCheck = obj({ type: z.literal("tcp"), ...checkTiming }, "a tcp check");
const httpCheck = obj({
  type: z.literal("http"),
  ...checkTiming,
  method: z.string().default("GET"),
  path: z.string().startsWith("/", { error: "a check path must start with /" }).default("/"),
  host: z.string().optional(),
  tls: z.boolean().default(false),
  expect: obj({
    status: z.union([intIn(100, 599, "status"), z.array(intIn(100, 599, "status")).min(1)])
      .default(200),
    body_regex: regexText.optional(),
    digest: z.string().regex(/^[0-9a-f]{64}$/i, {
      error: "digest must be the SHA-256 of the body as 64 hex digits",
    }).optional(),
  }, "check.expect").prefault({}),
}, "an http check");
const execCheck = obj({
  type: z.literal("exec"),
  ...checkTiming,
  command: z.array(z.string(), { error: "command must be a list such as [/bin/true]" })
    .min(1, { error: "command needs at least the program to run" }),
}, "an exec check");
const noneCheck = obj({ type: z.literal("none"), ...checkTiming }, "a none check");

const check = z.discriminatedUnion("type", [tcpCheck, httpCheck, execCheck, noneCheck], {
  error: (iss) =>
    iss.code === "invalid_union" ? `check type must be one of tcp, http, exec, none` : undefined,
});

const checkDefaults = obj({
  interval: duration().prefault("2s"),
  timeout: duration().prefault("1s"),
  rise: intIn(1, 100, "rise").default(2),
  fall: intIn(1, 100, "fall").default(3),
  fastinter: duration().optional(),
  downinter: duration().optional(),
  assume: z.enum(["up", "down"]).default("up"),
  jitter: z.number().min(0).max(1).default(0.1),
}, "defaults.check");

// ---------------------------------------------------------------- pools

const server = obj({
  address: endpoint,
  weight: intIn(0, 65535, "weight").default(1),
  backup: z.boolean().default(false),
  max_conns: intIn(0, 1_000_000, "max_conns").default(0),
  upper_threshold: intIn(0, 1_000_000, "upper_threshold").default(0),
  lower_threshold: intIn(0, 1_000_000, "lower_threshold").default(0),
}, "a server");

const pool = obj({
  check: check.optional(),
  slowstart: duration().prefault("0s"),
  servers: z.array(server, {
    error: (iss) =>
      iss.input === undefined ? undefined : "servers must be a list of { address, weight } entries",
  }),
}, "a pool");

// ---------------------------------------------------------------- l7

const HASH_KEYS = /^(uri|path|host|source|header [!-~]+|cookie [!-~]+)$/;

const balance = obj({
  hash: z.string().regex(HASH_KEYS, {
    error: "hash must be uri, path, host, source, 'header NAME' or 'cookie NAME'",
  }).optional(),
  scheduler: schedulerName.optional(),
  load_bound: z.number().min(1, { error: "load_bound must be at least 1 (1.25 is typical)" })
    .default(1.25),
}, "balance");

const nameValue = obj({
  name: z.string().min(1),
  value: z.string().optional(),
  regex: regexText.optional(),
}, "a header or query match");

const match = obj({
  path_prefix: oneOrMany(z.string()).optional(),
  path_suffix: oneOrMany(z.string()).optional(),
  path_regex: regexText.optional(),
  host: oneOrMany(z.string()).optional(),
  header: nameValue.optional(),
  method: oneOrMany(z.string()).optional(),
  query: nameValue.optional(),
}, "match");

const rule = obj({
  name: z.string().optional(),
  match: match.optional(),
  pool: z.string({ error: "a rule needs pool: NAME" }),
  balance: balance.optional(),
}, "a rule");

const listener = obj({
  name: z.string({ error: "a listener needs a name" }).min(1),
  listen: endpoint,
  tls: obj({ cert: z.string(), key: z.string() }, "tls").optional(),
  rules: z.array(rule).min(1, { error: "a listener needs at least one rule" }),
  balance: balance.prefault({}),
  timeouts: obj({
    header: duration().prefault("10s"),
    idle: duration().prefault("1m"),
    connect: duration().prefault("3s"),
    server: duration().prefault("30s"),
    drain: duration().prefault("10s"),
  }, "timeouts").prefault({}),
  limits: obj({
    header_bytes: intIn(1024, 1_048_576, "header_bytes").default(16_384),
    headers: intIn(1, 1000, "headers").default(100),
  }, "limits").prefault({}),
  retries: intIn(0, 10, "retries").default(1),
  forwarded_headers: z.boolean().default(true),
}, "a listener");

// ---------------------------------------------------------------- l4

const service = obj({
  name: z.string({ error: "a service needs a name" }).min(1),
  vip: endpoint.optional(),
  fwmark: intIn(1, 0xffffffff, "fwmark").optional(),
  protocol: z.enum(["tcp", "udp", "sctp"], { error: "protocol must be tcp, udp or sctp" })
    .default("tcp"),
  scheduler: schedulerName.default("wlc"),
  scheduler_flags: z.array(z.enum(SCHEDULER_FLAGS, {
    error: `scheduler_flags take ${SCHEDULER_FLAGS.join(", ")}`,
  })).default([]),
  forward: z.enum(["nat", "dr", "tun"], { error: "forward must be nat, dr or tun" })
    .default("nat"),
  tunnel: obj({
    type: z.enum(["ipip", "gue", "gre"]).default("ipip"),
    port: intIn(1, 65535, "tunnel port").optional(),
    csum: z.enum(["none", "csum", "remcsum"]).default("none"),
  }, "tunnel").optional(),
  persistence: obj({
    timeout: duration().prefault("5m"),
    netmask: z.string().default("255.255.255.255"),
  }, "persistence").optional(),
  pool: z.string({ error: "a service needs pool: NAME" }),
  on_down: z.enum(["remove", "quiesce"], { error: "on_down must be remove or quiesce" })
    .default("remove"),
  nodest: z.enum(["keep", "reset"], { error: "nodest must be keep or reset" }).default("keep"),
  proxy_protocol: z.enum(["none", "v1", "v2"], { error: "proxy_protocol must be none, v1 or v2" })
    .default("none"),
  timeouts: obj({
    connect: duration().prefault("3s"),
    idle: duration().prefault("15m"),
    fin_wait: duration().prefault("2m"),
    udp: duration().prefault("5m"),
  }, "timeouts").prefault({}),
}, "a service");

const l4 = obj({
  dataplane: z.enum(["auto", "ipvs", "userspace"], {
    error: "dataplane must be auto, ipvs or userspace",
  }).default("auto"),
  services: z.array(service).default([]),
  foreign_services: z.enum(["keep", "remove"]).default("keep"),
  defense: obj({
    drop_entry: intIn(0, 3, "drop_entry").default(0),
    drop_packet: intIn(0, 3, "drop_packet").default(0),
    secure_tcp: intIn(0, 3, "secure_tcp").default(0),
    amemthresh: intIn(0, 1 << 30, "amemthresh").default(1024),
    max_conns: intIn(0, 10_000_000, "max_conns").default(0),
    per_source: intIn(0, 1_000_000, "per_source").default(0),
    embryonic_timeout: duration().prefault("10s"),
  }, "defense").prefault({}),
  sync_daemon: obj({
    interface: z.string(),
    sync_id: intIn(0, 255, "sync_id").default(0),
  }, "sync_daemon").optional(),
  timeouts: obj({
    tcp: duration().prefault("15m"),
    tcp_fin: duration().prefault("2m"),
    udp: duration().prefault("5m"),
  }, "timeouts").optional(),
}, "l4");

// ---------------------------------------------------------------- vrrp

const trackPool = z.union([
  z.string(),
  obj({ pool: z.string(), weight: intIn(-254, 254, "weight") }, "a tracked pool"),
]);
const trackInterface = z.union([
  z.string(),
  obj({ name: z.string(), weight: intIn(-254, 254, "weight") }, "a tracked interface"),
]);

const instance = obj({
  name: z.string({ error: "an instance needs a name" }).min(1),
  interface: z.string({ error: "an instance needs interface: NAME" }).min(1),
  vrid: intIn(1, 255, "vrid"),
  version: z.union([z.literal(2), z.literal(3)], { error: "version must be 2 or 3" }).default(3),
  priority: intIn(1, 255, "priority").default(100),
  address_owner: z.boolean().default(false),
  advert_interval: duration().prefault("1s"),
  preempt: z.boolean().default(true),
  preempt_delay: duration().prefault("0s"),
  virtual_ipaddress: z.array(cidr).min(1, {
    error: "virtual_ipaddress needs at least one address",
  }),
  unicast_src_ip: ip.optional(),
  unicast_peers: z.array(ip).default([]),
  auth: obj({
    type: z.literal("pass", { error: "auth type must be pass (AH is not supported)" }),
    password: z.string().min(1).max(8, { error: "a VRRP password has at most 8 characters" }),
  }, "auth").optional(),
  track: obj({
    pools: z.array(trackPool).default([]),
    interfaces: z.array(trackInterface).default([]),
  }, "track").prefault({}),
  notify: z.array(z.string()).min(1).optional(),
  garp: obj({
    repeat: intIn(0, 100, "repeat").default(5),
    interval: duration().prefault("0s"),
    refresh: duration().prefault("0s"),
  }, "garp").prefault({}),
  use_vmac: z.boolean().default(false),
}, "a VRRP instance");

const vrrp = obj({
  enabled: z.boolean().default(true),
  instances: z.array(instance).default([]),
  sync_groups: z.array(obj({
    name: z.string().min(1),
    instances: z.array(z.string()).min(2, { error: "a sync group needs at least two instances" }),
    notify: z.array(z.string()).min(1).optional(),
  }, "a sync group")).default([]),
}, "vrrp");

// ---------------------------------------------------------------- root

/** The whole appliance.yaml. */
export const configSchema = obj({
  admin: obj({
    listen: endpoint.prefault("127.0.0.1:9090"),
    token_file: z.string().nullable().default(null),
  }, "admin").prefault({}),
  log: obj({
    level: z.enum(["debug", "info", "warn", "error"], {
      error: "log level must be debug, info, warn or error",
    }).default("info"),
    format: z.enum(["logfmt", "json"], { error: "log format must be logfmt or json" })
      .default("logfmt"),
  }, "log").prefault({}),
  defaults: obj({ check: checkDefaults.prefault({}) }, "defaults").prefault({}),
  pools: z.record(
    z.string().regex(/^[A-Za-z0-9_.-]+$/, {
      error: "a pool name may use letters, digits, _ . and -",
    }),
    pool,
  ).default({}),
  l7: obj({ listeners: z.array(listener).default([]) }, "l7").prefault({}),
  l4: l4.prefault({}),
  vrrp: vrrp.prefault({}),
}, "the top level");

/** appliance.yaml after parsing: defaults filled in, durations in ms. */
export type Config = z.output<typeof configSchema>;
/** A pool as configured. */
export type PoolConfig = Config["pools"][string];
/** A real server as configured. */
export type ServerConfig = PoolConfig["servers"][number];
/** A health check as configured (before defaults are merged). */
export type CheckConfig = z.output<typeof check>;
/** An L7 listener. */
export type ListenerConfig = Config["l7"]["listeners"][number];
/** An L7 rule. */
export type RuleConfig = ListenerConfig["rules"][number];
/** An L7 balance setting. */
export type BalanceConfig = ListenerConfig["balance"];
/** An L4 virtual service. */
export type ServiceConfig = Config["l4"]["services"][number];
/** A VRRP instance. */
export type InstanceConfig = Config["vrrp"]["instances"][number];

/** The JSON Schema of appliance.yaml, for editors (`fulcrum schema`). */
export function jsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(configSchema, { io: "input", unrepresentable: "any" }) as Record<
    string,
    unknown
  >;
  return {
    ...schema,
    $id: "https://fulcrum.invalid/appliance.schema.json",
    title: "Fulcrum appliance.yaml",
  };
}
