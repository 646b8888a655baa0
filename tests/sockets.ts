/**
 * Socket helpers shared by the tests: listen on an ephemeral loopback port, wait for
 * a condition, collect what a socket reads until its end.
 * @module
 */
import type net from "node:net";

/** Listens on an ephemeral port of 127.0.0.1 and returns it. */
export async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return (server.address() as net.AddressInfo).port;
}

/** Polls `ok` every 10 ms; throws naming `what` after `ms`. */
export async function waitFor(what: string, ok: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Everything a socket reads until its end, as text; rejects on a socket error. */
export function collect(socket: net.Socket): Promise<string> {
  let text = "";
  const decoder = new TextDecoder();
  return new Promise((resolve, reject) => {
    socket.on("data", (d: Uint8Array) => text += decoder.decode(d, { stream: true }));
    socket.on("end", () => resolve(text + decoder.decode()));
    socket.on("error", reject);
  });
}
