/**
 * The userspace TCP path: accept, defend, place with the scheduler, connect with a
 * timeout, optionally send a PROXY header, then `pipe` both ways (backpressure and
 * half-close from node:net streams, the fastest path measured here).
 * @module
 */
import net from "node:net";
import type { ServiceRuntime } from "../service.ts";
import { admit } from "../defense.ts";
import type { Closer, PlaneContext } from "./context.ts";
import { plainAddress, proxyV1, proxyV2 } from "./proxy_protocol.ts";

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
  const closer: Closer = {
    flush,
    close(hard) {
      if (hard) {
        reset(client);
        reset(server);
      } else {
        client.destroy();
        server.destroy();
      }
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
    // table's timers once per sweep (flush) and at the end.
    client.on("data", (chunk: Uint8Array) => {
      inBytes += chunk.length;
      inPkts++;
      if (conn.embryonic) ctx.table.touch(conn, ctx.now());
    });
    server.on("data", (chunk: Uint8Array) => {
      outBytes += chunk.length;
      outPkts++;
      if (conn.embryonic) ctx.table.touch(conn, ctx.now());
    });
    client.pipe(server);
    server.pipe(client);
  });
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
    if (!connected) {
      // The client left before the server answered.
      if (!done) svc.drop("client_error", dest);
      server.destroy();
      finish();
      return;
    }
    sideClosed(hadError, server);
  });
  server.on("close", (hadError: boolean) => sideClosed(hadError, client));
}
