import assert from "node:assert/strict";
import { collect } from "../tests/sockets.ts";
import net from "node:net";
import { type SpliceEnd, SplicePair, spliceSlots } from "./splice.ts";

/** The kernel fd (a dup) of a node:net socket. */
function fd(socket: net.Socket): number {
  // deno-lint-ignore no-explicit-any
  return (socket as any)._handle.fdForIpc();
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as net.AddressInfo).port;
}

/**
 * A client and a backend joined by a pair: client ⇄ [a | pair | b] ⇄ backend. The
 * middle sockets never read in JS.
 */
async function joined() {
  let a: net.Socket | undefined;
  const front = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (s) => a = s);
  let backend: net.Socket | undefined;
  const back = net.createServer({ allowHalfOpen: true }, (s) => backend = s);
  const [frontPort, backPort] = [await listen(front), await listen(back)];
  const client = net.connect({ port: frontPort, host: "127.0.0.1", allowHalfOpen: true });
  const b = net.connect({ port: backPort, host: "127.0.0.1", allowHalfOpen: true });
  await new Promise<void>((r) => b.once("connect", () => r()));
  b.pause();
  while (!a || !backend) await new Promise((r) => setTimeout(r, 5));
  for (const s of [client, b, a, backend]) s.on("error", () => {});
  const counted = { in: 0, out: 0, ends: [] as number[] };
  let resolveEnd: (end: SpliceEnd) => void = () => {};
  const ended = new Promise<SpliceEnd>((r) => resolveEnd = r);
  const middle = [a, b];
  const pair = SplicePair.open({ a: fd(a), b: fd(b) }, {
    onBytes(from, bytes) {
      if (from === 0) counted.in += bytes;
      else counted.out += bytes;
    },
    onEnd: (from) => counted.ends.push(from),
    onDone(end) {
      // SO_LINGER 0 is set where an RST is due: closing the last descriptor sends it.
      for (const s of middle) s.destroy();
      resolveEnd(end);
    },
  });
  assert.ok(pair, "splice is available here");
  const close = async () => {
    for (const s of [client, backend!, a!, b]) s.destroy();
    await new Promise<void>((r) => front.close(() => r()));
    await new Promise<void>((r) => back.close(() => r()));
  };
  return { client, backend: backend!, pair, counted, ended, close };
}

function closedWith(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    socket.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
    socket.on("end", () => resolve("end"));
    socket.on("close", () => resolve("closed"));
  });
}

function openFds(): number {
  return [...Deno.readDirSync("/proc/self/fd")].length;
}

Deno.test("a splice pair carries bytes both ways and passes each half-close on", async () => {
  const before = openFds();
  const j = await joined();
  try {
    const atBackend = collect(j.backend);
    j.client.end("request");
    assert.equal(await atBackend, "request", "the client's FIN reached the backend");
    const atClient = collect(j.client);
    j.backend.end("a reply after the client's half-close");
    assert.equal(await atClient, "a reply after the client's half-close");
    const end = await j.ended;
    assert.deepEqual(end, { closed: false, reset: false });
    assert.equal(j.counted.in, 7);
    assert.equal(j.counted.out, "a reply after the client's half-close".length);
    assert.deepEqual(j.counted.ends, [0, 1]);
    assert.equal(j.pair.over, true);
  } finally {
    await j.close();
  }
  // The pair's dups, pipes and wake pipe are closed with it: nothing leaks.
  const deadline = Date.now() + 2000;
  while (openFds() > before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  assert.equal(openFds(), before);
});

Deno.test("a reset on one side of a splice pair resets the other", async () => {
  const j = await joined();
  try {
    const atBackend = closedWith(j.backend);
    j.client.write("partial");
    await new Promise((r) => setTimeout(r, 50));
    j.client.resetAndDestroy();
    const end = await j.ended;
    assert.equal(end.failed, 0, "the client side failed");
    assert.equal(await atBackend, "ECONNRESET");
  } finally {
    await j.close();
  }
});

Deno.test("closing a splice pair with reset sends RST both ways; without, a FIN", async () => {
  for (const reset of [true, false]) {
    const j = await joined();
    try {
      const atClient = closedWith(j.client);
      const atBackend = closedWith(j.backend);
      j.pair.close(reset);
      const end = await j.ended;
      assert.deepEqual(end, { closed: true, reset });
      const expected = reset ? "ECONNRESET" : "end";
      assert.equal(await atClient, expected);
      assert.equal(await atBackend, expected);
    } finally {
      await j.close();
    }
  }
});

Deno.test("at the cap a splice pair is refused and nothing is taken over", () => {
  const saved = spliceSlots.max;
  const refused = spliceSlots.refused;
  spliceSlots.max = 0;
  try {
    const pair = SplicePair.open({ a: -1, b: -1 }, {
      onBytes() {},
      onEnd() {},
      onDone() {},
    });
    assert.equal(pair, undefined);
    assert.equal(spliceSlots.refused, refused + 1);
  } finally {
    spliceSlots.max = saved;
  }
});
