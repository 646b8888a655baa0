/**
 * Persistence templates (ipvsadm `-p TIMEOUT -M NETMASK`): clients whose address falls
 * in the same netmask block go to the same server while a template lives. A template
 * lives `timeout` after the last connection it placed, and longer while connections
 * it placed are still open (the kernel re-arms it). Pure: the caller passes the time.
 * @module
 */
import { parseIpv6 } from "../config/address.ts";

/** The block a client address belongs to under `netmask` (dotted IPv4 mask or prefix length). */
export function maskAddress(address: string, netmask: string): string {
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  if (v4) {
    const ip = ((+v4[1] << 24) | (+v4[2] << 16) | (+v4[3] << 8) | +v4[4]) >>> 0;
    const mask = maskBits(netmask, 32);
    const net = (ip & mask) >>> 0;
    return [net >>> 24, (net >>> 16) & 255, (net >>> 8) & 255, net & 255].join(".");
  }
  const groups = parseIpv6(address);
  if (!groups) return address;
  const prefix = /^\/?\d+$/.test(netmask) ? Math.min(128, parseInt(netmask.replace("/", ""))) : 128;
  return groups.map((g, i) => {
    const bits = Math.max(0, Math.min(16, prefix - i * 16));
    return (g & ((0xffff << (16 - bits)) & 0xffff)).toString(16);
  }).join(":");
}

function maskBits(netmask: string, width: number): number {
  const dotted = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(netmask);
  if (dotted) {
    return ((+dotted[1] << 24) | (+dotted[2] << 16) | (+dotted[3] << 8) | +dotted[4]) >>> 0;
  }
  const prefix = Math.min(width, parseInt(netmask.replace("/", "")) || width);
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** One template. */
export interface Template<D> {
  readonly block: string;
  readonly dest: D;
  expires: number;
  /** Open connections this template placed. */
  controlled: number;
}

/** The persistence templates of one service. */
export class Persistence<D> {
  readonly #templates = new Map<string, Template<D>>();

  /** Templates for `timeout` ms per `netmask` block. */
  constructor(readonly timeout: number, readonly netmask: string) {}

  /** Templates alive. */
  get size(): number {
    return this.#templates.size;
  }

  /**
   * The server a client is bound to, when its template is alive and `valid(dest)` says
   * the server may still take connections; an invalid template is dropped.
   */
  lookup(address: string, now: number, valid: (dest: D) => boolean): D | undefined {
    const block = maskAddress(address, this.netmask);
    const t = this.#templates.get(block);
    if (!t) return undefined;
    if ((t.expires <= now && t.controlled === 0) || !valid(t.dest)) {
      this.#templates.delete(block);
      return undefined;
    }
    return t.dest;
  }

  /** Binds a client's block to `dest` for one more connection; returns the template. */
  bind(address: string, dest: D, now: number): Template<D> {
    const block = maskAddress(address, this.netmask);
    let t = this.#templates.get(block);
    if (!t || t.dest !== dest) {
      t = { block, dest, expires: 0, controlled: 0 };
      this.#templates.set(block, t);
    }
    t.expires = now + this.timeout;
    t.controlled++;
    return t;
  }

  /** A connection placed by `template` closed. */
  release(template: Template<D>): void {
    if (template.controlled > 0) template.controlled--;
  }

  /** Templates bound to each destination. */
  countFor(dest: D): number {
    let n = 0;
    for (const t of this.#templates.values()) if (t.dest === dest) n++;
    return n;
  }

  /** Removes templates past their time with no open connections; returns how many. */
  gc(now: number): number {
    let removed = 0;
    for (const [block, t] of this.#templates) {
      if (t.expires > now) continue;
      if (t.controlled > 0) {
        t.expires = now + this.timeout;
        continue;
      }
      this.#templates.delete(block);
      removed++;
    }
    return removed;
  }

  /** Drops every template bound to `dest` (a removed server). */
  forget(dest: D): void {
    for (const [block, t] of this.#templates) if (t.dest === dest) this.#templates.delete(block);
  }
}
