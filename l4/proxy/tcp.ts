/**
 * The userspace TCP path: accept, defend, place with the scheduler, connect with a
 * timeout, optionally send a PROXY header, then `pipe` both ways (backpressure and
 * half-close from node:net streams, the fastest path measured here for request/response
 * traffic). A connection that turns out to be bulk moves to kernel splice(2)
 * (sys/splice.ts, see {@link spliceAuto}); stats, timeouts, half-close, resets and the
 * nodest policy work the same on both paths.
 * @module
 */
import net from "node:net";
import type { ServiceRuntime } from "../service.ts";
import { admit } from "../defense.ts";
import type { Closer, PlaneContext } from "./context.ts";
import { plainAddress, proxyV1, proxyV2 } from "./proxy_protocol.ts";
import { spliceAvailable, type SpliceEnd, SplicePair } from "../../sys/splice.ts";
import { close as closeFd } from "../../sys/libc.ts";

/** Opens the TCP listener of a service on its VIP (the listen address in userspace). */
export function listenTcp(svc: ServiceRuntime, ctx: PlaneContext): Promise<net.Server> {
  const vip = svc.config.vip;
  if (!vip) return Promise.reject(new Error(`service "${svc.name}" has no vip to listen on`));
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
    handleTcpClient(svc, socket, ctx);
  });
  return new Promise((resolve, reject) => {
    server.once("error", (err: Error) =>
      reject(
        new Error(
          `service "${svc.name}" cannot listen on ${vip.text}: ${err.message}; ` +
            `pick a free address or stop what holds it`,
        ),
      ));
    server.listen({ host: vip.host, port: vip.port, backlog: 4096 }, () => {
      server.removeAllListeners("error");
      server.on(
        "error",
        (err) => ctx.log.warn("listener error", { service: svc.name, err: String(err) }),
      );
      resolve(server);
    });
  });
}

/** The kernel descriptor of a connected node:net socket (a dup the caller owns), or -1. */
function fdOf(socket: net.Socket): number {
  // deno-lint-ignore no-explicit-any
  const handle = (socket as any)._handle;
  if (!handle || typeof handle.fdForIpc !== "function") return -1;
  try {
    return handle.fdForIpc();
  } catch {
    return -1;
  }
}

/**
 * When a TCP connection moves from the JS streams to kernel splicing: once `after`
 * bytes arrived in reads of at least `largeRead` bytes (a read that large means the
 * socket had that much queued: a bulk flow, not a request/response exchange, which
 * stays on the JS path where it is cheaper). `enabled: false` keeps every connection
 * on the JS path.
 */
export const spliceAuto = { enabled: true, after: 256 * 1024, largeRead: 16 * 1024 };

/** True when a socket's reads can be stopped at its handle. */
function canStopReading(socket: net.Socket): boolean {
  // deno-lint-ignore no-explicit-any
  const handle = (socket as any)._handle;
  return !socket.destroyed && !!handle && typeof handle.readStop === "function";
}

/** Stops a socket's reads at the handle: libuv semantics, no read after this. */
function stopReading(socket: net.Socket): void {
  // deno-lint-ignore no-explicit-any
  const s = socket as any;
  const handle = s._handle;
  handle.reading = false;
  handle.readStop();
  // The stream asks its handle for more when its buffer runs low; now it must not.
  s._read = () => {};
}

/** Undoes {@link stopReading} on both sockets and pipes them again. */
function resumeReading(client: net.Socket, server: net.Socket): void {
  for (const socket of [client, server]) {
    // deno-lint-ignore no-explicit-any
    delete (socket as any)._read;
  }
  client.pipe(server);
  server.pipe(client);
  for (const socket of [client, server]) {
    // deno-lint-ignore no-explicit-any
    (socket as any)._read(65536);
  }
}

function reset(socket: net.Socket): void {
  if (socket.destroyed) return;
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

/** Carries one accepted client connection to a real server. */
export function handleTcpClient(svc: ServiceRuntime, client: net.Socket, ctx: PlaneContext): void {
  client.on("error", () => {});
  const now = ctx.now();
  const address = plainAddress(client.remoteAddress ?? "");
  const port = client.remotePort ?? 0;
  const verdict = admit(ctx.table, address, ctx.defense());
  if (!verdict.admit) {
    svc.drop(verdict.reason);
    reset(client);
    return;
  }
  if (verdict.shed) ctx.drop(verdict.shed, "shed_embryonic", true);
  const placement = svc.place(address, port, now);
  if (!placement) {
    svc.drop("no_dest");
    reset(client);
    return;
  }
  const { dest, template } = placement;
  const conn = ctx.table.add({
    protocol: "tcp",
    service: svc.name,
    client: `${address}:${port}`,
    source: address,
    dest,
    timeouts: svc.timeouts,
  }, now);
  svc.bound(dest);

  const server = net.connect({ host: dest.host, port: dest.port, allowHalfOpen: true });
  server.on("error", () => {});
  let connected = false;
  let done = false;
  let inBytes = 0;
  let outBytes = 0;
  let inPkts = 0;
  let outPkts = 0;
  const flush = () => {
    if (inPkts === 0 && outPkts === 0) return;
    svc.stats.add("in", inBytes, inPkts);
    dest.stats.add("in", inBytes, inPkts);
    svc.stats.add("out", outBytes, outPkts);
    dest.stats.add("out", outBytes, outPkts);
    inBytes =
      outBytes =
      inPkts =
      outPkts =
        0;
    if (!done) ctx.table.touch(conn, ctx.now());
  };
  let closedSides = 0;
  const finish = () => {
    if (done) return;
    flush();
    done = true;
    clearTimeout(timer);
    ctx.table.remove(conn);
    svc.unbound(dest, template);
    ctx.untrack(conn);
  };
  const closeSockets = (hard: boolean) => {
    if (hard) {
      reset(client);
      reset(server);
    } else {
      client.destroy();
      server.destroy();
    }
  };
  const closer: Closer = {
    flush,
    close(hard) {
      if (pair && !pair.over) pair.close(hard);
      else closeSockets(hard);
      finish();
    },
  };
  ctx.track(conn, closer);
  const timer = setTimeout(() => {
    if (connected || done) return;
    svc.drop("connect_timeout", dest);
    closer.close(true);
  }, svc.timeouts.syn);

  server.once("connect", () => {
    connected = true;
    clearTimeout(timer);
    if (done) return;
    server.setNoDelay(true);
    client.setNoDelay(true);
    ctx.table.setState(conn, "ESTABLISHED", ctx.now());
    const mode = svc.config.proxy_protocol;
    if (mode !== "none") {
      const addresses = {
        protocol: "tcp" as const,
        sourceAddress: address,
        sourcePort: port,
        destAddress: client.localAddress ?? "0.0.0.0",
        destPort: client.localPort ?? 0,
      };
      server.write(mode === "v1" ? proxyV1(addresses) : proxyV2(addresses));
    }
    // Counted in closure variables on the hot path, folded into the stats and the
    // table's timers once per sweep (flush) and at the end. Large reads add up to
    // the bulk count that moves the connection to kernel splicing.
    const read = (length: number) => {
      if (conn.embryonic) ctx.table.touch(conn, ctx.now());
      if (length >= spliceAuto.largeRead && (bulk += length) >= bulkAfter) toSplice();
    };
    client.on("data", (chunk: Uint8Array) => {
      inBytes += chunk.length;
      inPkts++;
      read(chunk.length);
    });
    server.on("data", (chunk: Uint8Array) => {
      outBytes += chunk.length;
      outPkts++;
      read(chunk.length);
    });
    client.pipe(server);
    server.pipe(client);
  });
  let pair: SplicePair | undefined;
  let bulk = 0;
  let bulkAfter = spliceAuto.after;
  let switching = false;
  // Moves a connection that turned out to be bulk from the JS streams to the kernel
  // (HAProxy's splice-auto): reading stops on both sockets at once (libuv semantics:
  // no read after readStop), what JS already read is written out, and once both
  // write queues are empty the pair takes over from the next unread byte.
  const toSplice = () => {
    if (switching || done || !spliceAuto.enabled || !spliceAvailable()) return;
    if (!canStopReading(client) || !canStopReading(server)) return;
    stopReading(client);
    stopReading(server);
    switching = true;
    let delay = 0;
    const settled = () => {
      if (done || client.destroyed || server.destroyed) return;
      if (
        client.readableLength > 0 || server.readableLength > 0 ||
        client.writableLength > 0 || server.writableLength > 0
      ) {
        // A receiver slower than its sender holds the queue: look again less often.
        delay = Math.min(50, delay * 2 + 1);
        setTimeout(settled, delay);
        return;
      }
      client.unpipe(server);
      server.unpipe(client);
      if (startSplice()) return;
      // No pair (the cap is reached, no descriptors left): back to the JS path; ask
      // again after twice as many bulk bytes.
      resumeReading(client, server);
      switching = false;
      bulk = 0;
      bulkAfter *= 2;
    };
    // Not before this 'data' event has reached the pipe that writes its chunk on.
    setTimeout(settled, 0);
  };
  const startSplice = (): boolean => {
    const a = fdOf(client);
    const b = a < 0 ? -1 : fdOf(server);
    if (b < 0) {
      if (a >= 0) closeFd(a);
      return false;
    }
    pair = SplicePair.open({ a, b }, {
      onBytes(from, bytes, chunks) {
        if (from === 0) {
          inBytes += bytes;
          inPkts += chunks;
        } else {
          outBytes += bytes;
          outPkts += chunks;
        }
        if (conn.embryonic) ctx.table.touch(conn, ctx.now());
      },
      onEnd: halfClosed,
      onDone(end: SpliceEnd) {
        if (end.failed !== undefined) {
          // A reset from one side: count it once, pass the reset on.
          if (!done) svc.drop(end.failed === 0 ? "client_error" : "server_error", dest);
          const other = end.failed === 0 ? server : client;
          reset(other);
          (end.failed === 0 ? client : server).destroy();
        } else {
          closeSockets(end.reset);
        }
        finish();
      },
    });
    if (!pair) {
      closeFd(a);
      closeFd(b);
      return false;
    }
    return true;
  };
  const halfClosed = () => {
    if (conn.state !== "FIN_WAIT") ctx.table.setState(conn, "FIN_WAIT", ctx.now());
  };
  client.on("end", halfClosed);
  server.on("end", halfClosed);
  const sideClosed = (hadError: boolean, other: net.Socket) => {
    if (!connected && other === client) {
      // The server side failed before connecting: refused or unreachable.
      if (!done) svc.drop("connect_error", dest);
      reset(client);
      finish();
      return;
    }
    if (hadError) {
      // A reset from one side: count it once, pass the reset on.
      if (!done && !other.destroyed) {
        svc.drop(other === server ? "client_error" : "server_error", dest);
      }
      reset(other);
    } else if (!other.destroyed) other.end();
    if (++closedSides >= 2) finish();
  };
  client.on("close", (hadError: boolean) => {
    if (pair) return;
    if (!connected) {
      // The client left before the server answered.
      if (!done) svc.drop("client_error", dest);
      server.destroy();
      finish();
      return;
    }
    sideClosed(hadError, server);
  });
  server.on("close", (hadError: boolean) => {
    if (!pair) sideClosed(hadError, client);
  });
}
