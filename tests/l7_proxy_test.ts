/**
 * The L7 switch for real on loopback: routing, keep-alive, streaming, WebSocket,
 * smuggling shapes, limits, timeouts, retries, misbehaving servers, health and reload.
 */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { diff } from "../config/diff.ts";
import { buildModel, type Model } from "../config/model.ts";
import { configSchema } from "../config/schema.ts";
import { ServerStates } from "../health/state.ts";
import { createLogger } from "../log.ts";
import { RoleBoard } from "../vrrp/role.ts";
import { createL7, type L7, type SocketKind } from "../l7/mod.ts";
import type { AdminEnv } from "../subsystem.ts";

const te = new TextEncoder();
const td = new TextDecoder();

interface Backend {
  readonly port: number;
  readonly address: string;
  /** Requests seen. */
  requests: number;
  /** Distinct client ports seen (one per connection). */
  readonly connections: Set<number>;
  close(): Promise<void>;
}

/** A Deno.serve backend answering `x-served-by: NAME`; `handler` may override. */
function backend(
  name: string,
  handler?: (req: Request) => Response | Promise<Response>,
): Backend {
  const b = {
    requests: 0,
    connections: new Set<number>(),
  } as Backend & { requests: number };
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req, info) => {
      b.requests++;
      b.connections.add(info.remoteAddr.port);
      if (handler) return await handler(req);
      const url = new URL(req.url);
      return new Response(`${name} ${url.pathname}\n`, {
        headers: { "x-served-by": name, "x-cache": "MISS" },
      });
    },
  );
  Object.assign(b, {
    port: server.addr.port,
    address: `127.0.0.1:${server.addr.port}`,
    close: () => server.shutdown(),
  });
  return b;
}

/** A raw TCP backend: counts accepted connections and runs `onConn` for each. */
function rawBackend(onConn: (conn: Deno.Conn) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const state = { accepted: 0, port: (listener.addr as Deno.NetAddr).port };
  const loop = (async () => {
    for await (const conn of listener) {
      state.accepted++;
      conns.add(conn);
      onConn(conn).catch(() => {}).finally(() => {
        conns.delete(conn);
        try {
          conn.close();
        } catch { /* closed */ }
      });
    }
  })();
  return {
    state,
    address: `127.0.0.1:${state.port}`,
    async close() {
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

/** A closed port (nothing listens there). */
function deadAddress(): string {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return `127.0.0.1:${port}`;
}

type ListenerSpec = Record<string, unknown>;

function makeModel(pools: Record<string, string[]>, listeners: ListenerSpec[]): Model {
  const config = configSchema.parse({
    pools: Object.fromEntries(
      Object.entries(pools).map(([name, addrs]) => [name, {
        servers: addrs.map((a) => ({ address: a })),
      }]),
    ),
    l7: {
      listeners: listeners.map((l, i) => ({
        name: `web${i}`,
        listen: "127.0.0.1:1",
        ...l,
      })),
    },
  });
  for (const l of config.l7.listeners) {
    (l as { listen: unknown }).listen = {
      host: "127.0.0.1",
      port: 0,
      family: 4,
      text: "127.0.0.1:0",
    };
  }
  return buildModel(config, { path: "test.yaml", hash: "0" });
}

async function withSwitch(
  pools: Record<string, string[]>,
  listener: ListenerSpec,
  fn: (ctx: { base: string; port: number; l7: L7; states: ServerStates }) => Promise<void>,
  options: { sockets?: SocketKind } = {},
): Promise<void> {
  const states = new ServerStates();
  const l7 = createL7(
    { states, roles: new RoleBoard(), log: createLogger({ level: "error" }) },
    options,
  );
  await l7.start(makeModel(pools, [listener]));
  const port = l7.address("web0")!.port;
  try {
    await fn({ base: `http://127.0.0.1:${port}`, port, l7, states });
  } finally {
    await l7.stop();
  }
}

/** Sends bytes on a new connection and reads until close, `until` or the timeout. */
async function raw(
  port: number,
  data: string | Uint8Array,
  options: { until?: (text: string) => boolean; timeout?: number } = {},
): Promise<{ text: string; closed: boolean }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => {
    try {
      conn.close();
    } catch { /* closed */ }
  }, options.timeout ?? 5000);
  let text = "";
  let closed = false;
  try {
    await conn.write(typeof data === "string" ? te.encode(data) : data);
    const buf = new Uint8Array(65536);
    while (true) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) {
        closed = true;
        break;
      }
      text += td.decode(buf.subarray(0, n));
      if (options.until?.(text)) break;
    }
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed */ }
  }
  return { text, closed };
}

const DEMO_RULES = {
  rules: [
    { match: { path_suffix: [".jpg", ".png", ".gif"] }, pool: "images" },
    { match: { path_prefix: "/cgi-bin/" }, pool: "cgi" },
    { pool: "html" },
  ],
  balance: { hash: "uri", load_bound: 1.25 },
};

Deno.test("rules send images, cgi and pages to their pools, the same URL to the same server", async () => {
  const bs = {
    html: [backend("html-1"), backend("html-2")],
    images: [backend("images-1"), backend("images-2")],
    cgi: [backend("cgi-1"), backend("cgi-2")],
  };
  const pools = Object.fromEntries(
    Object.entries(bs).map(([k, v]) => [k, v.map((b) => b.address)]),
  );
  try {
    await withSwitch(pools, DEMO_RULES, async ({ base }) => {
      for (
        const [path, pool] of [
          ["/a.jpg", "images"],
          ["/x/b.png", "images"],
          ["/c.gif", "images"],
          [
            "/cgi-bin/env",
            "cgi",
          ],
          ["/index.html", "html"],
          ["/", "html"],
        ]
      ) {
        const first = await fetch(base + path);
        await first.body?.cancel();
        const servedBy = first.headers.get("x-served-by")!;
        assert.ok(servedBy.startsWith(`${pool}-`), `${path} went to ${servedBy}`);
        assert.equal(first.headers.get("x-cache"), "MISS");
        assert.equal(first.headers.get("via"), "1.1 fulcrum");
        for (let i = 0; i < 3; i++) {
          const again = await fetch(base + path);
          await again.body?.cancel();
          assert.equal(again.headers.get("x-served-by"), servedBy);
        }
      }
      // different URLs spread over both servers of a pool
      const seen = new Set<string>();
      for (let i = 0; i < 40; i++) {
        const r = await fetch(`${base}/p${i}.jpg`);
        await r.body?.cancel();
        seen.add(r.headers.get("x-served-by")!);
      }
      assert.deepEqual([...seen].sort(), ["images-1", "images-2"]);
    });
  } finally {
    for (const list of Object.values(bs)) for (const b of list) await b.close();
  }
});

Deno.test("one client connection carries many requests over one pooled server connection", async () => {
  const b = backend("html-1");
  try {
    await withSwitch({ html: [b.address] }, { rules: [{ pool: "html" }] }, async ({ port }) => {
      const req = "GET /k HTTP/1.1\r\nHost: x\r\n\r\n";
      const r = await raw(port, req.repeat(5), {
        until: (t) => t.split("HTTP/1.1 200").length - 1 === 5,
      });
      assert.equal(r.text.split("HTTP/1.1 200").length - 1, 5);
      assert.equal(r.closed, false);
      const again = await raw(port, req, { until: (t) => t.includes("html-1 /k") });
      assert.match(again.text, /html-1 \/k/);
      assert.equal(b.requests, 6);
      assert.equal(b.connections.size, 1, "the server connection was not reused");
    });
  } finally {
    await b.close();
  }
});

Deno.test("on Deno's own sockets (no FFI) the switch keeps alive, streams bodies and answers errors alike", async () => {
  const b = backend(
    "echo-1",
    (req) => new Response(req.body, { headers: { "x-served-by": "echo-1" } }),
  );
  for (const sockets of ["deno", "epoll"] as const) {
    b.requests = 0;
    b.connections.clear();
    await withSwitch({ html: [b.address], none: [] }, {
      rules: [{ match: { path_prefix: "/none/" }, pool: "none" }, { pool: "html" }],
    }, async ({ base, port, l7 }) => {
      assert.equal((l7.status() as { sockets?: string }).sockets, sockets);
      const req = "POST /k HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
      const r = await raw(port, req.repeat(3), {
        until: (t) => t.split("hello").length - 1 === 3,
      });
      assert.equal(r.text.split("HTTP/1.1 200").length - 1, 3, `${sockets}: ${r.text}`);
      assert.equal(b.connections.size, 1, `${sockets}: the server connection was not reused`);
      const size = 8 << 20;
      const body = new Uint8Array(size).map((_, i) => i % 251);
      const splicedBefore = l7.status().spliced_bytes as number;
      const echoed = new Uint8Array(
        await (await fetch(`${base}/up`, { method: "POST", body })).arrayBuffer(),
      );
      assert.equal(echoed.length, size);
      assert.ok(echoed.every((v, i) => v === i % 251), `${sockets}: the body changed on the way`);
      // on epoll sockets the request body (known length) went client → server in the kernel
      const spliced = (l7.status().spliced_bytes as number) - splicedBefore;
      if (sockets === "epoll") assert.ok(spliced > size - 65536, `only ${spliced} spliced`);
      else assert.equal(spliced, 0);
      const none = await fetch(`${base}/none/x`);
      assert.equal(none.status, 503);
      assert.match(await none.text(), /no server of pool none is available/);
    }, { sockets });
  }
  await b.close();
});

Deno.test("forwarded headers are added, hop-by-hop headers removed, backend headers kept", async () => {
  const b = backend("h", (req) =>
    new Response(JSON.stringify(Object.fromEntries(req.headers)), {
      headers: { "x-served-by": "h-1", "keep-alive": "timeout=5", "x-own": "kept" },
    }));
  try {
    await withSwitch({ html: [b.address] }, { rules: [{ pool: "html" }] }, async ({ port }) => {
      const r = await raw(
        port,
        "GET /h HTTP/1.1\r\nHost: shop.example\r\nConnection: keep-alive, X-Drop\r\nX-Drop: 1\r\n" +
          "Keep-Alive: 5\r\nX-Forwarded-For: 10.9.9.9\r\nVia: 1.0 edge\r\n\r\n",
        { until: (t) => t.includes("}") },
      );
      const [head, body] = r.text.split("\r\n\r\n");
      const seen = JSON.parse(body);
      assert.equal(seen["x-forwarded-for"], "10.9.9.9, 127.0.0.1");
      assert.equal(seen["x-forwarded-proto"], "http");
      assert.equal(seen["x-forwarded-host"], "shop.example");
      assert.equal(seen["forwarded"], 'for=127.0.0.1;proto=http;host="shop.example"');
      assert.equal(seen["via"], "1.0 edge, 1.1 fulcrum");
      assert.equal(seen["x-drop"], undefined);
      assert.equal(seen["keep-alive"], undefined);
      assert.match(head, /x-served-by: h-1/i);
      assert.match(head, /x-own: kept/i);
      assert.doesNotMatch(head, /keep-alive: timeout/i);
    });
  } finally {
    await b.close();
  }
});

Deno.test("on one connection each request gets the forwarded headers of its own Host and X-Forwarded-For", async () => {
  const b = backend("h", (req) =>
    new Response(JSON.stringify(Object.fromEntries(req.headers)), {
      headers: { "x-served-by": "h-1" },
    }));
  try {
    await withSwitch({ html: [b.address] }, { rules: [{ pool: "html" }] }, async ({ port }) => {
      const request = (host: string, extra = "") =>
        `GET /h HTTP/1.1\r\nHost: ${host}\r\n${extra}\r\n`;
      const r = await raw(
        port,
        request("a.example") + request("b.example") +
          request("b.example", "X-Forwarded-For: 10.1.1.1\r\n") + request("b.example"),
        { until: (t) => (t.match(/\}/g) ?? []).length === 4 },
      );
      const seen = (r.text.match(/\{[^}]*\}/g) ?? []).map((body) => JSON.parse(body));
      assert.deepEqual(
        seen.map((h) => [h["x-forwarded-host"], h["x-forwarded-for"], h["forwarded"]]),
        [
          ["a.example", "127.0.0.1", 'for=127.0.0.1;proto=http;host="a.example"'],
          ["b.example", "127.0.0.1", 'for=127.0.0.1;proto=http;host="b.example"'],
          ["b.example", "10.1.1.1, 127.0.0.1", 'for=127.0.0.1;proto=http;host="b.example"'],
          ["b.example", "127.0.0.1", 'for=127.0.0.1;proto=http;host="b.example"'],
        ],
      );
    });
  } finally {
    await b.close();
  }
});

/** Deterministic bytes and a running checksum over them. */
function chunkAt(i: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = (i * 2654435761) >>> 0 || 1;
  for (let k = 0; k < size; k += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[k] = x;
    out[k + 1] = x >>> 8;
    out[k + 2] = x >>> 16;
    out[k + 3] = x >>> 24;
  }
  return out;
}

function checksum(sum: number, bytes: Uint8Array): number {
  let s = sum;
  for (let i = 0; i < bytes.length; i++) s = (Math.imul(s, 31) + bytes[i]) >>> 0;
  return s;
}

Deno.test("a 100 MiB body streams to the server and back unchanged", async () => {
  const b = backend(
    "echo",
    (req) => new Response(req.body, { headers: { "x-served-by": "echo-1" } }),
  );
  try {
    await withSwitch({ html: [b.address] }, { rules: [{ pool: "html" }] }, async ({ base }) => {
      const chunks = 100;
      const size = 1 << 20;
      let sent = 0;
      let i = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          if (i === chunks) return controller.close();
          const c = chunkAt(i++, size);
          sent = checksum(sent, c);
          controller.enqueue(c);
        },
      });
      const r = await fetch(`${base}/upload`, { method: "POST", body });
      assert.equal(r.status, 200);
      let got = 0;
      let length = 0;
      for await (const part of r.body!) {
        got = checksum(got, part);
        length += part.length;
      }
      assert.equal(length, chunks * size);
      assert.equal(got, sent);
    });
  } finally {
    await b.close();
  }
});

Deno.test("a WebSocket upgrade is relayed and echoes messages", async () => {
  const b = backend("ws", (req) => {
    const { socket, response } = Deno.upgradeWebSocket(req);
    socket.onmessage = (e) => socket.send(`echo ${e.data}`);
    return response;
  });
  try {
    await withSwitch({ html: [b.address] }, { rules: [{ pool: "html" }] }, async ({ port }) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/chat`);
      const got = await new Promise<string>((resolve, reject) => {
        ws.onopen = () => ws.send("hello");
        ws.onmessage = (e) => resolve(String(e.data));
        ws.onerror = () => reject(new Error("websocket failed"));
      });
      assert.equal(got, "echo hello");
      const closed = new Promise((r) => (ws.onclose = r));
      ws.close();
      await closed;
    });
  } finally {
    await b.close();
  }
});

Deno.test("Expect: 100-continue is relayed before the body is sent", async () => {
  const b = backend("e", async (req) => new Response(`got ${(await req.text()).length}`));
  try {
    await withSwitch({ html: [b.address] }, { rules: [{ pool: "html" }] }, async ({ port }) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await conn.write(te.encode(
          "POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
        ));
        const buf = new Uint8Array(4096);
        const n = await conn.read(buf);
        assert.match(td.decode(buf.subarray(0, n!)), /^HTTP\/1\.1 100 Continue/);
        await conn.write(te.encode("hello"));
        let text = "";
        while (!text.includes("got 5")) {
          const m = await conn.read(buf);
          if (m === null) break;
          text += td.decode(buf.subarray(0, m));
        }
        assert.match(text, /HTTP\/1\.1 200[\s\S]*got 5/);
      } finally {
        conn.close();
      }
    });
  } finally {
    await b.close();
  }
});

const SMUGGLING: [string, string][] = [
  [
    "CL and TE",
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
  ],
  [
    "TE and CL",
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
  ],
  [
    "differing Content-Length",
    "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
  ],
  ["obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n"],
  [
    "obs-fold of TE",
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
  ],
  [
    "bad chunk size",
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
  ],
  [
    "0x chunk size",
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
  ],
  [
    "oversized chunk size",
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n",
  ],
  [
    "chunk size with a space",
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n",
  ],
  ["TE xchunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n"],
  [
    "TE chunked, identity",
    "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
  ],
  ["space before colon", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc"],
  ["bare LF", "GET / HTTP/1.1\nHost: x\n\n"],
  ["two Host headers", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"],
  ["no Host in HTTP/1.1", "GET / HTTP/1.1\r\n\r\n"],
];

Deno.test("every smuggling shape is answered 400 and nothing reaches the server", async () => {
  const server = rawBackend(async (conn) => {
    await conn.write(te.encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"));
  });
  try {
    await withSwitch(
      { html: [server.address] },
      { rules: [{ pool: "html" }] },
      async ({ port, l7 }) => {
        for (const [name, text] of SMUGGLING) {
          const r = await raw(port, text, { timeout: 3000 });
          assert.match(
            r.text,
            /^HTTP\/1\.1 400 /,
            `${name}: ${JSON.stringify(r.text.slice(0, 40))}`,
          );
          assert.match(r.text, /fulcrum: /);
          assert.equal(r.closed, true, `${name}: connection left open`);
        }
        assert.equal(server.state.accepted, 0, "a smuggling shape reached the server");
        assert.equal(l7.counters.total("web0", "4xx"), SMUGGLING.length);
      },
    );
  } finally {
    await server.close();
  }
});

Deno.test("oversized heads and too many headers are answered 431", async () => {
  const b = backend("h");
  try {
    await withSwitch(
      { html: [b.address] },
      { rules: [{ pool: "html" }], limits: { header_bytes: 1024, headers: 10 } },
      async ({ port }) => {
        const big = await raw(
          port,
          `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(2000)}\r\n\r\n`,
        );
        assert.match(big.text, /^HTTP\/1\.1 431 /);
        const many = Array.from({ length: 11 }, (_, i) => `X-${i}: v\r\n`).join("");
        const r = await raw(port, `GET / HTTP/1.1\r\nHost: x\r\n${many}\r\n`);
        assert.match(r.text, /^HTTP\/1\.1 431 /);
        assert.equal(b.requests, 0);
      },
    );
  } finally {
    await b.close();
  }
});

Deno.test("a slowloris client gets 408 after the header timeout and is disconnected", async () => {
  const b = backend("h");
  try {
    await withSwitch(
      { html: [b.address] },
      { rules: [{ pool: "html" }], timeouts: { header: "300ms" } },
      async ({ port }) => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        const started = Date.now();
        let text = "";
        try {
          await conn.write(te.encode("GET / HTTP/1.1\r\nHost: x\r\n"));
          const reading = (async () => {
            const buf = new Uint8Array(4096);
            while (true) {
              const n = await conn.read(buf).catch(() => null);
              if (n === null) return;
              text += td.decode(buf.subarray(0, n));
            }
          })();
          for (let i = 0; i < 20 && !text; i++) {
            await new Promise((r) => setTimeout(r, 100));
            await conn.write(te.encode("X")).catch(() => {});
          }
          await reading;
        } finally {
          conn.close();
        }
        assert.match(text, /^HTTP\/1\.1 408 /);
        assert.ok(Date.now() - started < 1500, "408 came too late");
        assert.equal(b.requests, 0);
      },
    );
  } finally {
    await b.close();
  }
});

Deno.test("idempotent requests are retried on the next server when connect fails", async () => {
  const live = backend("live-1");
  const dead = deadAddress();
  try {
    await withSwitch(
      { html: [dead, live.address] },
      { rules: [{ pool: "html" }], retries: 1 },
      async ({ base, l7 }) => {
        // find a URL whose home is the dead server
        let path = "";
        for (let i = 0; i < 200 && !path; i++) {
          const e = l7.explain({ url: `/r${i}` });
          if (typeof e !== "string" && e.server === dead) path = `/r${i}`;
        }
        assert.ok(path, "no URL hashes to the dead server");
        const r = await fetch(base + path);
        assert.equal(await r.text(), `live-1 ${path}\n`);
        const post = await fetch(base + path, { method: "POST", body: "x" });
        assert.equal(post.status, 502);
        assert.match(await post.text(), /cannot connect to 127\.0\.0\.1:\d+/);
      },
    );
  } finally {
    await live.close();
  }
});

Deno.test("servers that reset, hang, send garbage or a short body end in a clear status", async () => {
  const behaviours: Record<string, (conn: Deno.Conn) => Promise<void>> = {
    reset: async (conn) => {
      await conn.read(new Uint8Array(4096));
    },
    hang: async (conn) => {
      await conn.read(new Uint8Array(4096));
      await new Promise((r) => setTimeout(r, 1500));
    },
    garbage: async (conn) => {
      await conn.read(new Uint8Array(4096));
      await conn.write(te.encode("SSH-2.0-OpenSSH\r\n\r\n"));
    },
    short: async (conn) => {
      await conn.read(new Uint8Array(4096));
      await conn.write(te.encode("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly ten b"));
    },
    // long enough to be spliced: 1 MiB announced, 300 KiB sent
    bigshort: async (conn) => {
      await conn.read(new Uint8Array(4096));
      await conn.write(te.encode("HTTP/1.1 200 OK\r\nContent-Length: 1048576\r\n\r\n"));
      const part = new Uint8Array(100 * 1024).fill(120);
      for (let i = 0; i < 3; i++) {
        await conn.write(part);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
  const servers = Object.fromEntries(
    Object.entries(behaviours).map(([k, fn]) => [k, rawBackend(fn)]),
  );
  const pools = Object.fromEntries(Object.entries(servers).map(([k, s]) => [k, [s.address]]));
  try {
    await withSwitch(pools, {
      rules: Object.keys(behaviours).map((k) => ({ match: { path_prefix: `/${k}` }, pool: k })),
      timeouts: { server: "300ms" },
      retries: 0,
    }, async ({ port, l7 }) => {
      const ask = (p: string) =>
        raw(port, `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`, { timeout: 4000 });
      assert.match((await ask("/reset")).text, /^HTTP\/1\.1 502 [\s\S]*closed the connection/);
      assert.match(
        (await ask("/hang")).text,
        /^HTTP\/1\.1 504 [\s\S]*did not answer within 300 ms/,
      );
      assert.match((await ask("/garbage")).text, /^HTTP\/1\.1 502 [\s\S]*malformed status line/);
      const short = await ask("/short");
      assert.match(short.text, /^HTTP\/1\.1 200 [\s\S]*\r\n\r\nonly ten b$/);
      assert.equal(short.closed, true, "a short body must end in a closed connection");
      assert.equal(l7.counters.rejected("web0", "short_response"), 1);
      const shortBig = await ask("/bigshort");
      assert.match(shortBig.text, /^HTTP\/1\.1 200 [\s\S]*content-length: 1048576\r\n/i);
      assert.equal(shortBig.text.split("\r\n\r\n")[1].length, 300 * 1024);
      assert.equal(shortBig.closed, true, "a short spliced body must end in a closed connection");
      assert.equal(l7.counters.rejected("web0", "short_response"), 2);
      // and the switch still serves
      assert.match((await ask("/reset")).text, /^HTTP\/1\.1 502 /);
    });
  } finally {
    for (const s of Object.values(servers)) await s.close();
  }
});

Deno.test("down, disabled and draining servers leave the ring; an empty pool answers 503", async () => {
  const a = backend("a-1");
  const b = backend("b-1");
  try {
    await withSwitch(
      { html: [a.address, b.address] },
      { rules: [{ pool: "html" }] },
      async ({ base, states }) => {
        const state = (address: string, effectiveWeight: number, admin: "enabled" | "drain") => ({
          pool: "html",
          address,
          health: "up" as const,
          admin,
          configuredWeight: 1,
          effectiveWeight,
          reason: "test",
          since: Date.now(),
        });
        states.set(state(a.address, 0, "drain"));
        for (let i = 0; i < 10; i++) {
          const r = await fetch(`${base}/d${i}`);
          assert.equal(r.headers.get("x-served-by"), "b-1");
          await r.body?.cancel();
        }
        states.set(state(b.address, 0, "enabled"));
        const r = await fetch(`${base}/x`);
        assert.equal(r.status, 503);
        assert.match(await r.text(), /no server of pool html is available/);
        states.set(state(a.address, 1, "enabled"));
        const back = await fetch(`${base}/x`);
        assert.equal(back.headers.get("x-served-by"), "a-1");
        await back.body?.cancel();
      },
    );
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("a reload swaps rules without dropping a request in flight and drains removed listeners", async () => {
  const slow = backend("slow-1", async () => {
    await new Promise((r) => setTimeout(r, 300));
    return new Response("slow done", { headers: { "x-served-by": "slow-1" } });
  });
  const other = backend("other-1");
  const states = new ServerStates();
  const l7 = createL7({ states, roles: new RoleBoard(), log: createLogger({ level: "error" }) });
  const pools = { slow: [slow.address], other: [other.address] };
  const before = makeModel(pools, [{ rules: [{ pool: "slow" }] }, { rules: [{ pool: "other" }] }]);
  try {
    await l7.start(before);
    const port = l7.address("web0")!.port;
    const second = l7.address("web1")!.port;
    const inflight = fetch(`http://127.0.0.1:${port}/a`);
    await new Promise((r) => setTimeout(r, 50));
    const after = makeModel(pools, [{ rules: [{ pool: "other" }] }]);
    await l7.apply(after, diff(before, after));
    const r = await inflight;
    assert.equal(await r.text(), "slow done");
    const next = await fetch(`http://127.0.0.1:${port}/b`);
    assert.equal(next.headers.get("x-served-by"), "other-1");
    await next.body?.cancel();
    assert.equal(l7.address("web1"), undefined);
    await assert.rejects(fetch(`http://127.0.0.1:${second}/`));
  } finally {
    await l7.stop();
    await slow.close();
    await other.close();
  }
});

Deno.test("the explain endpoint names the rule, pool, server and ring position", async () => {
  const bs = [backend("images-1"), backend("images-2"), backend("html-1")];
  try {
    await withSwitch(
      { images: [bs[0].address, bs[1].address], html: [bs[2].address] },
      DEMO_RULES,
      async ({ base, l7 }) => {
        const app = new Hono<AdminEnv>();
        l7.routes!(app);
        const res = await app.request("/api/v1/route?url=/a.jpg&method=GET&host=www.example.com");
        assert.equal(res.status, 200);
        const e = await res.json();
        assert.deepEqual(e.rule, { index: 0, text: "path_suffix .jpg|.png|.gif → images" });
        assert.equal(e.pool, "images");
        assert.equal(e.key, "/a.jpg");
        assert.equal(e.ring.diverted, false);
        assert.equal(typeof e.ring.position, "number");
        const real = await fetch(`${base}/a.jpg`);
        const servedBy = real.headers.get("x-served-by");
        await real.body?.cancel();
        const expected = bs.find((b) => b.address === e.server);
        assert.equal(servedBy, expected === bs[0] ? "images-1" : "images-2");
        const missing = await app.request("/api/v1/route");
        assert.equal(missing.status, 400);
        const unknown = await app.request("/api/v1/route?url=/&listener=nope");
        assert.equal(unknown.status, 404);
        assert.match(
          l7.metrics!(),
          /fulcrum_l7_requests_total\{listener="web0",rule="0",pool="images"/,
        );
      },
    );
  } finally {
    for (const b of bs) await b.close();
  }
});

Deno.test("a TLS listener terminates TLS and tells the server the request came over https", async () => {
  const dir = await Deno.makeTempDir({ prefix: "fulcrum-l7-tls-" });
  const b = backend(
    "tls",
    (req) =>
      new Response(req.headers.get("x-forwarded-proto"), { headers: { "x-served-by": "tls-1" } }),
  );
  try {
    const gen = await new Deno.Command("openssl", {
      args: [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=IP:127.0.0.1,DNS:localhost",
        "-addext",
        "basicConstraints=critical,CA:FALSE",
        "-days",
        "1",
        "-keyout",
        `${dir}/key.pem`,
        "-out",
        `${dir}/cert.pem`,
      ],
      stdout: "null",
      stderr: "piped",
    }).output().catch((err) => ({ success: false, stderr: te.encode(String(err)) }));
    if (!gen.success) {
      console.log(`skipped: openssl cannot make a test certificate: ${td.decode(gen.stderr)}`);
      return;
    }
    const cert = await Deno.readTextFile(`${dir}/cert.pem`);
    await withSwitch(
      { html: [b.address] },
      { rules: [{ pool: "html" }], tls: { cert: `${dir}/cert.pem`, key: `${dir}/key.pem` } },
      async ({ port }) => {
        const client = Deno.createHttpClient({ caCerts: [cert] });
        try {
          for (let i = 0; i < 3; i++) {
            const r = await fetch(`https://127.0.0.1:${port}/secure`, { client });
            assert.equal(r.headers.get("x-served-by"), "tls-1");
            assert.equal(await r.text(), "https");
          }
        } finally {
          client.close();
        }
      },
    );
  } finally {
    await b.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a large response body moves socket to socket in the kernel, every byte in order", async () => {
  const size = 8 << 20;
  const big = new Uint8Array(size).map((_, i) => (i * 31 + (i >> 16)) & 0xff);
  const b = backend("big", () => new Response(big, { headers: { "x-served-by": "big-1" } }));
  try {
    await withSwitch({ html: [b.address] }, { rules: [{ pool: "html" }] }, async ({ base, l7 }) => {
      const spliced = () => l7.status().spliced_bytes as number;
      const before = spliced();
      for (let round = 0; round < 2; round++) { // the second reuses the kept pipe
        const r = await fetch(`${base}/big`);
        assert.equal(r.headers.get("content-length"), String(size));
        assert.equal(r.headers.get("x-served-by"), "big-1");
        const got = new Uint8Array(await r.arrayBuffer());
        assert.equal(got.length, size);
        assert.ok(got.every((v, i) => v === big[i]), "the body changed on the way");
      }
      // all but what came with the response head went through the kernel
      assert.ok(spliced() - before > 2 * (size - 65536), `only ${spliced() - before} spliced`);
    });
  } finally {
    await b.close();
  }
});

Deno.test("a client that leaves mid-upload leaves the server no complete request", async () => {
  const received: number[] = [];
  const server = rawBackend(async (conn) => {
    const buf = new Uint8Array(65536);
    let total = 0;
    while (true) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) break;
      total += n;
    }
    received.push(total);
  });
  const ok = backend("ok-1");
  try {
    await withSwitch({ up: [server.address], ok: [ok.address] }, {
      rules: [{ match: { path_prefix: "/up" }, pool: "up" }, { pool: "ok" }],
    }, async ({ port, base }) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(
        te.encode("POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n"),
      );
      await conn.write(new Uint8Array(200 * 1024));
      await new Promise((r) => setTimeout(r, 50));
      conn.close();
      for (let i = 0; i < 100 && received.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(received.length, 1, "the server connection was not closed");
      assert.ok(received[0] < 1048576, `the server got ${received[0]} bytes`);
      assert.ok(received[0] >= 200 * 1024, `the server got only ${received[0]} bytes`);
      const r = await fetch(`${base}/fine`);
      assert.equal(r.status, 200);
      assert.match(await r.text(), /ok-1 \/fine/);
    });
  } finally {
    await server.close();
    await ok.close();
  }
});

Deno.test("a client that leaves mid-response is counted and the switch keeps serving", async () => {
  const big = new Uint8Array(8 << 20);
  const b = backend(
    "big",
    (req) => new URL(req.url).pathname === "/big" ? new Response(big) : new Response("small"),
  );
  try {
    await withSwitch(
      { html: [b.address] },
      { rules: [{ pool: "html" }] },
      async ({ port, base, l7 }) => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        await conn.write(te.encode("GET /big HTTP/1.1\r\nHost: x\r\n\r\n"));
        await conn.read(new Uint8Array(1024));
        conn.close();
        for (let i = 0; i < 50 && l7.counters.rejected("web0", "client_aborted") === 0; i++) {
          await new Promise((r) => setTimeout(r, 20));
        }
        assert.equal(l7.counters.rejected("web0", "client_aborted"), 1);
        const r = await fetch(`${base}/small`);
        assert.equal(await r.text(), "small");
      },
    );
  } finally {
    await b.close();
  }
});
