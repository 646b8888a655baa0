/**
 * A located problem in a config file and how it is printed. Kept apart from the
 * loader so the long-running process can report errors without loading the YAML
 * parser or the schema (see isolated.ts).
 * @module
 */

/** One located problem. `line` and `col` are 1-based; 0 when the file could not be read. */
export interface ConfigError {
  readonly file: string;
  readonly line: number;
  readonly col: number;
  readonly message: string;
}

/** Formats an error the way compilers do: `FILE:LINE:COL: message`. */
export function formatError(error: ConfigError): string {
  return error.line > 0
    ? `${error.file}:${error.line}:${error.col}: ${error.message}`
    : `${error.file}: ${error.message}`;
}
