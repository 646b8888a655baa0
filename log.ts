/**
 * Structured logs on stderr: logfmt lines by default, JSON lines on request.
 * @module
 */

/** Log levels in increasing severity. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Field values a log line carries. */
export type LogFields = Record<string, string | number | boolean | undefined | null>;

/** A logger bound to a component (`l4`, `vrrp`, …). */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger whose lines carry `component=name`. */
  child(component: string): Logger;
}

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  level?: LogLevel;
  format?: "logfmt" | "json";
  /** Where lines go; stderr by default. Tests pass an array collector. */
  write?: (line: string) => void;
  component?: string;
  now?: () => Date;
}

const settings: { level: LogLevel; format: "logfmt" | "json" } = {
  level: "info",
  format: "logfmt",
};

/** Sets the process-wide level and format (from `--log-level` or `log:` in the config). */
export function configureLogs(level: LogLevel, format: "logfmt" | "json" = "logfmt"): void {
  settings.level = level;
  settings.format = format;
}

function quote(value: unknown): string {
  const text = String(value);
  return /^[^\s"=]+$/.test(text) ? text : JSON.stringify(text);
}

const encoder = new TextEncoder();

function stderrWrite(line: string): void {
  try {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  } catch {
    // stderr closed: nothing sensible left to do with a log line
  }
}

/** Creates a logger. Level and format follow {@link configureLogs} unless given. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const write = options.write ?? stderrWrite;
  const now = options.now ?? (() => new Date());
  const emit = (level: LogLevel, msg: string, fields: LogFields = {}) => {
    const threshold = options.level ?? settings.level;
    if (ORDER[level] < ORDER[threshold]) return;
    const record: LogFields = {
      ts: now().toISOString(),
      level,
      ...(options.component ? { component: options.component } : {}),
      msg,
      ...fields,
    };
    if ((options.format ?? settings.format) === "json") {
      write(JSON.stringify(record));
      return;
    }
    write(
      Object.entries(record)
        .filter(([, v]) => v !== undefined)
        .map(([k, v]) => `${k}=${quote(v)}`)
        .join(" "),
    );
  };
  return {
    debug: (msg, fields) => emit("debug", msg, fields),
    info: (msg, fields) => emit("info", msg, fields),
    warn: (msg, fields) => emit("warn", msg, fields),
    error: (msg, fields) => emit("error", msg, fields),
    child: (component) => createLogger({ ...options, component }),
  };
}
