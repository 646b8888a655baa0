/**
 * The short reasons a check gives (`connect refused`, `timeout after 1s`): one place
 * so every checker words the same failure the same way.
 * @module
 */

/** Formats milliseconds the way appliance.yaml writes them: `500ms`, `1s`, `1.5s`, `2m`. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000 || ms % 60_000 !== 0) return `${Number((ms / 1000).toFixed(3))}s`;
  return `${ms / 60_000}m`;
}

/** The reason of a check that ran out of time. */
export function timeoutReason(timeout: number, phase?: string): string {
  return phase
    ? `timeout after ${formatDuration(timeout)} ${phase}`
    : `timeout after ${formatDuration(timeout)}`;
}

/** The reason of a failed connect, from the error Deno raised. */
export function connectReason(error: unknown): string {
  if (error instanceof Deno.errors.ConnectionRefused) return "connect refused";
  if (error instanceof Deno.errors.ConnectionReset) return "connection reset";
  if (error instanceof Deno.errors.TimedOut) return "connect timed out";
  const message = error instanceof Error ? error.message : String(error);
  if (/unreachable/i.test(message)) return `unreachable: ${head(message)}`;
  return `connect failed: ${head(message)}`;
}

/** The first line of `text`, trimmed and cut to `max` characters, printable only. */
export function head(text: string, max = 120): string {
  const line = text.trim().split(/\r?\n/, 1)[0] ?? "";
  // deno-lint-ignore no-control-regex
  const printable = line.replace(/[\x00-\x1f\x7f]/g, "?");
  return printable.length > max ? printable.slice(0, max) + "…" : printable;
}
