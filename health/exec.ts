/**
 * The `exec` checker (keepalived's MISC_CHECK with `misc_dynamic`): runs a command;
 * exit 0 passes, exit 1 fails, exit 2–255 passes and sets the weight to code − 2.
 *
 * The command runs in its own process group; at the timeout, when it exits, or when
 * the check is stopped, the whole group is killed, so a hanging command and anything
 * it forked are gone. Only the first {@link MAX_OUTPUT} bytes of stdout and stderr
 * are kept; the rest is read and dropped so a flooding command never blocks.
 * @module
 */
import type { CheckOutcome } from "./machine.ts";
import { head, timeoutReason } from "./reason.ts";

/** Bytes of stdout and of stderr kept from one run. */
export const MAX_OUTPUT = 4096;

/** Options of {@link checkExec}. */
export interface ExecOptions {
  readonly timeout: number;
  readonly signal?: AbortSignal;
  /** Environment added to the command's (FULCRUM_SERVER_HOST, …). */
  readonly env?: Record<string, string>;
}

/** The result of one run, beside the outcome: for tests and diagnostics. */
export interface ExecReport extends CheckOutcome {
  readonly code?: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function drain(stream: ReadableStream<Uint8Array>, keep: Uint8Array[]): Promise<void> {
  let kept = 0;
  const reader = stream.getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      if (kept < MAX_OUTPUT) {
        keep.push(value.subarray(0, MAX_OUTPUT - kept));
        kept += Math.min(value.length, MAX_OUTPUT - kept);
      }
    }
  } catch {
    // the pipe broke because the group was killed: what was kept is enough
  } finally {
    reader.releaseLock();
  }
}

function text(parts: Uint8Array[]): string {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    all.set(p, off);
    off += p.length;
  }
  return new TextDecoder().decode(all);
}

function killGroup(pid: number): void {
  try {
    Deno.kill(-pid, "SIGKILL");
  } catch {
    // the group is already gone
  }
}

/** Runs one exec check. Never throws; a command that cannot start is a failed check. */
export async function checkExec(
  command: readonly string[],
  options: ExecOptions,
): Promise<ExecReport> {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(command[0], {
      args: command.slice(1),
      env: options.env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      detached: true,
    }).spawn();
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? `exec failed: command not found: ${command[0]}`
      : `exec failed: ${head(error instanceof Error ? error.message : String(error))}`;
    return { ok: false, reason, stdout: "", stderr: "" };
  }
  const out: Uint8Array[] = [];
  const err: Uint8Array[] = [];
  const reading = Promise.all([drain(child.stdout, out), drain(child.stderr, err)]);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup(child.pid);
  }, options.timeout);
  const onAbort = () => killGroup(child.pid);
  options.signal?.addEventListener("abort", onAbort);
  let status: Deno.CommandStatus;
  try {
    status = await child.status;
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
    // Anything the command left running in its group goes with it.
    killGroup(child.pid);
  }
  await reading;
  const stdout = text(out);
  const stderr = text(err);
  const base = { stdout, stderr, code: status.signal ? undefined : status.code };
  if (options.signal?.aborted) return { ...base, ok: false, reason: "check stopped" };
  if (timedOut) return { ...base, ok: false, reason: `${timeoutReason(options.timeout)} (killed)` };
  if (status.signal) return { ...base, ok: false, reason: `killed by ${status.signal}` };
  const code = status.code;
  if (code === 0) return { ...base, ok: true, reason: "exit 0" };
  if (code === 1) {
    const detail = head(stderr) || head(stdout);
    return { ...base, ok: false, reason: detail ? `exit 1: ${detail}` : "exit 1" };
  }
  return { ...base, ok: true, reason: `exit ${code}: weight ${code - 2}`, weight: code - 2 };
}
