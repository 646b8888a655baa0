/**
 * Runs the check a pool configures against one server: picks the checker by type and
 * fills in what each needs (check port, Host header, exec environment).
 * @module
 */
import type { ResolvedCheck } from "../config/model.ts";
import { checkExec } from "./exec.ts";
import { checkHttp } from "./http.ts";
import type { CheckOutcome } from "./machine.ts";
import { checkTcp, type ProbeOptions, type Target } from "./tcp.ts";
import { type TcpBatchChecker, tcpChecker } from "./tcp_batch.ts";

/** The server a probe is aimed at. */
export interface ProbeTarget {
  readonly pool: string;
  readonly host: string;
  readonly port: number;
}

/** A checker: (server, check) → outcome. The subsystem takes one to allow fakes in benchmarks. */
export type Prober = (
  target: ProbeTarget,
  check: ResolvedCheck,
  options: { signal?: AbortSignal },
) => Promise<CheckOutcome>;

type TcpCheck = (target: Target, options: ProbeOptions) => Promise<CheckOutcome>;

function dispatch(
  tcp: TcpCheck,
  target: ProbeTarget,
  check: ResolvedCheck,
  signal: AbortSignal | undefined,
): Promise<CheckOutcome> {
  const port = check.port ?? target.port;
  const opts = { timeout: check.timeout, signal };
  switch (check.type) {
    case "tcp":
      return tcp({ host: target.host, port }, opts);
    case "http":
      return checkHttp({ host: target.host, port }, check, opts);
    case "exec":
      return checkExec(check.command, {
        ...opts,
        env: {
          FULCRUM_SERVER_HOST: target.host,
          FULCRUM_SERVER_PORT: String(port),
          FULCRUM_POOL: target.pool,
        },
      });
    case "none":
      return Promise.resolve({ ok: true, reason: "no check" });
  }
}

/** Runs one check of `check.type` against `target` (TCP through `Deno.connect`). Never throws. */
export function probe(
  target: ProbeTarget,
  check: ResolvedCheck,
  options: { signal?: AbortSignal } = {},
): Promise<CheckOutcome> {
  return dispatch(checkTcp, target, check, options.signal);
}

/** Options of {@link createProber}. */
export interface ProberOptions {
  /** Most exec checks running at once (more wait their turn); 64 by default. */
  readonly maxExec?: number;
}

/**
 * A prober whose TCP checks share one batched nonblocking connector (libc, when FFI
 * is allowed) and whose exec checks run at most `maxExec` at a time, so a thousand
 * exec-checked servers never fork a thousand processes at once. `close` fails pending
 * TCP checks and releases their sockets. `tcp` is the shared batch behind the TCP
 * checks when FFI is allowed, for a caller that starts and polls checks itself.
 */
export function createProber(
  options: ProberOptions = {},
): { probe: Prober; close: () => void; tcp?: TcpBatchChecker } {
  const tcp = tcpChecker();
  const max = Math.max(1, options.maxExec ?? 64);
  let running = 0;
  const waiting: (() => void)[] = [];
  const slot = async (): Promise<void> => {
    if (running < max) {
      running++;
      return;
    }
    await new Promise<void>((resolve) => waiting.push(resolve));
  };
  const release = (): void => {
    const next = waiting.shift();
    if (next) next();
    else running--;
  };
  return {
    probe: async (target, check, opts) => {
      if (check.type !== "exec") return dispatch(tcp.check, target, check, opts.signal);
      await slot();
      try {
        if (opts.signal?.aborted) return { ok: false, reason: "check stopped" };
        return await dispatch(tcp.check, target, check, opts.signal);
      } finally {
        release();
      }
    },
    close: tcp.close,
    tcp: tcp.batch,
  };
}
