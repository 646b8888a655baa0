/**
 * Durations as operators write them: `500ms`, `2s`, `5m`, `1h`, `1m30s`.
 * @module
 */

const UNIT_MS: Readonly<Record<string, number>> = {
  us: 0.001,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** The pattern a duration string must match; shared with the JSON Schema. */
export const DURATION_PATTERN = "^(\\d+(\\.\\d+)?(us|ms|s|m|h|d))+$";

const PART = /(\d+(?:\.\d+)?)(us|ms|s|m|h|d)/g;

/**
 * Parses a duration such as `1m30s` into milliseconds.
 * Returns `undefined` when the text is not a duration; callers word the error.
 */
export function parseDuration(text: string): number | undefined {
  if (!new RegExp(DURATION_PATTERN).test(text)) return undefined;
  let total = 0;
  for (const match of text.matchAll(PART)) {
    total += Number(match[1]) * UNIT_MS[match[2]];
  }
  return total;
}

/** Formats milliseconds the way an operator would write them (`1.5s`, `300ms`, `5m`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms >= 1000) return `${ms / 1000}s`;
  return `${ms}ms`;
}
