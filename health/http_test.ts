import assert from "node:assert/strict";
import { checkHttp, dechunk, type HttpSpec } from "./http.ts";

const enc = new TextEncoder();

/** A raw TCP server on loopback that answers each connection with `respond`. */
function rawServer(
  respond: (conn: Deno.Conn, request: string) => Promise<void>,
): { port: number; requests: string[]; close: () => Promise<void> } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests: string[] = [];
  const conns = new Set<Deno.Conn>();
  const loop = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        try {
          const buf = new Uint8Array(4096);
          const n = await conn.read(buf);
          const request = new TextDecoder().decode(buf.subarray(0, n ?? 0));
          requests.push(request);
          await respond(conn, request);
        } catch { /* client went away */ }
        try {
          conn.close();
        } catch { /* closed */ }
        conns.delete(conn);
      })();
    }
  })();
  return {
    port: (listener.addr as Deno.NetAddr).port,
    requests,
    close: async () => {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await loop.catch(() => {});
    },
  };
}

function reply(status: number, body: string, extra = ""): (conn: Deno.Conn) => Promise<void> {
  return async (conn) => {
    await conn.write(
      enc.encode(
        `HTTP/1.1 ${status} X\r\nContent-Length: ${enc.encode(body).length}\r\n${extra}\r\n${body}`,
      ),
    );
  };
}

function spec(overrides: Partial<HttpSpec> = {}): HttpSpec {
  return { method: "GET", path: "/healthz", tls: false, expect: { status: 200 }, ...overrides };
}

function openFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

Deno.test("http check passes on the expected status and fails naming any other", async () => {
  let status = 200;
  const srv = rawServer((conn) => reply(status, "ok")(conn));
  try {
    const target = { host: "127.0.0.1", port: srv.port };
    assert.deepEqual(await checkHttp(target, spec(), { timeout: 1000 }), {
      ok: true,
      reason: "status 200",
    });
    status = 503;
    assert.deepEqual(await checkHttp(target, spec(), { timeout: 1000 }), {
      ok: false,
      reason: "status 503",
    });
    status = 301;
    const set = spec({ expect: { status: [200, 301] } });
    assert.equal((await checkHttp(target, set, { timeout: 1000 })).ok, true);
  } finally {
    await srv.close();
  }
});

Deno.test("http check sends method, path and Host on a connection it closes", async () => {
  const srv = rawServer(reply(200, ""));
  try {
    const target = { host: "127.0.0.1", port: srv.port };
    await checkHttp(target, spec({ method: "HEAD", path: "/status?x=1", host: "www.example" }), {
      timeout: 1000,
    });
    await checkHttp(target, spec(), { timeout: 1000 });
    assert.match(srv.requests[0], /^HEAD \/status\?x=1 HTTP\/1\.1\r\n/);
    assert.match(srv.requests[0], /\r\nHost: www\.example\r\n/i);
    assert.match(srv.requests[0], /\r\nConnection: close\r\n/i);
    assert.match(srv.requests[1], new RegExp(`\r\nHost: 127\\.0\\.0\\.1:${srv.port}\r\n`));
  } finally {
    await srv.close();
  }
});

Deno.test("http check matches the body by regex and by SHA-256 digest, chunked too", async () => {
  const body = "service healthy: yes";
  const digest = [
    ...new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(body))),
  ].map((b) => b.toString(16).padStart(2, "0")).join("");
  let chunked = false;
  const srv = rawServer(async (conn) => {
    if (!chunked) return reply(200, body)(conn);
    await conn.write(enc.encode(
      `HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nservice \r\n${
        (body.length - 8).toString(16)
      }\r\n${body.slice(8)}\r\n0\r\n\r\n`,
    ));
  });
  try {
    const t = { host: "127.0.0.1", port: srv.port };
    const run = (expect: HttpSpec["expect"]) => checkHttp(t, spec({ expect }), { timeout: 1000 });
    assert.equal((await run({ status: 200, body_regex: "healthy: (yes|ok)" })).ok, true);
    assert.deepEqual(await run({ status: 200, body_regex: "healthy: no" }), {
      ok: false,
      reason: "body does not match /healthy: no/",
    });
    assert.equal((await run({ status: 200, digest })).ok, true);
    const wrong = await run({ status: 200, digest: "0".repeat(64) });
    assert.equal(wrong.ok, false);
    assert.match(wrong.reason, /^body digest [0-9a-f]{12}… differs$/);
    chunked = true;
    assert.equal((await run({ status: 200, body_regex: "^service healthy: yes$" })).ok, true);
    assert.equal((await run({ status: 200, digest })).ok, true);
  } finally {
    await srv.close();
  }
});

Deno.test("http check bounds a huge body and reads none when only the status matters", async () => {
  const srv = rawServer(async (conn) => {
    await conn.write(enc.encode("HTTP/1.1 200 OK\r\n\r\n"));
    const chunk = new Uint8Array(65536).fill(97);
    for (let i = 0; i < 1000; i++) await conn.write(chunk); // up to 64 MiB, until we hang up
  });
  try {
    const t = { host: "127.0.0.1", port: srv.port };
    const started = performance.now();
    const r = await checkHttp(t, spec({ expect: { status: 200, body_regex: "b" } }), {
      timeout: 5000,
      maxBody: 100_000,
    });
    assert.deepEqual(r, { ok: false, reason: "body larger than 100000 bytes" });
    assert.ok(performance.now() - started < 4000, "the check stopped reading at the bound");
    const s = await checkHttp(t, spec(), { timeout: 5000 });
    assert.deepEqual(s, { ok: true, reason: "status 200" });
    const big = rawServer(reply(200, "", "Content-Length: 999999999\r\n"));
    try {
      const b = await checkHttp(
        { host: "127.0.0.1", port: big.port },
        spec({
          expect: { status: 200, digest: "a".repeat(64) },
        }),
        { timeout: 1000, maxBody: 1000 },
      );
      assert.equal(b.reason, "body larger than 1000 bytes");
    } finally {
      await big.close();
    }
  } finally {
    await srv.close();
  }
});

Deno.test("http check names garbage, an endless head and an early close", async () => {
  let mode = "garbage";
  const srv = rawServer(async (conn) => {
    if (mode === "garbage") await conn.write(enc.encode("SSH-2.0-OpenSSH_9.2\r\n"));
    if (mode === "endless") {
      await conn.write(enc.encode("HTTP/1.1 200 OK\r\n"));
      for (let i = 0; i < 100; i++) {
        await conn.write(enc.encode(`X-Filler-${i}: ${"y".repeat(500)}\r\n`));
      }
    }
  });
  try {
    const t = { host: "127.0.0.1", port: srv.port };
    const g = await checkHttp(t, spec(), { timeout: 1000 });
    assert.equal(g.ok, false);
    assert.match(g.reason, /^bad status line: "SSH-2\.0-OpenSSH_9\.2"$/);
    mode = "endless";
    assert.deepEqual(await checkHttp(t, spec(), { timeout: 1000 }), {
      ok: false,
      reason: "response head larger than 16384 bytes",
    });
    mode = "close";
    assert.deepEqual(await checkHttp(t, spec(), { timeout: 1000 }), {
      ok: false,
      reason: "connection closed before a response",
    });
  } finally {
    await srv.close();
  }
});

Deno.test("http check times out on a silent server and refuses on a closed port, leaking no fds", async () => {
  const srv = rawServer(() => new Promise((r) => setTimeout(r, 1500)));
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closedPort = (closed.addr as Deno.NetAddr).port;
  closed.close();
  try {
    const before = openFds();
    const t = { host: "127.0.0.1", port: srv.port };
    assert.deepEqual(await checkHttp(t, spec(), { timeout: 200 }), {
      ok: false,
      reason: "timeout after 200ms",
    });
    for (let i = 0; i < 20; i++) {
      assert.deepEqual(
        await checkHttp({ host: "127.0.0.1", port: closedPort }, spec(), {
          timeout: 200,
        }),
        { ok: false, reason: "connect refused" },
      );
    }
    assert.ok(openFds() <= before + 1, `fds ${before} → ${openFds()}`);
  } finally {
    await srv.close();
  }
});

Deno.test("an aborted http check ends at once as stopped", async () => {
  const srv = rawServer(() => new Promise((r) => setTimeout(r, 1000)));
  try {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const r = await checkHttp({ host: "127.0.0.1", port: srv.port }, spec(), {
      timeout: 5000,
      signal: ac.signal,
    });
    assert.deepEqual(r, { ok: false, reason: "check stopped" });
  } finally {
    await srv.close();
  }
});

Deno.test("dechunk waits for the last chunk and rejects a bad size", () => {
  const e = (s: string) => enc.encode(s);
  assert.equal(dechunk(e("3\r\nabc\r\n")), undefined);
  assert.equal(new TextDecoder().decode(dechunk(e("3\r\nabc\r\n1;x=y\r\nd\r\n0\r\n\r\n"))), "abcd");
  assert.throws(() => dechunk(e("zz\r\n")), /bad chunk size/);
});

Deno.test("an https check verifies the server certificate and then checks the status", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fulcrum-tls-" });
  try {
    const made = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=fulcrum-test",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
      ],
      stdout: "null",
      stderr: "null",
    }).output().catch(() => undefined);
    if (!made?.success) {
      console.log("skipped: openssl could not make a test certificate");
      return;
    }
    const cert = await Deno.readTextFile(`${dir}/cert.pem`);
    const key = await Deno.readTextFile(`${dir}/key.pem`);
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, cert, key, onListen() {} },
      (req) =>
        new Response("secure ok", { status: new URL(req.url).pathname === "/ok" ? 200 : 503 }),
    );
    try {
      const t = { host: "127.0.0.1", port: server.addr.port };
      const untrusted = await checkHttp(t, spec({ path: "/ok", tls: true }), { timeout: 2000 });
      assert.equal(untrusted.ok, false);
      assert.match(untrusted.reason, /^tls failed: /);
      const trusted = { timeout: 2000, caCerts: [cert] };
      assert.deepEqual(
        await checkHttp(
          t,
          spec({ path: "/ok", tls: true, expect: { status: 200, body_regex: "secure" } }),
          trusted,
        ),
        { ok: true, reason: "status 200" },
      );
      assert.deepEqual(await checkHttp(t, spec({ path: "/no", tls: true }), trusted), {
        ok: false,
        reason: "status 503",
      });
      // A plain TCP server that never answers the handshake times out.
      const mute = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const held: Deno.Conn[] = [];
      const accepting = (async () => {
        for await (const c of mute) held.push(c);
      })().catch(() => {});
      try {
        const r = await checkHttp(
          { host: "127.0.0.1", port: (mute.addr as Deno.NetAddr).port },
          spec({ tls: true }),
          { timeout: 200, caCerts: [cert] },
        );
        assert.deepEqual(r, { ok: false, reason: "timeout after 200ms in the TLS handshake" });
      } finally {
        mute.close();
        for (const c of held) c.close();
        await accepting;
      }
    } finally {
      await server.shutdown();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
