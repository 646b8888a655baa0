/**
 * The appliance lifecycle: load the config, start subsystems in order (health, l4,
 * l7, vrrp — VRRP last so addresses are claimed only once the services are ready),
 * reload as plan → diff → apply, and stop gracefully in reverse order.
 *
 * A reload with an invalid file changes nothing that runs; a subsystem that fails to
 * apply a valid one is rolled back together with those that applied before it.
 * @module
 */
import { describeDiff, diff, type ModelDiff } from "./config/diff.ts";
import { type ConfigError, formatError } from "./config/error.ts";
import { loadConfigIsolated } from "./config/isolated.ts";
import type { CrossCheckOptions } from "./config/refs.ts";
import type { Model } from "./config/model.ts";
import { type AdminServer, createAdminApp, serveAdmin } from "./admin/mod.ts";
import { dirname, resolve } from "node:path";
import { ServerStates } from "./health/state.ts";
import { configureLogs, createLogger, type Logger } from "./log.ts";
import type { Subsystem, SubsystemDeps, SubsystemStatus } from "./subsystem.ts";
import { VERSION } from "./version.ts";
import { RoleBoard } from "./vrrp/role.ts";

/**
 * Creates the subsystems, in start order. `deps.log` is the root logger; bind a child
 * per subsystem (`deps.log.child("l4")`).
 */
export type SubsystemFactory = (deps: SubsystemDeps) => Subsystem[];

/** Options of {@link Appliance.start}. */
export interface ApplianceOptions extends CrossCheckOptions {
  /** The subsystems to run; the CLI passes the real ones, tests pass their own. */
  subsystems: SubsystemFactory;
  /** Overrides `log.level` from the config (`--log-level`). */
  logLevel?: "debug" | "info" | "warn" | "error";
  /** Where log lines go (stderr by default). */
  log?: Logger;
}

/** The result of a reload or a plan. */
export type ReloadResult =
  | { readonly ok: true; readonly changes: readonly string[]; readonly hash: string }
  | { readonly ok: false; readonly stage: "config" | "apply"; readonly errors: readonly string[] };

/** An invalid config at start: the located errors, ready to print. */
export class ConfigInvalidError extends Error {
  readonly errors: readonly ConfigError[];
  constructor(errors: readonly ConfigError[]) {
    super(errors.map(formatError).join("\n"));
    this.name = "ConfigInvalidError";
    this.errors = errors;
  }
}

/** A running appliance. */
export class Appliance {
  readonly states: ServerStates = new ServerStates();
  readonly roles: RoleBoard = new RoleBoard();
  readonly startedAt: number = Date.now();
  readonly log: Logger;
  readonly configPath: string;
  #model: Model;
  #subsystems: Subsystem[] = [];
  #options: ApplianceOptions;
  #queue: Promise<unknown> = Promise.resolve();
  #loadedAt = Date.now();
  #reloads = { ok: 0, failed: 0 };
  #lastReload: { at: number; ok: boolean; detail: string } | undefined;
  #stopped = false;
  #admin: AdminServer | undefined;
  #token: string | undefined;

  private constructor(path: string, model: Model, options: ApplianceOptions, log: Logger) {
    this.configPath = path;
    this.#model = model;
    this.#options = options;
    this.log = log;
  }

  /**
   * Loads `path` and starts every subsystem. Throws {@link ConfigInvalidError} for a
   * bad file, or the first subsystem's start error (after stopping the others).
   */
  static async start(path: string, options: ApplianceOptions): Promise<Appliance> {
    const loaded = await loadConfigIsolated(path, options);
    if (!loaded.ok) throw new ConfigInvalidError(loaded.errors);
    const model = loaded.model;
    configureLogs(options.logLevel ?? model.log.level, model.log.format);
    const log = options.log ?? createLogger();
    const appliance = new Appliance(path, model, options, log);
    await appliance.#startSubsystems();
    try {
      await appliance.#startAdmin(model);
    } catch (error) {
      await appliance.stop();
      throw error;
    }
    return appliance;
  }

  async #startSubsystems(): Promise<void> {
    const deps = { states: this.states, roles: this.roles, log: this.log };
    this.#subsystems = this.#options.subsystems(deps);
    const started: Subsystem[] = [];
    for (const subsystem of this.#subsystems) {
      try {
        await subsystem.start(this.#model);
        started.push(subsystem);
        this.log.info("subsystem started", { subsystem: subsystem.name });
      } catch (error) {
        this.log.error("subsystem failed to start", {
          subsystem: subsystem.name,
          error: (error as Error).message,
        });
        for (const s of started.reverse()) await s.stop().catch(() => undefined);
        throw new Error(`${subsystem.name} failed to start: ${(error as Error).message}`);
      }
    }
    this.log.info("appliance running", {
      version: VERSION,
      config: this.configPath,
      hash: this.#model.source.hash.slice(0, 12),
    });
  }

  async #startAdmin(model: Model): Promise<void> {
    this.#token = await readToken(this.configPath, model.admin.token_file);
    const app = createAdminApp(this, { token: () => this.#token });
    this.#admin = serveAdmin(app, {
      host: model.admin.listen.host,
      port: model.admin.listen.port,
      hasToken: this.#token !== undefined,
    });
    this.log.info("admin listening", { address: this.#admin.address });
  }

  /** The admin endpoint's bound `host:port`, once started. */
  get adminAddress(): string | undefined {
    return this.#admin?.address;
  }

  /** The running Model. */
  get model(): Model {
    return this.#model;
  }

  /** The running subsystems, in start order. */
  get subsystems(): readonly Subsystem[] {
    return this.#subsystems;
  }

  /** Reload counters and the last outcome. */
  get reloads(): {
    ok: number;
    failed: number;
    last?: { at: number; ok: boolean; detail: string };
  } {
    return { ...this.#reloads, last: this.#lastReload };
  }

  /** When the running config was loaded (epoch ms). */
  get loadedAt(): number {
    return this.#loadedAt;
  }

  /** Each subsystem's status, by name. */
  subsystemStatus(): Record<string, SubsystemStatus> {
    return Object.fromEntries(this.#subsystems.map((s) => [s.name, s.status()]));
  }

  /**
   * What loading `text` (or the config file when omitted) would change, without
   * changing anything.
   */
  async plan(text?: string): Promise<ReloadResult> {
    const loaded = await loadConfigIsolated(this.configPath, { ...this.#options, text });
    if (!loaded.ok) {
      return { ok: false, stage: "config", errors: loaded.errors.map(formatError) };
    }
    return {
      ok: true,
      changes: describeDiff(diff(this.#model, loaded.model)),
      hash: loaded.model.source.hash,
    };
  }

  /** Re-reads the config file and applies it; reloads are serialized. */
  reload(reason = "request"): Promise<ReloadResult> {
    const run = this.#queue.then(() => this.#reload(reason));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async #reload(reason: string): Promise<ReloadResult> {
    if (this.#stopped) {
      return { ok: false, stage: "apply", errors: ["the appliance is stopping"] };
    }
    const loaded = await loadConfigIsolated(this.configPath, this.#options);
    if (!loaded.ok) {
      const errors = loaded.errors.map(formatError);
      this.#recordReload(false, `invalid config, kept the running one: ${errors.length} error(s)`);
      this.log.error("reload refused: the new config is invalid; the running config stays", {
        reason,
        errors: errors.length,
      });
      for (const e of errors) this.log.error(e);
      return { ok: false, stage: "config", errors };
    }
    const next = loaded.model;
    const changes = diff(this.#model, next);
    const lines = describeDiff(changes);
    if (changes.empty) {
      this.#model = next;
      this.#recordReload(true, "no changes");
      this.log.info("reload: no changes", { reason });
      return { ok: true, changes: lines, hash: next.source.hash };
    }
    const error = await this.#apply(next, changes);
    if (error) {
      this.#recordReload(false, error);
      return { ok: false, stage: "apply", errors: [error] };
    }
    const adminError = await this.#applyAdmin(next, changes);
    if (adminError) lines.push(`! ${adminError}`);
    this.#model = next;
    this.#loadedAt = Date.now();
    configureLogs(this.#options.logLevel ?? next.log.level, next.log.format);
    this.#recordReload(adminError === undefined, lines.join(", "));
    this.log.info("reloaded", {
      reason,
      changes: lines.join(", "),
      hash: next.source.hash.slice(0, 12),
    });
    return { ok: true, changes: lines, hash: next.source.hash };
  }

  async #apply(next: Model, changes: ModelDiff): Promise<string | undefined> {
    const applied: Subsystem[] = [];
    for (const subsystem of this.#subsystems) {
      try {
        await subsystem.apply(next, changes);
        applied.push(subsystem);
      } catch (error) {
        const message = `${subsystem.name} could not apply the new config: ${
          (error as Error).message
        }`;
        this.log.error("reload failed; rolling back to the running config", { error: message });
        const back = diff(next, this.#model);
        for (const s of [subsystem, ...applied.reverse()]) {
          await s.apply(this.#model, back).catch((e) =>
            this.log.error("rollback failed", { subsystem: s.name, error: (e as Error).message })
          );
        }
        return message;
      }
    }
    return undefined;
  }

  async #applyAdmin(next: Model, changes: ModelDiff): Promise<string | undefined> {
    if (!changes.admin) return undefined;
    const old = this.#admin;
    const oldToken = this.#token;
    try {
      await old?.close();
      await this.#startAdmin(next);
      return undefined;
    } catch (error) {
      this.#token = oldToken;
      await this.#startAdmin(this.#model).catch(() => undefined);
      const message = `admin stays on ${this.#model.admin.listen.text}: ${
        (error as Error).message
      }`;
      this.log.error("admin endpoint could not move", { error: message });
      return message;
    }
  }

  #recordReload(ok: boolean, detail: string): void {
    if (ok) this.#reloads.ok++;
    else this.#reloads.failed++;
    this.#lastReload = { at: Date.now(), ok, detail };
  }

  /** Stops every subsystem in reverse start order. Safe to call twice. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    await this.#queue;
    await this.#admin?.close().catch(() => undefined);
    for (const subsystem of [...this.#subsystems].reverse()) {
      try {
        await subsystem.stop();
        this.log.info("subsystem stopped", { subsystem: subsystem.name });
      } catch (error) {
        this.log.error("subsystem failed to stop cleanly", {
          subsystem: subsystem.name,
          error: (error as Error).message,
        });
      }
    }
  }
}

/** Reads the admin token; a relative path is resolved beside the config file. */
async function readToken(configPath: string, file: string | null): Promise<string | undefined> {
  if (!file) return undefined;
  const path = resolve(dirname(configPath), file);
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    throw new Error(
      `cannot read admin.token_file ${path}: ${
        (error as Error).message
      }; create it with one line holding the token`,
    );
  }
  const token = text.trim();
  if (token.length < 16) {
    throw new Error(`the token in ${path} is shorter than 16 characters; use a long random string`);
  }
  return token;
}
