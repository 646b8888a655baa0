/**
 * The userspace UDP path: one listening socket per service; each client address:port
 * is a session (a UDP entry of the connection table) with its own socket toward the
 * chosen server, so replies find their way back; sessions end after the UDP timeout.
 * @module
 */
import dgram from "node:dgram";
import type { ServiceRuntime } from "../service.ts";
import { admit } from "../defense.ts";
import { connKey } from "../conn_table.ts";
import type { PlaneContext } from "./context.ts";

/** Opens the UDP listener of a service on its VIP. */
export function listenUdp(svc: ServiceRuntime, ctx: PlaneContext): Promise<dgram.Socket> {
  const vip = svc.config.vip;
  if (!vip) return Promise.reject(new Error(`service "${svc.name}" has no vip to listen on`));
  const type = vip.family === 6 ? "udp6" : "udp4";
  const socket = dgram.createSocket({ type });
  const sessions = new Map<string, dgram.Socket>();
  socket.on("message", (msg: Uint8Array, rinfo: dgram.RemoteInfo) => {
    const client = `${rinfo.address}:${rinfo.port}`;
    const key = connKey("udp", client, svc.name);
    const now = ctx.now();
    const existing = ctx.table.get(key);
    const upstream = existing ? sessions.get(key) : undefined;
    if (existing && upstream) {
      ctx.table.touch(existing, now);
      svc.stats.add("in", msg.length);
      existing.dest.stats.add("in", msg.length);
      upstream.send(msg, existing.dest.port, existing.dest.host);
      return;
    }
    const verdict = admit(ctx.table, rinfo.address, ctx.defense());
    if (!verdict.admit) {
      svc.drop(verdict.reason);
      return;
    }
    if (verdict.shed) ctx.drop(verdict.shed, "shed_embryonic", true);
    const placement = svc.place(rinfo.address, rinfo.port, now);
    if (!placement) {
      svc.drop("no_dest");
      return;
    }
    const { dest, template } = placement;
    const conn = ctx.table.add({
      protocol: "udp",
      service: svc.name,
      client,
      source: rinfo.address,
      dest,
      timeouts: svc.timeouts,
    }, now);
    svc.bound(dest);
    const up = dgram.createSocket({ type: dest.host.includes(":") ? "udp6" : "udp4" });
    sessions.set(key, up);
    let closed = false;
    up.on("error", () => {});
    up.on("message", (reply: Uint8Array, from: dgram.RemoteInfo) => {
      if (from.port !== dest.port) return;
      ctx.table.touch(conn, ctx.now());
      svc.stats.add("out", reply.length);
      dest.stats.add("out", reply.length);
      socket.send(reply, rinfo.port, rinfo.address);
    });
    ctx.track(conn, {
      close() {
        if (closed) return;
        closed = true;
        sessions.delete(key);
        try {
          up.close();
        } catch { /* already closed */ }
        ctx.table.remove(conn);
        svc.unbound(dest, template);
        ctx.untrack(conn);
      },
    });
    ctx.table.touch(conn, now);
    svc.stats.add("in", msg.length);
    dest.stats.add("in", msg.length);
    up.send(msg, dest.port, dest.host);
  });
  return new Promise((resolve, reject) => {
    socket.once("error", (err: Error) =>
      reject(
        new Error(
          `service "${svc.name}" cannot listen on udp ${vip.text}: ${err.message}; ` +
            `pick a free address or stop what holds it`,
        ),
      ));
    socket.bind(vip.port, vip.host, () => {
      socket.removeAllListeners("error");
      socket.on(
        "error",
        (err) => ctx.log.warn("udp listener error", { service: svc.name, err: String(err) }),
      );
      resolve(socket);
    });
  });
}
