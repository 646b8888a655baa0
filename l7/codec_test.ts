import assert from "node:assert/strict";
import {
  ChunkedScanner,
  detachHead,
  encodeLatin1,
  type Head,
  headerCount,
  headerValue,
  latin1,
  parseRequestHead,
  parseResponseHead,
  requestFraming,
  responseFraming,
  valueAt,
  writeHead,
} from "./codec.ts";

const limits = { maxBytes: 4096, maxHeaders: 20 };
const te = new TextEncoder();

function parse(text: string) {
  return parseRequestHead(te.encode(text), limits);
}

function head(text: string): Head {
  const r = parse(text);
  assert.equal(r.kind, "ok", JSON.stringify(r));
  return (r as { head: Head }).head;
}

Deno.test("a complete request head parses with its headers in order", () => {
  const h = head(
    "GET /a.jpg?x=1 HTTP/1.1\r\nHost: example.com\r\nX-A:  one \r\nx-a: two\r\n\r\nBODY",
  );
  assert.equal(h.method, "GET");
  assert.equal(h.target, "/a.jpg?x=1");
  assert.equal(h.version, "HTTP/1.1");
  assert.deepEqual(h.headers, [["Host", "example.com"], ["X-A", "one"], ["x-a", "two"]]);
  assert.equal(
    h.length,
    "GET /a.jpg?x=1 HTTP/1.1\r\nHost: example.com\r\nX-A:  one \r\nx-a: two\r\n\r\n".length,
  );
  assert.equal(headerValue(h, "x-a"), "one");
});

Deno.test("an unfinished head is incomplete until it exceeds the byte limit (431)", () => {
  assert.equal(parse("GET / HTTP/1.1\r\nHost: a\r\n").kind, "incomplete");
  const big = "GET / HTTP/1.1\r\nX: " + "a".repeat(5000);
  const r = parse(big);
  assert.equal(r.kind, "error");
  assert.equal((r as { status: number }).status, 431);
});

Deno.test("too many header fields is 431", () => {
  const many = Array.from({ length: 21 }, (_, i) => `H${i}: v`).join("\r\n");
  const r = parse(`GET / HTTP/1.1\r\n${many}\r\n\r\n`);
  assert.deepEqual([r.kind, (r as { status: number }).status], ["error", 431]);
});

const bad400: [string, string][] = [
  ["obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n"],
  ["space before colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n"],
  ["bare LF line ending", "GET / HTTP/1.1\nHost: a\n\n"],
  ["bare CR inside a line", "GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n"],
  ["control character in a value", "GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n"],
  ["malformed request line", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n"],
  ["no version", "GET /\r\nHost: a\r\n\r\n"],
  ["empty header name", "GET / HTTP/1.1\r\n: a\r\n\r\n"],
];
for (const [name, text] of bad400) {
  Deno.test(`request head rejected with 400: ${name}`, () => {
    const r = parse(text);
    assert.equal(r.kind, "error");
    assert.equal((r as { status: number }).status, 400);
  });
}

Deno.test("HTTP/2.0 on an HTTP/1 listener is 505", () => {
  const r = parse("GET / HTTP/2.0\r\nHost: a\r\n\r\n");
  assert.equal((r as { status: number }).status, 505);
});

const badFraming: [string, string][] = [
  ["CL and TE", "Content-Length: 5\r\nTransfer-Encoding: chunked"],
  ["TE and CL", "Transfer-Encoding: chunked\r\nContent-Length: 5"],
  ["differing duplicate CL", "Content-Length: 5\r\nContent-Length: 6"],
  ["differing CL list", "Content-Length: 5, 6"],
  ["negative CL", "Content-Length: -1"],
  ["CL with a sign", "Content-Length: +5"],
  ["huge CL", "Content-Length: 99999999999999999999"],
  ["TE not ending in chunked", "Transfer-Encoding: chunked, gzip"],
  ["TE chunked twice", "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked"],
  ["TE xchunked", "Transfer-Encoding: xchunked"],
  ["CL list with an empty element", "Content-Length: 5,"],
  ["CL with a letter", "Content-Length: 5x"],
  ["CL list differing, then invalid", "Content-Length: 5, 6\r\nContent-Length: x"],
  ["empty CL", "Content-Length: "],
];
for (const [name, headers] of badFraming) {
  Deno.test(`request framing rejected: ${name}`, () => {
    const f = requestFraming(head(`POST / HTTP/1.1\r\nHost: a\r\n${headers}\r\n\r\n`));
    assert.equal(f.kind, "error");
  });
}

Deno.test("request framing: equal duplicate CL, chunked, none", () => {
  assert.deepEqual(
    requestFraming(head("POST / HTTP/1.1\r\nContent-Length: 7\r\nContent-Length: 7\r\n\r\n")),
    { kind: "length", length: 7 },
  );
  assert.deepEqual(
    requestFraming(head("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n")),
    { kind: "chunked" },
  );
  assert.deepEqual(requestFraming(head("GET / HTTP/1.1\r\n\r\n")), { kind: "none" });
  assert.deepEqual(
    requestFraming(
      head("POST / HTTP/1.1\r\nContent-Length: 0012 ,\t12\r\nContent-Length: 12\r\n\r\n"),
    ),
    { kind: "length", length: 12 },
  );
  assert.deepEqual(requestFraming(head("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n")), {
    kind: "none",
  });
  const h10 = head("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n");
  assert.equal(requestFraming(h10).kind, "error");
});

Deno.test("response heads and framing follow the request method and status", () => {
  const r = parseResponseHead(te.encode("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"), limits);
  assert.equal(r.kind, "ok");
  const h = (r as { head: Head }).head;
  assert.equal(h.status, 200);
  assert.equal(h.reason, "OK");
  assert.deepEqual(responseFraming(h, "GET"), { kind: "length", length: 3 });
  assert.deepEqual(responseFraming(h, "HEAD"), { kind: "none" });
  const close =
    (parseResponseHead(te.encode("HTTP/1.0 200 OK\r\n\r\n"), limits) as { head: Head }).head;
  assert.deepEqual(responseFraming(close, "GET"), { kind: "close" });
  const bad = parseResponseHead(te.encode("HTTP/1.1 2000 OK\r\n\r\n"), limits);
  assert.deepEqual([bad.kind, (bad as { status: number }).status], ["error", 502]);
});

function scan(text: string, pieces = 1) {
  const bytes = te.encode(text);
  const s = new ChunkedScanner();
  const step = Math.ceil(bytes.length / pieces);
  let used = 0;
  for (let at = 0; at < bytes.length; at += step) {
    const r = s.feed(bytes, at, Math.min(bytes.length, at + step));
    used += r.used;
    if (r.error) return { error: r.error, used, done: false, payload: s.payload };
    if (r.done) return { used, done: true, payload: s.payload };
  }
  return { used, done: false, payload: s.payload };
}

Deno.test("the chunked scanner finds the end of the body, fed whole or byte by byte", () => {
  const body = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\n";
  for (const pieces of [1, 3, body.length]) {
    const r = scan(body + "NEXT", pieces);
    assert.equal(r.done, true);
    assert.equal(r.used, body.length);
    assert.equal(r.payload, 11);
  }
  assert.equal(scan("a\r\n0123456789\r\n").done, false);
});

const badChunks: [string, string][] = [
  ["non-hex size", "g\r\nx\r\n0\r\n\r\n"],
  ["0x prefix", "0x5\r\nhello\r\n0\r\n\r\n"],
  ["empty size", "\r\nhello\r\n0\r\n\r\n"],
  ["space before size", " 5\r\nhello\r\n0\r\n\r\n"],
  ["negative size", "-5\r\nhello\r\n0\r\n\r\n"],
  ["oversized size", "1000000000000000\r\n"],
  ["bare LF after size", "5\nhello\r\n0\r\n\r\n"],
  ["data longer than its size", "3\r\nhello\r\n0\r\n\r\n"],
];
for (const [name, text] of badChunks) {
  Deno.test(`the chunked scanner rejects ${name}`, () => {
    const r = scan(text);
    assert.ok(r.error, `accepted ${JSON.stringify(text)}`);
  });
}

Deno.test("latin1 decoding and encoding preserve every byte", () => {
  const bytes = new Uint8Array(256).map((_, i) => i);
  assert.deepEqual(encodeLatin1(latin1(bytes)), bytes);
});

Deno.test("writeHead copies kept header lines byte for byte and appends extra lines", () => {
  const bytes = new Uint8Array([
    ...te.encode("HTTP/1.1 200 OK\r\nServer: x\r\nConnection: keep-alive\r\nX-Bin: "),
    0xe9,
    ...te.encode("\r\n\r\nbody"),
  ]);
  const r = parseResponseHead(bytes, limits);
  assert.equal(r.kind, "ok");
  const h = (r as { head: Head }).head;
  const out = writeHead("HTTP/1.1 200 OK", h, {
    keep: new Uint8Array([1, 0, 1]),
    extra: "via: 1.1 f\r\n",
  });
  assert.deepEqual(
    out,
    new Uint8Array([
      ...te.encode("HTTP/1.1 200 OK\r\nServer: x\r\nX-Bin: "),
      0xe9,
      ...te.encode("\r\nvia: 1.1 f\r\n\r\n"),
    ]),
  );
  const built: Head = {
    ...h,
    headers: h.headers,
    raw: undefined,
    spans: undefined,
    values: undefined,
  };
  assert.deepEqual(
    writeHead("HTTP/1.1 200 OK", built, {
      keep: new Uint8Array([1, 0, 1]),
      extra: "via: 1.1 f\r\n",
    }),
    out,
  );
});

Deno.test("writeHead writes into a given buffer when the head fits, else into a new one", () => {
  const r = parseResponseHead(te.encode("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\n\r\n"), limits);
  assert.equal(r.kind, "ok");
  if (r.kind !== "ok") return;
  const options = { keep: new Uint8Array([0, 1]), extra: "via: v\r\n" };
  const expected = te.encode("HTTP/1.1 200 OK\r\nB: 2\r\nvia: v\r\n\r\n");
  const scratch = new Uint8Array(64);
  const inside = writeHead("HTTP/1.1 200 OK", r.head, { ...options, into: scratch });
  assert.deepEqual(inside, expected);
  assert.equal(inside.buffer, scratch.buffer);
  const small = new Uint8Array(8);
  const outside = writeHead("HTTP/1.1 200 OK", r.head, { ...options, into: small });
  assert.deepEqual(outside, expected);
  assert.notEqual(outside.buffer, small.buffer);
});

Deno.test("parsed heads read names and values from their bytes; a detached head keeps them", () => {
  const buf = te.encode(
    "POST /x HTTP/1.1\r\nHOST:  a.example \r\nX-Odd-Name:\tv\xe9\r\nContent-Length: 3\r\n\r\nabc",
  );
  const r = parseRequestHead(buf, limits);
  assert.equal(r.kind, "ok");
  if (r.kind !== "ok") return;
  const h = r.head;
  assert.equal(h.method, "POST");
  assert.equal(headerCount(h), 3);
  assert.deepEqual(h.names, ["host", "x-odd-name", "content-length"]);
  assert.equal(valueAt(h, 0), "a.example");
  assert.equal(headerValue(h, "content-length"), "3");
  const detached = detachHead(h);
  buf.fill(0x21); // the reader's buffer is reused for the next bytes
  assert.deepEqual(detached.headers, [
    ["HOST", "a.example"],
    ["X-Odd-Name", "v\u00c3\u00a9"],
    ["Content-Length", "3"],
  ]);
  assert.equal(valueAt(detached, 2), "3");
  assert.equal(headerValue(detached, "host"), "a.example");
});
