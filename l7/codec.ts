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

function badValueChar(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 9) || c === 0x7f) return true;
  }
  return false;
}

/** Splits the head's lines, rejecting bare CR or LF; returns undefined on such bytes. */
function lines(buf: Uint8Array, end: number): string[] | undefined {
  const out = decodeRange(buf, 0, end).split("\r\n");
  for (let i = 0; i < out.length; i++) {
    const line = out[i];
    if (line.indexOf("\n") >= 0 || line.indexOf("\r") >= 0) return undefined;
  }
  return out;
}

/** The lowercase name of header `i`. */
export function nameAt(head: Head, i: number): string {
  return head.names?.[i] ?? head.headers[i][0].toLowerCase();
}

function parseFields(
  list: string[],
  limits: HeadLimits,
  out: { names: string[]; spans: number[] },
): [string, string][] | { status: number; reason: string } {
  const headers: [string, string][] = [];
  const { names, spans } = out;
  let offset = list[0].length + 2;
  for (let i = 1; i < list.length; i++) {
    const line = list[i];
    if (line === "") break;
    spans.push(offset, offset + line.length);
    offset += line.length + 2;
    if (line.charCodeAt(0) === 32 || line.charCodeAt(0) === 9) {
      return { status: 400, reason: "obsolete line folding in headers is not accepted" };
    }
    const colon = line.indexOf(":");
    if (colon <= 0) return { status: 400, reason: "malformed header line" };
    const name = line.slice(0, colon);
    if (!isToken(name)) {
      return { status: 400, reason: `invalid header name ${JSON.stringify(name)}` };
    }
    let a = colon + 1;
    let b = line.length;
    while (a < b && (line.charCodeAt(a) === 32 || line.charCodeAt(a) === 9)) a++;
    while (b > a && (line.charCodeAt(b - 1) === 32 || line.charCodeAt(b - 1) === 9)) b--;
    const value = line.slice(a, b);
    if (badValueChar(value)) return { status: 400, reason: `invalid character in header ${name}` };
    headers.push([name, value]);
    names.push(name.toLowerCase());
    if (headers.length > limits.maxHeaders) {
      return { status: 431, reason: `more than ${limits.maxHeaders} header fields` };
    }
  }
  return headers;
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
  const list = lines(buf, end);
  if (!list) return error(400, "bare CR or LF in request head");
  const parts = list[0].split(" ");
  if (parts.length !== 3) return error(400, "malformed request line");
  const [method, target, version] = parts;
  if (!isToken(method)) return error(400, "invalid method");
  if (!target.length || badValueChar(target) || /[\s\x80-\xff]/.test(target)) {
    return error(400, "invalid request target");
  }
  if (version !== "HTTP/1.1" && version !== "HTTP/1.0") {
    return /^HTTP\/\d\.\d$/.test(version)
      ? error(505, `${version} is not supported; use HTTP/1.1`)
      : error(400, "malformed HTTP version");
  }
  const names: string[] = [];
  const spans: number[] = [];
  const headers = parseFields(list, limits, { names, spans });
  if (!Array.isArray(headers)) return error(headers.status, headers.reason);
  const raw = buf.subarray(0, end);
  return {
    kind: "ok",
    head: {
      method,
      target,
      status: 0,
      reason: "",
      version,
      headers,
      names,
      raw,
      spans,
      length: end,
    },
  };
}

function bareLf(buf: Uint8Array): boolean {
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] === LF && (i === 0 || buf[i - 1] !== CR)) return true;
  }
  return false;
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
  const list = lines(buf, end);
  if (!list) return error(502, "bare CR or LF in response head");
  const m = /^(HTTP\/1\.[01]) (\d{3})(?: (.*))?$/.exec(list[0]);
  if (!m) return error(502, "malformed status line");
  const names: string[] = [];
  const spans: number[] = [];
  const headers = parseFields(list, limits, { names, spans });
  if (!Array.isArray(headers)) return error(502, `server sent ${headers.reason}`);
  const raw = buf.subarray(0, end);
  return {
    kind: "ok",
    head: {
      method: "",
      target: "",
      status: Number(m[2]),
      reason: m[3] ?? "",
      version: m[1],
      headers,
      names,
      raw,
      spans,
      length: end,
    },
  };
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
  const n = head.headers.length;
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
    out.set(raw.subarray(start, end), o);
    o += end - start;
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
  const headers = head.headers;
  for (let i = 0; i < headers.length; i++) {
    const n = nameAt(head, i);
    if (n === "transfer-encoding") {
      const value = headers[i][1];
      te = te === undefined ? value : `${te}, ${value}`;
    } else if (n === "content-length") {
      const v = contentLength(headers[i][1], length);
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
  const headers = head.headers;
  for (let i = 0; i < headers.length; i++) if (nameAt(head, i) === lowerName) return headers[i][1];
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
