/**
 * The `tcp` checker: a server passes when a TCP connection to it completes within
 * the timeout. The connection is closed at once; a connect still pending at the
 * timeout is aborted, so no socket outlives the check.
 * @module
 */
import type { CheckOutcome } from "./machine.ts";
import { connectReason, timeoutReason } from "./reason.ts";

/** Where a check connects. */
export interface Target {
  readonly host: string;
  readonly port: number;
}

/** Options of a checker run. */
export interface ProbeOptions {
  /** Milliseconds before the check fails with `timeout after …`. */
  readonly timeout: number;
  /** Aborts the check (the subsystem is stopping); resolves as failed. */
  readonly signal?: AbortSignal;
}

/**
 * Opens a connection that fails after `timeout` and when `signal` aborts. Returns the
 * connection or the failure's reason.
 */
export async function connectWithin(
  target: Target,
  options: ProbeOptions,
): Promise<Deno.TcpConn | { reason: string }> {
  const timer = AbortSignal.timeout(options.timeout);
  const signal = options.signal ? AbortSignal.any([timer, options.signal]) : timer;
  try {
    return await Deno.connect({ hostname: target.host, port: target.port, signal });
  } catch (error) {
    if (options.signal?.aborted) return { reason: "check stopped" };
    if (timer.aborted) return { reason: timeoutReason(options.timeout) };
    return { reason: connectReason(error) };
  }
}

/** Runs one TCP check. */
export async function checkTcp(target: Target, options: ProbeOptions): Promise<CheckOutcome> {
  const conn = await connectWithin(target, options);
  if ("reason" in conn) return { ok: false, reason: conn.reason };
  try {
    conn.close();
  } catch { /* already closed by the peer */ }
  return { ok: true, reason: "connected" };
}
