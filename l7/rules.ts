/**
 * L7 rules: a listener's ordered rules compiled into matchers. The first rule whose
 * every condition holds wins, as in KTCPVS; a rule without `match` is a default.
 * Pure: no IO.
 * @module
 */
import type { BalanceConfig, ListenerConfig, RuleConfig } from "../config/schema.ts";

/** What a rule can look at in a request. */
export interface RequestView {
  readonly method: string;
  /** Path without the query, e.g. `/img/a.jpg`. */
  readonly path: string;
  /** Raw query after `?`, without the `?`; empty when none. */
  readonly query: string;
  /** Host without port, lowercased; empty when absent. */
  readonly host: string;
  /** A header's value by lowercase name (the first when repeated). */
  header(name: string): string | undefined;
}

/** How a rule balances among its pool's servers. */
export interface Balance {
  /** `uri`, `path`, `host`, `source`, `header NAME`, `cookie NAME`, or undefined. */
  readonly hash?: string;
  /** An L4 scheduler name, used when `hash` is not set. */
  readonly scheduler?: string;
  readonly loadBound: number;
}

/** One compiled rule. */
export interface CompiledRule {
  readonly index: number;
  /** Human-readable text such as `path_suffix .jpg|.png → images`. */
  readonly text: string;
  readonly pool: string;
  readonly balance: Balance;
  matches(request: RequestView): boolean;
}

type Test = (request: RequestView) => boolean;

function list(value: string | readonly string[] | undefined): string[] {
  if (value === undefined) return [];
  return typeof value === "string" ? [value] : [...value];
}

/** Matches `host` (lowercase, no port) against `pattern`: exact or `*.example.com`. */
export function hostMatches(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase();
  if (p.startsWith("*.")) {
    const suffix = p.slice(1);
    return host.length > suffix.length && host.endsWith(suffix);
  }
  return host === p;
}

/** The value of query parameter `name` in a raw query string (first occurrence). */
export function queryParam(query: string, name: string): string | undefined {
  if (!query) return undefined;
  for (const part of query.split("&")) {
    const eq = part.indexOf("=");
    const key = eq < 0 ? part : part.slice(0, eq);
    if (safeDecode(key) === name) return eq < 0 ? "" : safeDecode(part.slice(eq + 1));
  }
  return undefined;
}

function safeDecode(text: string): string {
  if (!text.includes("%") && !text.includes("+")) return text;
  try {
    return decodeURIComponent(text.replace(/\+/g, " "));
  } catch {
    return text;
  }
}

function valueTest(
  spec: { value?: string; regex?: string },
  get: (request: RequestView) => string | undefined,
): Test {
  if (spec.value !== undefined) {
    const want = spec.value;
    return (r) => get(r) === want;
  }
  if (spec.regex !== undefined) {
    const re = new RegExp(spec.regex);
    return (r) => {
      const v = get(r);
      return v !== undefined && re.test(v);
    };
  }
  return (r) => get(r) !== undefined;
}

function describeNameValue(kind: string, spec: { name: string; value?: string; regex?: string }) {
  if (spec.value !== undefined) return `${kind} ${spec.name}=${spec.value}`;
  if (spec.regex !== undefined) return `${kind} ${spec.name}~/${spec.regex}/`;
  return `${kind} ${spec.name}`;
}

function resolveBalance(listener: BalanceConfig, rule: BalanceConfig | undefined): Balance {
  const own = rule && (rule.hash !== undefined || rule.scheduler !== undefined);
  const source = own ? rule : listener;
  const hash = source.hash ?? (source.scheduler === undefined ? "uri" : undefined);
  return {
    hash,
    scheduler: hash ? undefined : source.scheduler,
    loadBound: (rule ?? listener).load_bound,
  };
}

/** Compiles one rule of a listener. */
export function compileRule(
  rule: RuleConfig,
  index: number,
  options: { balance: BalanceConfig },
): CompiledRule {
  const tests: Test[] = [];
  const words: string[] = [];
  const m = rule.match ?? {};
  const prefixes = list(m.path_prefix);
  if (prefixes.length) {
    tests.push((r) => prefixes.some((p) => r.path.startsWith(p)));
    words.push(`path_prefix ${prefixes.join("|")}`);
  }
  const suffixes = list(m.path_suffix);
  if (suffixes.length) {
    tests.push((r) => suffixes.some((s) => r.path.endsWith(s)));
    words.push(`path_suffix ${suffixes.join("|")}`);
  }
  if (m.path_regex !== undefined) {
    const re = new RegExp(m.path_regex);
    tests.push((r) => re.test(r.path));
    words.push(`path_regex /${m.path_regex}/`);
  }
  const hosts = list(m.host);
  if (hosts.length) {
    tests.push((r) => hosts.some((h) => hostMatches(h, r.host)));
    words.push(`host ${hosts.join("|")}`);
  }
  if (m.header) {
    const name = m.header.name.toLowerCase();
    tests.push(valueTest(m.header, (r) => r.header(name)));
    words.push(describeNameValue("header", m.header));
  }
  const methods = list(m.method).map((x) => x.toUpperCase());
  if (methods.length) {
    tests.push((r) => methods.includes(r.method));
    words.push(`method ${methods.join("|")}`);
  }
  if (m.query) {
    const name = m.query.name;
    tests.push(valueTest(m.query, (r) => queryParam(r.query, name)));
    words.push(describeNameValue("query", m.query));
  }
  const label = rule.name ? `${rule.name}: ` : "";
  const text = `${label}${words.length ? words.join(" and ") : "default"} → ${rule.pool}`;
  return {
    index,
    text,
    pool: rule.pool,
    balance: resolveBalance(options.balance, rule.balance),
    matches: (r) => {
      for (const t of tests) if (!t(r)) return false;
      return true;
    },
  };
}

/** A listener's compiled rule table. */
export interface RuleTable {
  readonly rules: readonly CompiledRule[];
  /** The first rule that matches, or undefined when none does. */
  match(request: RequestView): CompiledRule | undefined;
}

/** Compiles every rule of a listener, in order. */
export function compileRules(listener: Pick<ListenerConfig, "rules" | "balance">): RuleTable {
  const rules = listener.rules.map((rule, i) =>
    compileRule(rule, i, { balance: listener.balance })
  );
  return {
    rules,
    match(request) {
      for (const rule of rules) if (rule.matches(request)) return rule;
      return undefined;
    },
  };
}

/** Options of {@link hashKey}. */
export interface HashKeyOptions {
  /** The client's IP address, for `source`. */
  readonly source?: string;
  /** The raw request target (for `uri`); `path?query` is used when absent. */
  readonly target?: string;
}

/**
 * The string a rule's `hash` setting hashes: the normalized URI, the path, the host,
 * a header or cookie value, or the client address. Missing values hash as "".
 */
export function hashKey(hash: string, request: RequestView, options: HashKeyOptions = {}): string {
  switch (hash) {
    case "uri":
      return normalizeUri(request.path, request.query);
    case "path":
      return normalizeUri(request.path, "");
    case "host":
      return request.host;
    case "source":
      return options.source ?? "";
  }
  if (hash.startsWith("header ")) return request.header(hash.slice(7).toLowerCase()) ?? "";
  if (hash.startsWith("cookie ")) {
    return cookieValue(request.header("cookie") ?? "", hash.slice(7)) ?? "";
  }
  return normalizeUri(request.path, request.query);
}

const UNRESERVED = /%(4[1-9A-F]|5[0-9A]|6[1-9A-F]|7[0-9A]|3[0-9]|2D|2E|5F|7E)/gi;

/**
 * Normalizes a path and query for hashing: percent-encodings of unreserved characters
 * are decoded (`/%7Ea` = `/~a`), other escapes uppercased, so equivalent URLs share a
 * cache server.
 */
export function normalizeUri(path: string, query: string): string {
  let p = path;
  if (p.includes("%")) {
    p = p.replace(UNRESERVED, (m) => String.fromCharCode(parseInt(m.slice(1), 16)))
      .replace(/%[0-9a-f]{2}/gi, (m) => m.toUpperCase());
  }
  return query ? `${p}?${query}` : p;
}

/** The value of cookie `name` in a Cookie header, if present. */
export function cookieValue(header: string, name: string): string | undefined {
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
