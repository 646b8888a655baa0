/**
 * Loads appliance.yaml: YAML with source positions → zod schema → cross-references →
 * Model. Every problem in the file is reported at once as `FILE:LINE:COL: message`,
 * YAML syntax errors included; nothing here throws for bad input.
 * @module
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import type { z } from "zod";
import { crossCheck, type CrossCheckOptions, type PathIssue, pathText } from "./refs.ts";
import { buildModel, type Model } from "./model.ts";
import { type Config, configSchema } from "./schema.ts";
import { type ConfigError, formatError } from "./error.ts";

export { type ConfigError, formatError } from "./error.ts";

/** The outcome of loading a config. */
export type LoadResult =
  | { readonly ok: true; readonly model: Model; readonly config: Config }
  | { readonly ok: false; readonly errors: readonly ConfigError[] };

/** Options of {@link loadConfigText} and {@link loadConfigFile}. */
export type LoadOptions = CrossCheckOptions;

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Reads and loads a config file. A missing or unreadable file is an error, not a throw. */
export async function loadConfigFile(path: string, options: LoadOptions = {}): Promise<LoadResult> {
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await Deno.readFile(path);
  } catch (error) {
    const message = error instanceof Deno.errors.NotFound
      ? "file not found; create it (see examples/production.yaml) or pass -c PATH"
      : error instanceof Deno.errors.PermissionDenied
      ? "permission denied reading the file; check its mode or run with --allow-read"
      : error instanceof Deno.errors.IsADirectory
      ? "is a directory; pass the path of the YAML file itself"
      : `cannot read the file: ${(error as Error).message}`;
    return { ok: false, errors: [{ file: path, line: 0, col: 0, message }] };
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    return {
      ok: false,
      errors: [{ file: path, line: 0, col: 0, message: "is not UTF-8 text; save it as UTF-8" }],
    };
  }
  return loadConfigText(text, { ...options, path, hash: await sha256Hex(bytes) });
}

/** Loads config text; `path` names the file in messages, `hash` identifies the version. */
export function loadConfigText(
  text: string,
  options: LoadOptions & { path?: string; hash?: string } = {},
): LoadResult {
  const file = options.path ?? "appliance.yaml";
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const errors: ConfigError[] = [];
  const at = (offset: number, message: string) => {
    const pos = lines.linePos(Math.min(Math.max(offset, 0), text.length));
    errors.push({ file, line: pos.line, col: pos.col, message });
  };

  const placed = new Set<number>();
  for (const err of doc.errors) {
    if (placed.has(err.pos[0])) continue;
    placed.add(err.pos[0]);
    const unclosed = unclosedBracket(text);
    if (unclosed && /flow (sequence|map|collection)|end with a/i.test(err.message)) {
      const close = text[unclosed] === "[" ? "]" : "}";
      at(unclosed, `"${text[unclosed]}" opened here is never closed; add the closing "${close}"`);
      continue;
    }
    at(err.pos[0], yamlMessage(err.code, err.message));
  }
  if (errors.length) return finish(errors);

  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) {
    at(0, "the file is empty; start from examples/production.yaml or appliance.yaml");
    return finish(errors);
  }
  if (!isMap(doc.contents)) {
    at(
      doc.contents.range?.[0] ?? 0,
      "the top level must be a mapping of keys such as pools:, l7:, l4:, vrrp:",
    );
    return finish(errors);
  }

  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (error) {
    at(0, `cannot expand the YAML: ${(error as Error).message}`);
    return finish(errors);
  }

  const parsed = configSchema.safeParse(data, { reportInput: true });
  if (!parsed.success) {
    const all = parsed.error.issues.flatMap(issueLocations);
    // A misspelt required key shows as "unknown key" plus "missing key": keep the hint only.
    const hinted = new Set(
      all.filter((l) => l.hint).map((l) => `${pathText(l.path.slice(0, -1))}|${l.hint}`),
    );
    for (const located of all) {
      if (located.missing && hinted.has(`${pathText(located.path)}|${located.missing}`)) continue;
      at(locate(doc.contents, located.path, located.key), located.message);
    }
    for (const issue of crossCheckValidSections(data, options)) {
      at(locate(doc.contents, issue.path, issue.key ?? false), issue.message);
    }
    return finish(errors);
  }

  for (const issue of crossCheck(parsed.data, options)) {
    at(locate(doc.contents, issue.path, issue.key ?? false), issue.message);
  }
  if (errors.length) return finish(errors);

  const model = buildModel(parsed.data, { path: file, hash: options.hash ?? "" });
  return { ok: true, model, config: parsed.data };
}

/**
 * Cross-section checks for a file whose shape is wrong somewhere: each top-level
 * section is parsed on its own, invalid ones stand in as their defaults, and checks
 * that touch or rely on an invalid section are dropped, so every other mistake is
 * still reported in the same pass.
 */
function crossCheckValidSections(data: unknown, options: LoadOptions): PathIssue[] {
  const raw = (data ?? {}) as Record<string, unknown>;
  const failed = new Set<string>();
  const assembled: Record<string, unknown> = {};
  for (const [key, section] of Object.entries(configSchema.shape)) {
    const parsed = section.safeParse(raw[key]);
    if (parsed.success) assembled[key] = parsed.data;
    else {
      failed.add(key);
      assembled[key] = section.parse(undefined);
    }
  }
  if (!failed.size) return [];
  return crossCheck(assembled as Config, options).filter((issue) =>
    !failed.has(String(issue.path[0])) && !(issue.needs ?? []).some((s) => failed.has(s))
  );
}

function finish(errors: ConfigError[]): LoadResult {
  const sorted = [...errors].sort((a, b) => a.line - b.line || a.col - b.col);
  const seen = new Set<string>();
  return {
    ok: false,
    errors: sorted.filter((e) => {
      const key = formatError(e);
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    }),
  };
}

function yamlMessage(code: string, message: string): string {
  const first = message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
  switch (code) {
    case "DUPLICATE_KEY":
      return "duplicate key; each key may appear once in a mapping, remove or rename one";
    case "TAB_AS_INDENT":
      return "tab used for indentation; YAML indents with spaces only";
    case "BAD_INDENT":
    case "MISSING_CHAR":
    case "UNEXPECTED_TOKEN":
    case "BLOCK_AS_IMPLICIT_KEY":
    case "MULTILINE_IMPLICIT_KEY":
      return `YAML syntax: ${lowerFirst(first)}; check the indentation and punctuation here`;
    default:
      return `YAML syntax: ${lowerFirst(first)}`;
  }
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

/**
 * Finds the offset of a `[` or `{` that is never closed, ignoring quoted text and
 * comments, so the error points where the collection opened rather than at the end.
 */
function unclosedBracket(text: string): number | undefined {
  const stack: number[] = [];
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = undefined;
      continue;
    }
    if (c === "#" && (i === 0 || /\s/.test(text[i - 1]))) {
      while (i < text.length && text[i] !== "\n") i++;
      continue;
    }
    if ((c === '"' || c === "'") && (stack.length || /[\s:,\[{-]/.test(text[i - 1] ?? " "))) {
      quote = c;
    } else if (c === "[" || c === "{") stack.push(i);
    else if ((c === "]" || c === "}") && stack.length) stack.pop();
  }
  return stack[0];
}

interface Located {
  readonly path: readonly PropertyKey[];
  readonly key: boolean;
  readonly message: string;
  /** For a missing required key: its name. */
  readonly missing?: string;
  /** For an unknown key: the key it probably meant. */
  readonly hint?: string;
}

/** Turns one zod issue into located messages (one per unknown key). */
function issueLocations(issue: z.core.$ZodIssue): Located[] {
  const path = issue.path;
  if (issue.code === "unrecognized_keys") {
    const messages = issue.message.split("\n");
    return issue.keys.map((key, i) => ({
      path: [...path, key],
      key: true,
      message: messages[i] ?? `unknown key "${key}"`,
      hint: /did you mean "([^"]+)"/.exec(messages[i] ?? "")?.[1],
    }));
  }
  if (issue.code === "invalid_type" && issue.input === undefined) {
    const name = String(path[path.length - 1]);
    const parent = path.length > 1 ? ` in ${pathText(path.slice(0, -1))}` : "";
    return [{
      path: path.slice(0, -1),
      key: true,
      message: `missing required key "${name}"${parent}; add ${name}: ...`,
      missing: name,
    }];
  }
  if (issue.code === "invalid_union" && issue.errors.length) {
    // A union whose branches all failed: report the branch that got furthest.
    const best = issue.errors.reduce((a, b) => (depth(b) > depth(a) ? b : a));
    if (depth(best) > 0) {
      return best.flatMap((inner) => issueLocations({ ...inner, path: [...path, ...inner.path] }));
    }
  }
  return [{ path, key: false, message: issue.message }];
}

function depth(issues: readonly z.core.$ZodIssue[]): number {
  return Math.max(0, ...issues.map((i) => i.path.length));
}

/**
 * The source offset of `path` in the document: the value node, or with `key` the
 * key node of the last step. Walks as far as the path exists and points there.
 */
function locate(root: Node | null, path: readonly PropertyKey[], key: boolean): number {
  let node: unknown = root;
  let offset = (root as Node | null)?.range?.[0] ?? 0;
  for (let i = 0; i < path.length; i++) {
    const step = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) =>
        isPair(p) && isScalar(p.key) && String(p.key.value) === String(step)
      );
      if (!pair) return offset;
      const keyNode = pair.key as Node;
      if (last && key) return keyNode.range?.[0] ?? offset;
      node = pair.value;
      offset = (node as Node | null)?.range?.[0] ?? keyNode.range?.[0] ?? offset;
      if (!node) return keyNode.range?.[0] ?? offset;
    } else if (isSeq(node)) {
      const item = node.items[Number(step)];
      if (!item) return offset;
      node = item;
      offset = (item as Node).range?.[0] ?? offset;
    } else {
      return offset;
    }
  }
  return offset;
}

/** Re-exported for callers that only need the type. */
export type { PathIssue };
