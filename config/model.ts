/**
 * The Model: an immutable, fully resolved picture of one appliance.yaml. Subsystems
 * read the Model and receive diffs between two Models, never raw YAML.
 * @module
 */
import type {
  CheckConfig,
  Config,
  InstanceConfig,
  ListenerConfig,
  PoolConfig,
  ServerConfig,
  ServiceConfig,
} from "./schema.ts";

/** A health check with the pool's settings merged over `defaults.check`. */
export type ResolvedCheck = CheckConfig & {
  readonly interval: number;
  readonly timeout: number;
  readonly rise: number;
  readonly fall: number;
  readonly fastinter: number;
  readonly downinter: number;
  readonly assume: "up" | "down";
  readonly jitter: number;
};

/** A pool with its resolved check. */
export interface PoolModel {
  readonly name: string;
  readonly check: ResolvedCheck;
  readonly slowstart: number;
  readonly servers: readonly ServerConfig[];
}

/** Where a Model came from. */
export interface ModelSource {
  readonly path: string;
  /** SHA-256 of the file's bytes, hex. */
  readonly hash: string;
}

/** The whole appliance, resolved and frozen. */
export interface Model {
  readonly source: ModelSource;
  readonly admin: Config["admin"];
  readonly log: Config["log"];
  readonly pools: Readonly<Record<string, PoolModel>>;
  readonly l7: { readonly listeners: readonly ListenerConfig[] };
  readonly l4: Omit<Config["l4"], "services"> & { readonly services: readonly ServiceConfig[] };
  readonly vrrp: Omit<Config["vrrp"], "instances"> & {
    readonly instances: readonly InstanceConfig[];
  };
}

/** Key of a real server across the appliance: `pool/address`. */
export function serverKey(pool: string, address: string): string {
  return `${pool}/${address}`;
}

function resolveCheck(pool: PoolConfig, defaults: Config["defaults"]["check"]): ResolvedCheck {
  const check: CheckConfig = pool.check ?? { type: "tcp" };
  const interval = check.interval ?? defaults.interval;
  return {
    ...check,
    interval,
    timeout: check.timeout ?? defaults.timeout,
    rise: check.rise ?? defaults.rise,
    fall: check.fall ?? defaults.fall,
    fastinter: check.fastinter ?? defaults.fastinter ?? interval,
    downinter: check.downinter ?? defaults.downinter ?? interval,
    assume: check.assume ?? defaults.assume,
    jitter: defaults.jitter,
  } as ResolvedCheck;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

/** Builds the frozen Model from a validated config. */
export function buildModel(config: Config, source: ModelSource): Model {
  const pools: Record<string, PoolModel> = {};
  for (const [name, pool] of Object.entries(config.pools)) {
    pools[name] = {
      name,
      check: resolveCheck(pool, config.defaults.check),
      slowstart: pool.slowstart,
      servers: pool.servers,
    };
  }
  return deepFreeze(structuredClone({
    source,
    admin: config.admin,
    log: config.log,
    pools,
    l7: config.l7,
    l4: config.l4,
    vrrp: config.vrrp,
  }));
}
