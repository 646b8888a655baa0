/**
 * The `http` checker: one HTTP/1.1 request on a fresh connection (`Connection:
 * close`), then the status must be in the expected set and, when asked, the body must
 * match a regex or have a given SHA-256 digest. Reads are bounded: headers to
 * {@link MAX_HEADER_BYTES}, bodies to `maxBody`; a body is only read when a regex or
 * digest needs it.
 * @module
 */
import type { CheckOutcome } from "./machine.ts";
import { head, timeoutReason } from "./reason.ts";
import { connectWithin, type ProbeOptions, type Target } from "./tcp.ts";

/** Largest response head (status line + headers) accepted. */
export const MAX_HEADER_BYTES = 16_384;
/** Default largest body read for a regex or digest. */
export const DEFAULT_MAX_BODY = 1_048_576;

/** What an HTTP check sends and expects. */
export interface HttpSpec {
  readonly method: string;
  readonly path: string;
  /** `Host` header; the target's address when absent. */
  readonly host?: string;
  readonly tls: boolean;
  readonly expect: {
    readonly status: number | readonly number[];
    readonly body_regex?: string;
    readonly digest?: string;
  };
}

/** Options of {@link checkHttp}. */
export interface HttpOptions extends ProbeOptions {
  /** Largest body read for a regex or digest (bytes). */
  readonly maxBody?: number;
  /** Extra CA certificates (PEM) for `tls: true`. */
  readonly caCerts?: string[];
}

class CheckFailure extends Error {}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Builds the request bytes of a check. */
export function requestBytes(target: Target, spec: HttpSpec): Uint8Array {
  const host = spec.host ??
    (target.host.includes(":")
      ? `[${target.host}]:${target.port}`
      : `${target.host}:${target.port}`);
  return encoder.encode(
    `${spec.method} ${spec.path} HTTP/1.1\r\nHost: ${host}\r\nUser-Agent: fulcrum-check\r\n` +
      `Accept: */*\r\nConnection: close\r\n\r\n`,
  );
}

/** A parsed response head. */
export interface ResponseHead {
  readonly status: number;
  readonly headers: ReadonlyMap<string, string>;
  /** Bytes of the head including the blank line. */
  readonly length: number;
}

function indexOfBlankLine(buf: Uint8Array, end: number): number {
  for (let i = 3; i < end; i++) {
    if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) return i + 1;
  }
  return -1;
}

const STATUS_LINE = "HTTP/1.? ###";

/** True when the bytes so far can start `HTTP/1.x NNN`. */
function looksLikeStatusLine(buf: Uint8Array, end: number): boolean {
  for (let i = 0; i < Math.min(end, STATUS_LINE.length); i++) {
    const want = STATUS_LINE[i];
    const c = buf[i];
    if (
      want === "?"
        ? c !== 48 && c !== 49
        : want === "#"
        ? c < 48 || c > 57
        : c !== want.charCodeAt(0)
    ) {
      return false;
    }
  }
  return true;
}

/**
 * Parses a response head from the first `end` bytes of `buf`: the head, `undefined`
 * when more bytes are needed, or throws a failure naming what is wrong.
 */
export function parseHead(buf: Uint8Array, end: number): ResponseHead | undefined {
  if (!looksLikeStatusLine(buf, end)) {
    const start = decoder.decode(buf.subarray(0, Math.min(end, 40)));
    throw new CheckFailure(`bad status line: ${JSON.stringify(head(start, 40))}`);
  }
  const length = indexOfBlankLine(buf, end);
  if (length < 0) {
    if (end >= MAX_HEADER_BYTES) {
      throw new CheckFailure(`response head larger than ${MAX_HEADER_BYTES} bytes`);
    }
    return undefined;
  }
  const lines = decoder.decode(buf.subarray(0, length)).split("\r\n");
  const status = Number(lines[0].slice(9, 12));
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) {
      headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
  }
  return { status, headers, length };
}

/** Reads into a growing buffer until `done` says stop or the connection ends. */
class Reader {
  buf = new Uint8Array(4096);
  end = 0;
  eof = false;
  constructor(readonly conn: Deno.Conn) {}

  async more(limit: number): Promise<boolean> {
    if (this.eof) return false;
    if (this.end === this.buf.length) {
      if (this.buf.length >= limit) return false;
      const grown = new Uint8Array(Math.min(limit, this.buf.length * 2));
      grown.set(this.buf);
      this.buf = grown;
    }
    const n = await this.conn.read(this.buf.subarray(this.end));
    if (n === null) {
      this.eof = true;
      return false;
    }
    this.end += n;
    return true;
  }
}

/** Decodes a complete chunked body, or undefined when more bytes are needed. */
export function dechunk(bytes: Uint8Array): Uint8Array | undefined {
  const parts: Uint8Array[] = [];
  let at = 0;
  for (;;) {
    let eol = -1;
    for (let i = at; i + 1 < bytes.length; i++) {
      if (bytes[i] === 13 && bytes[i + 1] === 10) {
        eol = i;
        break;
      }
    }
    if (eol < 0) return undefined;
    const sizeText = decoder.decode(bytes.subarray(at, eol)).split(";")[0].trim();
    if (!/^[0-9a-fA-F]+$/.test(sizeText)) {
      throw new CheckFailure(`bad chunk size ${JSON.stringify(head(sizeText, 20))}`);
    }
    const size = parseInt(sizeText, 16);
    if (size === 0) break;
    const start = eol + 2;
    if (start + size + 2 > bytes.length) return undefined;
    parts.push(bytes.subarray(start, start + size));
    at = start + size + 2;
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

async function readBody(
  reader: Reader,
  parsed: ResponseHead,
  maxBody: number,
): Promise<Uint8Array> {
  const start = parsed.length;
  const limit = start + maxBody + 64;
  const tooBig = `body larger than ${maxBody} bytes`;
  const lengthText = parsed.headers.get("content-length");
  if (parsed.headers.get("transfer-encoding")?.toLowerCase().includes("chunked")) {
    for (;;) {
      const body = dechunk(reader.buf.subarray(start, reader.end));
      if (body) {
        if (body.length > maxBody) throw new CheckFailure(tooBig);
        return body;
      }
      if (reader.end - start > maxBody + 64) throw new CheckFailure(tooBig);
      if (!await reader.more(limit)) throw new CheckFailure("connection closed mid-body");
    }
  }
  if (lengthText !== undefined) {
    const length = Number(lengthText);
    if (!Number.isSafeInteger(length) || length < 0) {
      throw new CheckFailure(`bad content-length ${JSON.stringify(head(lengthText, 20))}`);
    }
    if (length > maxBody) throw new CheckFailure(tooBig);
    while (reader.end - start < length) {
      if (!await reader.more(limit)) throw new CheckFailure("connection closed mid-body");
    }
    return reader.buf.slice(start, start + length);
  }
  while (await reader.more(limit)) {
    if (reader.end - start > maxBody) throw new CheckFailure(tooBig);
  }
  if (reader.end - start > maxBody) throw new CheckFailure(tooBig);
  return reader.buf.slice(start, reader.end);
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function open(
  target: Target,
  spec: HttpSpec,
  options: HttpOptions,
): Promise<Deno.Conn | { reason: string }> {
  const started = performance.now();
  const tcp = await connectWithin(target, options);
  if ("reason" in tcp || !spec.tls) return tcp;
  // The handshake shares the check's timeout: a server that accepts and then says
  // nothing must not hold the check.
  let current: Deno.Conn = tcp;
  let timedOut = false;
  const close = () => {
    try {
      current.close();
    } catch { /* closed */ }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    close();
  }, Math.max(0, options.timeout - (performance.now() - started)));
  try {
    const tls = await Deno.startTls(tcp, {
      hostname: spec.host ?? target.host,
      caCerts: options.caCerts,
    });
    current = tls;
    await tls.handshake();
    return tls;
  } catch (error) {
    close();
    if (timedOut) return { reason: timeoutReason(options.timeout, "in the TLS handshake") };
    return {
      reason: `tls failed: ${head(error instanceof Error ? error.message : String(error))}`,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs one HTTP check. Never throws; every failure is an outcome with a reason. */
export async function checkHttp(
  target: Target,
  spec: HttpSpec,
  options: HttpOptions,
): Promise<CheckOutcome> {
  const started = performance.now();
  const conn = await open(target, spec, options);
  if ("reason" in conn) return { ok: false, reason: conn.reason };
  const left = options.timeout - (performance.now() - started);
  let timedOut = false;
  const close = () => {
    try {
      conn.close();
    } catch { /* already closed */ }
  };
  const timer = setTimeout(() => {
    timedOut = true;
    close();
  }, Math.max(0, left));
  const onAbort = () => close();
  options.signal?.addEventListener("abort", onAbort);
  try {
    await conn.write(requestBytes(target, spec));
    const reader = new Reader(conn);
    let parsed: ResponseHead | undefined;
    while (!(parsed = parseHead(reader.buf, reader.end))) {
      if (!await reader.more(MAX_HEADER_BYTES)) {
        if (reader.end === 0) throw new CheckFailure("connection closed before a response");
        if (reader.end >= MAX_HEADER_BYTES) {
          throw new CheckFailure(`response head larger than ${MAX_HEADER_BYTES} bytes`);
        }
        throw new CheckFailure("connection closed mid-head");
      }
    }
    const expected = typeof spec.expect.status === "number"
      ? [spec.expect.status]
      : spec.expect.status;
    if (!expected.includes(parsed.status)) {
      return { ok: false, reason: `status ${parsed.status}` };
    }
    const { body_regex: regex, digest } = spec.expect;
    if (!regex && !digest) return { ok: true, reason: `status ${parsed.status}` };
    if (spec.method.toUpperCase() === "HEAD") {
      throw new CheckFailure("a HEAD response has no body to match; use method GET");
    }
    const body = await readBody(reader, parsed, options.maxBody ?? DEFAULT_MAX_BODY);
    if (regex && !new RegExp(regex).test(decoder.decode(body))) {
      return { ok: false, reason: `body does not match /${regex}/` };
    }
    if (digest) {
      const got = await sha256Hex(body);
      if (got !== digest.toLowerCase()) {
        return { ok: false, reason: `body digest ${got.slice(0, 12)}… differs` };
      }
    }
    return { ok: true, reason: `status ${parsed.status}` };
  } catch (error) {
    if (options.signal?.aborted) return { ok: false, reason: "check stopped" };
    if (timedOut) return { ok: false, reason: timeoutReason(options.timeout) };
    if (error instanceof CheckFailure) return { ok: false, reason: error.message };
    if (error instanceof Deno.errors.ConnectionReset) {
      return { ok: false, reason: "connection reset" };
    }
    return {
      ok: false,
      reason: `read failed: ${head(String((error as Error)?.message ?? error))}`,
    };
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener("abort", onAbort);
    close();
  }
}
