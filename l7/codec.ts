/**
 * A strict HTTP/1.1 message-head codec and chunked-body scanner. Pure: works on byte
 * arrays, no IO. Strictness is the point: every shape that two parsers could read
 * differently (CL + TE, differing Content-Length, obs-fold, bare LF, space before the
 * colon, bad chunk sizes) is an error here, so nothing ambiguous reaches a server.
 *
 * Bytes are mapped 1:1 to string code units (latin1) both ways, so header values with
 * obs-text pass through unchanged.
 * @module
 */

/** A parsed request or response head. */
export interface Head {
  /** Request method, or "" for a response. */
  readonly method: string;
  /** Request target, or "" for a response. */
  readonly target: string;
  /** Response status, or 0 for a request. */
  readonly status: number;
  /** Response reason phrase. */
  readonly reason: string;
  /** `HTTP/1.1` or `HTTP/1.0`. */
  readonly version: string;
  /** Headers in order, names as sent. */
  readonly headers: readonly (readonly [string, string])[];
  /** Lowercase header names, index for index (filled by the parsers). */
  readonly names?: readonly string[];
  /**
   * The head's bytes (filled by the parsers): a view of the parsed buffer, valid only
   * until that buffer is refilled, so heads are rewritten before the next read.
   */
  readonly raw?: Uint8Array;
  /** Byte offsets in `raw` of each header line, `[start, end)` pairs without CRLF. */
  readonly spans?: readonly number[];
  /** Byte offsets in `raw` of each header value (trimmed), `[start, end)` pairs. */
  readonly values?: readonly number[];
  /** Bytes the head took, including the blank line. */
  readonly length: number;
}

/** The outcome of parsing a head. */
export type HeadResult =
  | { readonly kind: "incomplete" }
  | { readonly kind: "error"; readonly status: number; readonly reason: string }
  | { readonly kind: "ok"; readonly head: Head };

/** Limits applied while parsing. */
export interface HeadLimits {
  /** Maximum bytes of the head (request line + headers + blank line). */
  readonly maxBytes: number;
  /** Maximum number of header fields. */
  readonly maxHeaders: number;
}

const CR = 13;
const LF = 10;

// token = 1*tchar; tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
//         "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") {
  TCHAR[c.charCodeAt(0)] = 1;
}

/** Finds the end of the head (index just past CRLFCRLF), or -1. */
export function headEnd(buf: Uint8Array, from = 0): number {
  for (let i = Math.max(from, 3); i < buf.length; i++) {
    if (buf[i] === LF && buf[i - 1] === CR && buf[i - 2] === LF && buf[i - 3] === CR) return i + 1;
  }
  return -1;
}

const ASCII = new TextDecoder();

/** Decodes bytes as latin1 (one code unit per byte). */
export function latin1(bytes: Uint8Array): string {
  return decodeRange(bytes, 0, bytes.length);
}

function decodeRange(buf: Uint8Array, start: number, end: number): string {
  let ascii = true;
  for (let i = start; i < end; i++) {
    if (buf[i] > 0x7f) {
      ascii = false;
      break;
    }
  }
  // ASCII is the common case: the native decoder is exact there and allocates least
  if (ascii) return ASCII.decode(buf.subarray(start, end));
  let out = "";
  for (let i = start; i < end; i += 4096) {
    out += String.fromCharCode.apply(
      null,
      buf.subarray(i, Math.min(end, i + 4096)) as unknown as number[],
    );
  }
  return out;
}

const UTF8 = new TextEncoder();

/** Encodes a latin1 string (code units < 256) into bytes. */
export function encodeLatin1(text: string): Uint8Array {
  const fast = UTF8.encode(text);
  if (fast.length === text.length) return fast; // ASCII only: UTF-8 is the same bytes
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

function error(status: number, reason: string): HeadResult {
  return { kind: "error", status, reason };
}

function isToken(text: string): boolean {
  if (!text.length) return false;
  for (let i = 0; i < text.length; i++) if (!TCHAR[text.charCodeAt(i)]) return false;
  return true;
}

/** Bytes `[a, b)` of `buf` as a latin1 string. */
function latin1Range(buf: Uint8Array, a: number, b: number): string {
  if (b - a > 1024) return decodeRange(buf, a, b);
  return String.fromCharCode.apply(null, buf.subarray(a, b) as unknown as number[]);
}

/** Interned strings for the header names and methods most messages carry. */
const COMMON_NAMES = [
  "host",
  "content-length",
  "transfer-encoding",
  "connection",
  "upgrade",
  "expect",
  "te",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "proxy-authenticate",
  "via",
  "forwarded",
  "x-forwarded-for",
  "x-forwarded-proto",
  "x-forwarded-host",
  "content-type",
  "content-encoding",
  "date",
  "server",
  "user-agent",
  "accept",
  "accept-encoding",
  "accept-language",
  "accept-ranges",
  "authorization",
  "cookie",
  "set-cookie",
  "cache-control",
  "pragma",
  "etag",
  "last-modified",
  "if-modified-since",
  "if-none-match",
  "range",
  "referer",
  "origin",
  "location",
  "vary",
  "age",
  "expires",
  "x-cache",
  "x-served-by",
  "x-request-id",
];
const COMMON_METHODS = ["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE"];

function byLength(words: string[]): string[][] {
  const out: string[][] = [];
  for (const w of words) (out[w.length] ??= []).push(w);
  return out;
}
const NAMES_BY_LENGTH = byLength(COMMON_NAMES);
const METHODS_BY_LENGTH = byLength(COMMON_METHODS);

/** The lowercase name in bytes `[a, b)`: an interned string for common names. */
function lowerName(buf: Uint8Array, a: number, b: number): string {
  const list = NAMES_BY_LENGTH[b - a];
  if (list !== undefined) {
    next: for (let w = 0; w < list.length; w++) {
      const name = list[w];
      for (let k = 0; k < name.length; k++) {
        let c = buf[a + k];
        if (c >= 65 && c <= 90) c += 32;
        if (c !== name.charCodeAt(k)) continue next;
      }
      return name;
    }
  }
  return latin1Range(buf, a, b).toLowerCase();
}

/** The method in bytes `[a, b)`: an interned string for common methods. */
function methodName(buf: Uint8Array, a: number, b: number): string {
  const list = METHODS_BY_LENGTH[b - a];
  if (list !== undefined) {
    next: for (let w = 0; w < list.length; w++) {
      const name = list[w];
      for (let k = 0; k < name.length; k++) if (buf[a + k] !== name.charCodeAt(k)) continue next;
      return name;
    }
  }
  return latin1Range(buf, a, b);
}

/** True when `buf[0, end)` has a CR not followed by LF or an LF not after a CR. */
function bareCrLf(buf: Uint8Array, end: number): boolean {
  for (let i = 0; i < end; i++) {
    const c = buf[i];
    if (c === CR) {
      if (buf[i + 1] !== LF) return true;
      i++;
    } else if (c === LF) {
      return true;
    }
  }
  return false;
}

/** The index of the next CR at or after `from` (the head has one before its end). */
function nextCr(buf: Uint8Array, from: number): number {
  let i = from;
  while (buf[i] !== CR) i++;
  return i;
}

/**
 * A parsed head whose header names are lowercased as parsed (common ones interned)
 * and whose values stay bytes until asked for: `headers` builds the name/value pairs
 * on first use, {@link valueAt} reads one value.
 */
class ParsedHead implements Head {
  readonly method: string;
  readonly target: string;
  readonly status: number;
  readonly reason: string;
  readonly version: string;
  readonly names: string[];
  readonly raw: Uint8Array;
  readonly spans: number[];
  readonly values: number[];
  readonly length: number;
  #headers: [string, string][] | undefined;

  constructor(
    line: { method: string; target: string; status: number; reason: string; version: string },
    fields: { names: string[]; spans: number[]; values: number[]; raw: Uint8Array },
  ) {
    this.method = line.method;
    this.target = line.target;
    this.status = line.status;
    this.reason = line.reason;
    this.version = line.version;
    this.names = fields.names;
    this.spans = fields.spans;
    this.values = fields.values;
    this.raw = fields.raw;
    this.length = fields.raw.length;
  }

  get headers(): readonly (readonly [string, string])[] {
    if (this.#headers === undefined) {
      const out: [string, string][] = [];
      const { raw, spans, values } = this;
      for (let i = 0; i < this.names.length; i++) {
        let colon = spans[2 * i];
        while (raw[colon] !== 0x3a) colon++;
        out.push([
          latin1Range(raw, spans[2 * i], colon),
          latin1Range(raw, values[2 * i], values[2 * i + 1]),
        ]);
      }
      this.#headers = out;
    }
    return this.#headers;
  }
}

/** Header fields parsed from bytes, or why they are bad. */
type Fields =
  | { names: string[]; spans: number[]; values: number[]; raw: Uint8Array }
  | { status: number; reason: string };

/** Parses the header lines of `buf[from, end)` (the head without its status line). */
function parseFields(buf: Uint8Array, from: number, end: number, limits: HeadLimits): Fields {
  const names: string[] = [];
  const spans: number[] = [];
  const values: number[] = [];
  let i = from;
  while (i < end) {
    const eol = nextCr(buf, i);
    if (eol === i) break; // the blank line
    spans.push(i, eol);
    const first = buf[i];
    if (first === 32 || first === 9) {
      return { status: 400, reason: "obsolete line folding in headers is not accepted" };
    }
    let colon = i;
    while (colon < eol && buf[colon] !== 0x3a) colon++;
    if (colon === eol || colon === i) return { status: 400, reason: "malformed header line" };
    for (let k = i; k < colon; k++) {
      if (!TCHAR[buf[k]]) {
        const name = latin1Range(buf, i, colon);
        return { status: 400, reason: `invalid header name ${JSON.stringify(name)}` };
      }
    }
    let a = colon + 1;
    let b = eol;
    while (a < b && (buf[a] === 32 || buf[a] === 9)) a++;
    while (b > a && (buf[b - 1] === 32 || buf[b - 1] === 9)) b--;
    for (let k = a; k < b; k++) {
      const c = buf[k];
      if ((c < 0x20 && c !== 9) || c === 0x7f) {
        return {
          status: 400,
          reason: `invalid character in header ${latin1Range(buf, i, colon)}`,
        };
      }
    }
    values.push(a, b);
    names.push(lowerName(buf, i, colon));
    if (names.length > limits.maxHeaders) {
      return { status: 431, reason: `more than ${limits.maxHeaders} header fields` };
    }
    i = eol + 2;
  }
  return { names, spans, values, raw: buf.subarray(0, end) };
}

/** The number of header fields of a head. */
export function headerCount(head: Head): number {
  return head.names?.length ?? head.headers.length;
}

/** The value of header `i` (materialized from the head's bytes when it has them). */
export function valueAt(head: Head, i: number): string {
  const values = head.values;
  const raw = head.raw;
  if (values !== undefined && raw !== undefined) {
    return latin1Range(raw, values[2 * i], values[2 * i + 1]);
  }
  return head.headers[i][1];
}

/**
 * A head that no longer depends on the buffer it was parsed from (its bytes copied,
 * its fields materialized): for a head still needed after its buffer is refilled.
 */
export function detachHead(head: Head): Head {
  return {
    method: head.method,
    target: head.target,
    status: head.status,
    reason: head.reason,
    version: head.version,
    headers: head.headers,
    names: head.names,
    raw: head.raw?.slice(),
    spans: head.spans,
    values: head.values,
    length: head.length,
  };
}

/** The lowercase name of header `i`. */
export function nameAt(head: Head, i: number): string {
  return head.names?.[i] ?? head.headers[i][0].toLowerCase();
}

const HTTP11 = "HTTP/1.1";
const HTTP10 = "HTTP/1.0";

/** `HTTP/1.1` or `HTTP/1.0` when `buf[a, b)` is one of them, else undefined. */
function versionAt(buf: Uint8Array, a: number, b: number): string | undefined {
  if (b - a !== 8) return undefined;
  for (let k = 0; k < 7; k++) if (buf[a + k] !== HTTP11.charCodeAt(k)) return undefined;
  const minor = buf[a + 7];
  return minor === 49 ? HTTP11 : minor === 48 ? HTTP10 : undefined;
}

/** Parses a request head from the start of `buf`. */
export function parseRequestHead(buf: Uint8Array, limits: HeadLimits): HeadResult {
  const end = headEnd(buf);
  if (end < 0) {
    if (buf.length > limits.maxBytes) {
      return error(431, `request head larger than ${limits.maxBytes} bytes`);
    }
    return bareLf(buf) ? error(400, "bare LF in request head") : { kind: "incomplete" };
  }
  if (end > limits.maxBytes) return error(431, `request head larger than ${limits.maxBytes} bytes`);
  if (bareCrLf(buf, end)) return error(400, "bare CR or LF in request head");
  const eol = nextCr(buf, 0);
  let sp1 = 0;
  while (sp1 < eol && buf[sp1] !== 32) sp1++;
  let sp2 = sp1 + 1;
  while (sp2 < eol && buf[sp2] !== 32) sp2++;
  let sp3 = sp2 + 1;
  while (sp3 < eol && buf[sp3] !== 32) sp3++;
  if (sp2 >= eol || sp3 < eol) return error(400, "malformed request line");
  if (sp1 === 0) return error(400, "invalid method");
  for (let k = 0; k < sp1; k++) if (!TCHAR[buf[k]]) return error(400, "invalid method");
  if (sp2 === sp1 + 1) return error(400, "invalid request target");
  for (let k = sp1 + 1; k < sp2; k++) {
    const c = buf[k];
    if (c <= 0x20 || c >= 0x7f) return error(400, "invalid request target");
  }
  const version = versionAt(buf, sp2 + 1, eol);
  if (version === undefined) {
    const text = latin1Range(buf, sp2 + 1, eol);
    return /^HTTP\/\d\.\d$/.test(text)
      ? error(505, `${text} is not supported; use HTTP/1.1`)
      : error(400, "malformed HTTP version");
  }
  const fields = parseFields(buf, eol + 2, end, limits);
  if (!("names" in fields)) return error(fields.status, fields.reason);
  const line = {
    method: methodName(buf, 0, sp1),
    target: latin1Range(buf, sp1 + 1, sp2),
    status: 0,
    reason: "",
    version,
  };
  return { kind: "ok", head: new ParsedHead(line, fields) };
}

function bareLf(buf: Uint8Array): boolean {
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] === LF && (i === 0 || buf[i - 1] !== CR)) return true;
  }
  return false;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** Parses a response head from the start of `buf`. */
export function parseResponseHead(buf: Uint8Array, limits: HeadLimits): HeadResult {
  const end = headEnd(buf);
  if (end < 0) {
    return buf.length > limits.maxBytes
      ? error(502, `response head larger than ${limits.maxBytes} bytes`)
      : { kind: "incomplete" };
  }
  if (end > limits.maxBytes) {
    return error(502, `response head larger than ${limits.maxBytes} bytes`);
  }
  if (bareCrLf(buf, end)) return error(502, "bare CR or LF in response head");
  const eol = nextCr(buf, 0);
  // HTTP/1.x SP 3DIGIT [SP reason]
  const version = eol >= 12 ? versionAt(buf, 0, 8) : undefined;
  if (
    version === undefined || buf[8] !== 32 || !isDigit(buf[9]) || !isDigit(buf[10]) ||
    !isDigit(buf[11]) || (eol > 12 && buf[12] !== 32)
  ) {
    return error(502, "malformed status line");
  }
  const fields = parseFields(buf, eol + 2, end, limits);
  if (!("names" in fields)) return error(502, `server sent ${fields.reason}`);
  const status = (buf[9] - 48) * 100 + (buf[10] - 48) * 10 + (buf[11] - 48);
  const reason = eol <= 13
    ? ""
    : eol === 15 && buf[13] === 79 && buf[14] === 75
    ? "OK"
    : latin1Range(buf, 13, eol);
  const line = { method: "", target: "", status, reason, version };
  return { kind: "ok", head: new ParsedHead(line, fields) };
}

/** Options of {@link writeHead}. */
export interface WriteHeadOptions {
  /** Non-zero for each header of the head to copy. */
  readonly keep: Uint8Array;
  /** Header lines to add, each ending in CRLF. */
  readonly extra: string;
  /**
   * A buffer to write into (from offset 0) instead of a new array when the head fits;
   * the result is then a view of it, valid until the buffer is written again.
   */
  readonly into?: Uint8Array;
}

/**
 * Writes a head: `first` line, the headers of `head` whose `keep[i]` is non-zero
 * (copied byte for byte from the parsed head when it has them), then `extra` (header
 * lines each ending in CRLF) and the blank line. Strings must be latin1.
 */
export function writeHead(first: string, head: Head, options: WriteHeadOptions): Uint8Array {
  const { keep, extra } = options;
  const raw = head.raw;
  const spans = head.spans;
  const n = headerCount(head);
  if (!raw || !spans) {
    let text = first + "\r\n";
    for (let i = 0; i < n; i++) {
      if (keep[i]) text += `${head.headers[i][0]}: ${head.headers[i][1]}\r\n`;
    }
    return encodeLatin1(text + extra + "\r\n");
  }
  let size = first.length + 2 + extra.length + 2;
  for (let i = 0; i < n; i++) if (keep[i]) size += spans[2 * i + 1] - spans[2 * i] + 2;
  const into = options.into;
  const out = into !== undefined && into.length >= size
    ? into.subarray(0, size)
    : new Uint8Array(size);
  let o = 0;
  for (let k = 0; k < first.length; k++) out[o++] = first.charCodeAt(k);
  out[o++] = CR;
  out[o++] = LF;
  for (let i = 0; i < n; i++) {
    if (!keep[i]) continue;
    const start = spans[2 * i];
    const end = spans[2 * i + 1];
    if (end - start > 64) {
      out.set(raw.subarray(start, end), o);
      o += end - start;
    } else {
      for (let k = start; k < end; k++) out[o++] = raw[k]; // no view object for short lines
    }
    out[o++] = CR;
    out[o++] = LF;
  }
  for (let k = 0; k < extra.length; k++) out[o++] = extra.charCodeAt(k);
  out[o++] = CR;
  out[o++] = LF;
  return out;
}

/** How a message body is delimited. */
export type Framing =
  | { readonly kind: "none" }
  | { readonly kind: "length"; readonly length: number }
  | { readonly kind: "chunked" }
  | { readonly kind: "close" };

/** Either a framing or an error status with its reason. */
export type FramingResult = Framing | { readonly kind: "error"; readonly reason: string };

const NONE: Framing = { kind: "none" };
const CHUNKED: Framing = { kind: "chunked" };
const CLOSE: Framing = { kind: "close" };

/**
 * The value of one Content-Length list (`12`, `12, 12`): the number when every
 * element is 1 to 15 digits, -1 when one is not, -2 when two differ. `seen` is the
 * value of earlier Content-Length fields (-3 for none).
 */
function contentLength(value: string, seen: number): number {
  let result = seen;
  let i = 0;
  const n = value.length;
  while (true) {
    while (i < n && (value.charCodeAt(i) === 32 || value.charCodeAt(i) === 9)) i++;
    let digits = 0;
    let v = 0;
    while (i < n) {
      const c = value.charCodeAt(i);
      if (c < 48 || c > 57) break;
      v = v * 10 + (c - 48);
      digits++;
      i++;
    }
    while (i < n && (value.charCodeAt(i) === 32 || value.charCodeAt(i) === 9)) i++;
    if (digits === 0 || digits > 15 || (i < n && value.charCodeAt(i) !== 44)) return -1;
    if (result === -3) result = v;
    else if (result >= 0 && result !== v) result = -2;
    if (i >= n) return result;
    i++; // the comma
  }
}

function framingOf(
  head: Head,
  options: { request: boolean },
): FramingResult {
  let te: string | undefined;
  let length = -3;
  const count = headerCount(head);
  for (let i = 0; i < count; i++) {
    const n = nameAt(head, i);
    if (n === "transfer-encoding") {
      const value = valueAt(head, i);
      te = te === undefined ? value : `${te}, ${value}`;
    } else if (n === "content-length") {
      const v = contentLength(valueAt(head, i), length);
      // an invalid value wins over differing ones, as the element checks come first
      length = v === -1 || length === -1 ? -1 : v;
    }
  }
  if (te !== undefined) {
    if (length !== -3) {
      return { kind: "error", reason: "both Content-Length and Transfer-Encoding are present" };
    }
    if (head.version === "HTTP/1.0" && options.request) {
      return { kind: "error", reason: "Transfer-Encoding in an HTTP/1.0 request" };
    }
    if (te.length === 7 && te.toLowerCase() === "chunked") return CHUNKED;
    const codings = te.split(",").map((c) => c.trim().toLowerCase());
    if (codings.some((c) => !isToken(c))) {
      return { kind: "error", reason: "malformed Transfer-Encoding" };
    }
    if (
      codings[codings.length - 1] !== "chunked" || codings.indexOf("chunked") !== codings.length - 1
    ) {
      return options.request
        ? { kind: "error", reason: "Transfer-Encoding must end with chunked, once" }
        : CLOSE;
    }
    return CHUNKED;
  }
  if (length !== -3) {
    if (length === -1) return { kind: "error", reason: "invalid Content-Length" };
    if (length === -2) return { kind: "error", reason: "differing Content-Length values" };
    return length === 0 ? NONE : { kind: "length", length };
  }
  return options.request ? NONE : CLOSE;
}

/** The body framing of a request, or why it must be rejected with 400. */
export function requestFraming(head: Head): FramingResult {
  return framingOf(head, { request: true });
}

/** The body framing of a response to a request with `method`, or why it is bad (502). */
export function responseFraming(head: Head, method: string): FramingResult {
  const s = head.status;
  if (method === "HEAD" || (s >= 100 && s < 200) || s === 204 || s === 304) return NONE;
  return framingOf(head, { request: false });
}

/** The first value of a header by lowercase name. */
export function headerValue(head: Head, lowerName: string): string | undefined {
  const count = headerCount(head);
  for (let i = 0; i < count; i++) if (nameAt(head, i) === lowerName) return valueAt(head, i);
  return undefined;
}

const enum Chunk {
  Size,
  Ext,
  SizeLf,
  Data,
  DataCr,
  DataLf,
  TrailerStart,
  Trailer,
  TrailerLf,
  EndLf,
  Done,
}

/** Result of feeding bytes to a {@link ChunkedScanner}. */
export interface ScanResult {
  /** Bytes of the input that belong to the body (all of it unless done). */
  readonly used: number;
  readonly done: boolean;
  readonly error?: string;
}

/**
 * Validates a chunked body as it streams by, without copying it: tells how many of
 * the fed bytes belong to the body, when it ends (after the trailers) and whether it
 * is malformed (bad hex size, over 15 hex digits, bare LF, missing CRLF after data).
 */
export class ChunkedScanner {
  #state = Chunk.Size;
  #digits = 0;
  #size = 0;
  #remaining = 0;
  #trailerBytes = 0;
  /** Total payload bytes seen so far (excluding framing). */
  payload = 0;

  /** Whether the final chunk and trailers have been seen. */
  get done(): boolean {
    return this.#state === Chunk.Done;
  }

  /** Scans `buf[start, end)`. */
  feed(buf: Uint8Array, start: number, end: number): ScanResult {
    let i = start;
    while (i < end) {
      const c = buf[i];
      switch (this.#state) {
        case Chunk.Size: {
          const v = hexValue(c);
          if (v >= 0) {
            if (++this.#digits > 15) return this.#fail(i, start, "chunk size too large");
            this.#size = this.#size * 16 + v;
          } else if (this.#digits === 0) {
            return this.#fail(i, start, "invalid chunk size");
          } else if (c === CR) {
            this.#state = Chunk.SizeLf;
          } else if (c === 0x3b /* ; */) {
            this.#state = Chunk.Ext;
          } else {
            return this.#fail(i, start, "invalid chunk size");
          }
          i++;
          break;
        }
        case Chunk.Ext:
          if (c === CR) this.#state = Chunk.SizeLf;
          else if (c === LF || (c < 0x20 && c !== 9) || c === 0x7f) {
            return this.#fail(i, start, "invalid chunk extension");
          }
          i++;
          break;
        case Chunk.SizeLf:
          if (c !== LF) return this.#fail(i, start, "chunk size line must end with CRLF");
          i++;
          if (this.#size === 0) {
            this.#state = Chunk.TrailerStart;
          } else {
            this.#remaining = this.#size;
            this.#state = Chunk.Data;
          }
          this.#digits = 0;
          this.#size = 0;
          break;
        case Chunk.Data: {
          const take = Math.min(this.#remaining, end - i);
          this.#remaining -= take;
          this.payload += take;
          i += take;
          if (this.#remaining === 0) this.#state = Chunk.DataCr;
          break;
        }
        case Chunk.DataCr:
          if (c !== CR) return this.#fail(i, start, "chunk data must end with CRLF");
          this.#state = Chunk.DataLf;
          i++;
          break;
        case Chunk.DataLf:
          if (c !== LF) return this.#fail(i, start, "chunk data must end with CRLF");
          this.#state = Chunk.Size;
          i++;
          break;
        case Chunk.TrailerStart:
          if (c === CR) this.#state = Chunk.EndLf;
          else if (c === LF) return this.#fail(i, start, "bare LF in trailers");
          else this.#state = Chunk.Trailer;
          i++;
          break;
        case Chunk.Trailer:
          if (++this.#trailerBytes > 16384) return this.#fail(i, start, "trailers too large");
          if (c === CR) this.#state = Chunk.TrailerLf;
          else if (c === LF) return this.#fail(i, start, "bare LF in trailers");
          i++;
          break;
        case Chunk.TrailerLf:
          if (c !== LF) return this.#fail(i, start, "trailer line must end with CRLF");
          this.#state = Chunk.TrailerStart;
          i++;
          break;
        case Chunk.EndLf:
          if (c !== LF) return this.#fail(i, start, "chunked body must end with CRLF");
          this.#state = Chunk.Done;
          i++;
          return { used: i - start, done: true };
        case Chunk.Done:
          return { used: i - start, done: true };
      }
    }
    return { used: i - start, done: this.#state === Chunk.Done };
  }

  #fail(at: number, start: number, reason: string): ScanResult {
    return { used: at - start, done: false, error: reason };
  }
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}
