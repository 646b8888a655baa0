import assert from "node:assert/strict";
import {
  AF_INET,
  bindNow,
  close,
  getsockname,
  lingerZeroNow,
  listenNow,
  SOCK_STREAM,
  socketNow,
} from "./libc.ts";
import { connectTcp, listenTcp, type TcpConn, tcpIdle, tcpReads } from "./tcp.ts";

async function readAll(conn: { read(p: Uint8Array): Promise<number | null> }): Promise<number[]> {
  const out: number[] = [];
  const buf = new Uint8Array(65536);
  while (true) {
    const n = await conn.read(buf);
    if (n === null) return out;
    for (let i = 0; i < n; i++) out.push(buf[i]);
  }
}

async function writeAll(conn: { write(p: Uint8Array): Promise<number> }, data: Uint8Array) {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}

Deno.test("an accepted socket reads and writes both ways, knows its peer, and ends with EOF", async () => {
  const listener = listenTcp({ hostname: "127.0.0.1", port: 0 });
  assert.equal(listener.addr.hostname, "127.0.0.1");
  assert.ok(listener.addr.port > 0);
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const conn = await listener.accept();
  assert.equal(conn.remoteAddr.hostname, "127.0.0.1");
  assert.equal(conn.remoteAddr.port, (client.localAddr as Deno.NetAddr).port);
  await writeAll(client, new TextEncoder().encode("ping"));
  const buf = new Uint8Array(16);
  const n = await conn.read(buf);
  assert.equal(new TextDecoder().decode(buf.subarray(0, n!)), "ping");
  await writeAll(conn, new TextEncoder().encode("pong"));
  const m = await client.read(buf);
  assert.equal(new TextDecoder().decode(buf.subarray(0, m!)), "pong");
  client.close();
  assert.equal(await conn.read(buf), null);
  conn.close();
  listener.close();
  await tcpIdle();
});

Deno.test("a client socket carries 8 MiB each way in order, waiting for a slow peer", async () => {
  const server = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const size = 8 << 20;
  const data = new Uint8Array(size).map((_, i) => (i * 7 + (i >> 13)) & 0xff);
  const echo = (async () => {
    const peer = await server.accept();
    const buf = new Uint8Array(4096);
    let got = 0;
    while (got < size) {
      const n = await peer.read(buf);
      if (n === null) break;
      // a slow reader now and then: the sender's socket fills and it must wait
      if ((got >> 12) % 256 === 0) await new Promise((r) => setTimeout(r, 20));
      await writeAll(peer, buf.subarray(0, n));
      got += n;
    }
    peer.close();
  })();
  const conn = await connectTcp(
    { hostname: "127.0.0.1", port: (server.addr as Deno.NetAddr).port },
    {
      timeout: 2000,
    },
  );
  const [_, back] = await Promise.all([writeAll(conn, data), readAll(conn)]);
  await echo;
  assert.equal(back.length, size);
  assert.ok(back.every((b, i) => b === data[i]), "bytes came back in order");
  conn.close();
  server.close();
  await tcpIdle();
});

Deno.test("IPv6 loopback works for listening and connecting", async () => {
  const listener = listenTcp({ hostname: "::1", port: 0 });
  assert.equal(listener.addr.hostname, "::1");
  const accepted = listener.accept();
  const conn = await connectTcp({ hostname: "::1", port: listener.addr.port }, { timeout: 2000 });
  const peer = await accepted;
  assert.equal(peer.remoteAddr.hostname, "::1");
  await writeAll(conn, new Uint8Array([1, 2, 3]));
  const buf = new Uint8Array(8);
  assert.equal(await peer.read(buf), 3);
  for (const c of [conn, peer, listener]) c.close();
  await tcpIdle();
});

Deno.test("connect failures and busy ports are errors that say why", async () => {
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  assert.throws(
    () => listenTcp({ hostname: "127.0.0.1", port }),
    /bind: Address already in use \(os error 98\)/,
  );
  probe.close();
  // port 1 on loopback: nothing listens there, the kernel answers with a reset
  await assert.rejects(
    connectTcp({ hostname: "127.0.0.1", port: 1 }, { timeout: 2000 }),
    /connect: Connection refused \(os error 111\)/,
  );
  assert.throws(() => listenTcp({ hostname: "localhost", port: 0 }), /not an IP address/);
  await tcpIdle();
});

Deno.test("closing a socket wakes its waiting read; a closed listener stops accepting", async () => {
  const listener = listenTcp({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const conn: TcpConn = await listener.accept();
  const reading = conn.read(new Uint8Array(8));
  setTimeout(() => conn.close(), 10);
  await assert.rejects(reading, /the connection was closed/);
  await assert.rejects(conn.write(new Uint8Array(1)), /the connection was closed/);
  const accepting = listener.accept();
  listener.close();
  await assert.rejects(accepting, /the listener was closed/);
  client.close();
  await tcpIdle();
});

Deno.test("a peer's reset is a read error, not an end of stream", async () => {
  const listener = listenTcp({ hostname: "127.0.0.1", port: 0 });
  const client = await connectTcp(listener.addr, { timeout: 2000 });
  const conn = await listener.accept();
  lingerZeroNow(client.fd); // the next close sends an RST, not a FIN
  client.close();
  await assert.rejects(readAll(conn), /Connection reset by peer/);
  conn.close();
  listener.close();
  await tcpIdle();
});

Deno.test("a connect nobody answers fails after its timeout and leaves nothing open", async () => {
  // a listener with a full accept queue: the kernel drops further SYNs, so the next
  // connect hangs in SYN-SENT (all on loopback)
  const fd = socketNow(AF_INET, SOCK_STREAM);
  const sa = new Uint8Array(16);
  new DataView(sa.buffer).setUint16(0, AF_INET, true);
  sa.set([127, 0, 0, 1], 4);
  assert.equal(bindNow(fd, sa), 0);
  assert.equal(listenNow(fd, 0), 0);
  const port = new DataView(getsockname(fd).buffer).getUint16(2);
  const queued: TcpConn[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      try {
        queued.push(await connectTcp({ hostname: "127.0.0.1", port }, { timeout: 300 }));
      } catch (err) {
        assert.match((err as Error).message, /no answer within 300 ms/);
        return;
      }
    }
    assert.fail("every connect was answered; the accept queue never filled");
  } finally {
    for (const c of queued) c.close();
    close(fd);
    await tcpIdle();
  }
});

Deno.test("the end of stream right behind the last bytes is seen, not waited for", async () => {
  const listener = listenTcp({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const conn = await listener.accept();
  await writeAll(client, new Uint8Array(100).fill(7));
  client.close(); // data and FIN are both queued before the first read
  await new Promise((r) => setTimeout(r, 50));
  const buf = new Uint8Array(4096);
  assert.equal(await conn.read(buf), 100);
  const end = await Promise.race([
    conn.read(buf),
    new Promise((r) => setTimeout(() => r("hung"), 2000)),
  ]);
  assert.equal(end, null);
  conn.close();
  listener.close();
  await tcpIdle();
});

/** Two sys/tcp sockets connected to each other over loopback. */
async function tcpPair(): Promise<[TcpConn, TcpConn, () => void]> {
  const listener = listenTcp({ hostname: "127.0.0.1", port: 0 });
  const [a, b] = await Promise.all([
    connectTcp({ hostname: "127.0.0.1", port: listener.addr.port }, { timeout: 2000 }),
    listener.accept(),
  ]);
  return [a, b, () => listener.close()];
}

Deno.test("peers that answer at once cannot keep the loop from serving another socket", async () => {
  // a ping-pong whose every read finds its bytes already there runs on microtasks alone;
  // the loop must still take the next batch of events, where another socket waits
  const [ping, pong, closePing] = await tcpPair();
  const [waiting, writer, closeOther] = await tcpPair();
  const rounds = 5000;
  let exchanged = 0;
  const one = new Uint8Array([1]);
  const buf = new Uint8Array(16);
  const chatter = (async () => {
    await writeAll(ping, one);
    for (; exchanged < rounds; exchanged++) {
      await pong.read(buf);
      await writeAll(pong, one);
      await ping.read(buf);
      await writeAll(ping, one);
    }
  })();
  let servedAt = -1;
  const other = waiting.read(buf).then(() => servedAt = exchanged);
  await writeAll(writer, one);
  await Promise.all([chatter, other]);
  assert.ok(
    servedAt >= 0 && servedAt < rounds / 2,
    `the other socket was served after ${servedAt} of ${rounds} exchanges`,
  );
  for (const conn of [ping, pong, waiting, writer]) conn.close();
  closePing();
  closeOther();
  await tcpIdle();
});

Deno.test("a short read is the last until the peer sends again, and a close after data is still seen", async () => {
  const listener = listenTcp({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const conn = await listener.accept();
  const buf = new Uint8Array(1024);
  await writeAll(client, new TextEncoder().encode("first"));
  assert.equal(await conn.read(buf), 5);
  // drained: trying again costs no system call until the next edge
  const before = tcpReads();
  assert.equal(conn.tryRead(buf), -1);
  assert.equal(tcpReads(), before);
  await writeAll(client, new TextEncoder().encode("second"));
  assert.equal(await conn.read(buf), 6);
  assert.equal(new TextDecoder().decode(buf.subarray(0, 6)), "second");
  // data and FIN together: the short read of the data must not hide the end
  await writeAll(client, new TextEncoder().encode("last"));
  client.close();
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(await conn.read(buf), 4);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const end = await Promise.race([
    conn.read(buf),
    new Promise((r) => timer = setTimeout(() => r("no end of stream within 2 s"), 2000)),
  ]);
  clearTimeout(timer);
  assert.equal(end, null);
  conn.close();
  listener.close();
  await tcpIdle();
});
