/**
 * Netlink: message and attribute encoding, and a socket that sends a request and
 * collects its replies (ACKs, errors with errno, multipart dumps). rtnetlink (VIPs)
 * and generic netlink (IPVS) are built on this.
 * @module
 */
import {
  AF_NETLINK,
  bind,
  close,
  getpid,
  recvfrom,
  sendto,
  setReceiveTimeout,
  setsockoptInt,
  SO_RCVBUF,
  SOCK_RAW,
  socket,
  SOL_SOCKET,
  strerror,
  SysError,
} from "./libc.ts";

/** Netlink protocols. */
export const NETLINK_ROUTE = 0;
export const NETLINK_GENERIC = 16;

/** Message types every family shares. */
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;

/** Header flags. */
export const NLM_F_REQUEST = 0x1;
export const NLM_F_MULTI = 0x2;
export const NLM_F_ACK = 0x4;
export const NLM_F_ROOT = 0x100;
export const NLM_F_MATCH = 0x200;
export const NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;

/** Attribute type flags. */
export const NLA_F_NESTED = 0x8000;
export const NLA_F_NET_BYTEORDER = 0x4000;
const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

const HEADER = 16;

function align4(n: number): number {
  return (n + 3) & ~3;
}

/** One attribute to encode: a type and either bytes or nested attributes. */
export interface Attr {
  readonly type: number;
  readonly value: Uint8Array | readonly Attr[];
}

/** Attribute builders with the right widths and byte orders. */
export const attr = {
  u8(type: number, v: number): Attr {
    return { type, value: new Uint8Array([v & 0xff]) };
  },
  u16(type: number, v: number): Attr {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, v, true);
    return { type, value: b };
  },
  /** A 16-bit value in network byte order (ports). */
  be16(type: number, v: number): Attr {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, v, false);
    return { type, value: b };
  },
  u32(type: number, v: number): Attr {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    return { type, value: b };
  },
  /** A 32-bit value in network byte order (IPv4 netmasks). */
  be32(type: number, v: number): Attr {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, false);
    return { type, value: b };
  },
  u64(type: number, v: bigint): Attr {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, v, true);
    return { type, value: b };
  },
  bytes(type: number, v: Uint8Array): Attr {
    return { type, value: v };
  },
  /** A NUL-terminated string. */
  str(type: number, v: string): Attr {
    const text = new TextEncoder().encode(v);
    const b = new Uint8Array(text.length + 1);
    b.set(text);
    return { type, value: b };
  },
  nested(type: number, children: readonly Attr[]): Attr {
    return { type: type | NLA_F_NESTED, value: children };
  },
};

function attrSize(a: Attr): number {
  const payload = a.value instanceof Uint8Array ? a.value.length : attrsSize(a.value);
  return align4(4 + payload);
}

function attrsSize(attrs: readonly Attr[]): number {
  return attrs.reduce((sum, a) => sum + attrSize(a), 0);
}

function writeAttrs(attrs: readonly Attr[], out: Uint8Array, offset: number): number {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (const a of attrs) {
    const start = offset;
    offset += 4;
    if (a.value instanceof Uint8Array) {
      out.set(a.value, offset);
      offset += a.value.length;
    } else {
      offset = writeAttrs(a.value, out, offset);
    }
    view.setUint16(start, offset - start, true);
    view.setUint16(start + 2, a.type, true);
    offset = align4(offset);
  }
  return offset;
}

/** Encodes attributes into bytes (each padded to 4). */
export function encodeAttrs(attrs: readonly Attr[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(attrsSize(attrs));
  writeAttrs(attrs, out, 0);
  return out;
}

/** A decoded attribute: type without flags and its payload bytes. */
export interface RawAttr {
  readonly type: number;
  readonly nested: boolean;
  readonly data: Uint8Array;
}

/** Decodes a run of attributes; stops at the first malformed one. */
export function decodeAttrs(bytes: Uint8Array): RawAttr[] {
  const out: RawAttr[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  while (offset + 4 <= bytes.length) {
    const len = view.getUint16(offset, true);
    const rawType = view.getUint16(offset + 2, true);
    if (len < 4 || offset + len > bytes.length) break;
    out.push({
      type: rawType & NLA_TYPE_MASK,
      nested: (rawType & NLA_F_NESTED) !== 0,
      data: bytes.subarray(offset + 4, offset + len),
    });
    offset += align4(len);
  }
  return out;
}

/** Attributes by type (last one wins), for lookups. */
export function attrMap(bytes: Uint8Array): Map<number, Uint8Array> {
  return new Map(decodeAttrs(bytes).map((a) => [a.type, a.data]));
}

/** Readers for attribute payloads. */
export const read = {
  u8: (b: Uint8Array): number => b[0],
  u16: (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, 2).getUint16(0, true),
  be16: (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, 2).getUint16(0, false),
  u32: (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true),
  be32: (b: Uint8Array): number => new DataView(b.buffer, b.byteOffset, 4).getUint32(0, false),
  u64: (b: Uint8Array): bigint => new DataView(b.buffer, b.byteOffset, 8).getBigUint64(0, true),
  str: (b: Uint8Array): string => {
    const end = b.indexOf(0);
    return new TextDecoder().decode(end < 0 ? b : b.subarray(0, end));
  },
};

/** A netlink message to send: type, flags, a fixed family header, attributes. */
export interface Message {
  readonly type: number;
  readonly flags: number;
  /** The family's fixed header (genlmsghdr, ifaddrmsg, …). */
  readonly header?: Uint8Array;
  readonly attrs?: readonly Attr[];
}

/** A received message. `payload` starts after the 16-byte nlmsghdr. */
export interface Reply {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly payload: Uint8Array;
}

/** Encodes one message with the given sequence number and port id. */
export function encodeMessage(msg: Message, seq: number, pid = 0): Uint8Array<ArrayBuffer> {
  const header = msg.header ?? new Uint8Array(0);
  const attrs = msg.attrs ?? [];
  const size = HEADER + align4(header.length) + attrsSize(attrs);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, size, true);
  view.setUint16(4, msg.type, true);
  view.setUint16(6, msg.flags, true);
  view.setUint32(8, seq, true);
  view.setUint32(12, pid, true);
  out.set(header, HEADER);
  writeAttrs(attrs, out, HEADER + align4(header.length));
  return out;
}

/** Splits a datagram into its messages. */
export function decodeMessages(bytes: Uint8Array): Reply[] {
  const out: Reply[] = [];
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let offset = 0;
  while (offset + HEADER <= bytes.length) {
    const len = view.getUint32(offset, true);
    if (len < HEADER || offset + len > bytes.length) break;
    out.push({
      type: view.getUint16(offset + 4, true),
      flags: view.getUint16(offset + 6, true),
      seq: view.getUint32(offset + 8, true),
      payload: bytes.subarray(offset + HEADER, offset + len),
    });
    offset += align4(len);
  }
  return out;
}

/** A netlink error reply, with the kernel's errno and extended ack text if any. */
export class NetlinkError extends Error {
  readonly errno: number;
  constructor(errno: number, what: string, extack?: string) {
    super(
      `${what}: ${strerror(errno)} (errno ${errno})${extack ? `: ${extack}` : ""}`,
    );
    this.name = "NetlinkError";
    this.errno = errno;
  }
}

const NLMSGERR_ATTR_MSG = 1;

function errorOf(reply: Reply, what: string): NetlinkError | undefined {
  const view = new DataView(reply.payload.buffer, reply.payload.byteOffset, 4);
  const code = -view.getInt32(0, true);
  if (code === 0) return undefined;
  // With NETLINK_EXT_ACK the original header follows (16 bytes, payload capped), then TLVs.
  const origLen = new DataView(reply.payload.buffer, reply.payload.byteOffset + 4, 4)
    .getUint32(0, true);
  const capped = (reply.flags & 0x100) !== 0; // NLM_F_CAPPED
  const tlvStart = 4 + (capped ? HEADER : align4(origLen));
  let extack: string | undefined;
  if ((reply.flags & 0x200) !== 0 && tlvStart < reply.payload.length) { // NLM_F_ACK_TLVS
    const msg = attrMap(reply.payload.subarray(tlvStart)).get(NLMSGERR_ATTR_MSG);
    if (msg) extack = read.str(msg);
  }
  return new NetlinkError(code, what, extack);
}

const SOL_NETLINK = 270;
const NETLINK_EXT_ACK = 11;
const NETLINK_CAP_ACK = 10;

/** A netlink socket for one protocol, doing one request at a time. */
export class NetlinkSocket {
  readonly #fd: number;
  #seq = Math.floor(Math.random() * 0x7fffffff);
  #busy: Promise<unknown> = Promise.resolve();
  #closed = false;

  /** Opens a socket for `protocol` (NETLINK_ROUTE, NETLINK_GENERIC). */
  constructor(protocol: number) {
    this.#fd = socket(AF_NETLINK, SOCK_RAW, protocol);
    try {
      const addr = new Uint8Array(12);
      new DataView(addr.buffer).setUint16(0, AF_NETLINK, true);
      bind(this.#fd, addr);
      setsockoptInt(this.#fd, SOL_SOCKET, SO_RCVBUF, 4 << 20);
      setsockoptInt(this.#fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
      setsockoptInt(this.#fd, SOL_NETLINK, NETLINK_CAP_ACK, 1);
      setReceiveTimeout(this.#fd, 5000);
    } catch (error) {
      close(this.#fd);
      throw error;
    }
  }

  /**
   * Sends `msg` (NLM_F_REQUEST and NLM_F_ACK are added) and returns every data reply
   * until the ACK or NLMSG_DONE. Throws {@link NetlinkError} when the kernel refuses,
   * naming `what` (e.g. `add service tcp 10.0.0.1:80`).
   */
  request(msg: Message, what = "netlink request"): Promise<Reply[]> {
    const run = this.#busy.then(() => this.#request(msg, what));
    this.#busy = run.catch(() => undefined);
    return run;
  }

  async #request(msg: Message, what: string): Promise<Reply[]> {
    if (this.#closed) throw new Error(`${what}: the netlink socket is closed`);
    const seq = ++this.#seq >>> 0;
    sendto(
      this.#fd,
      encodeMessage({ ...msg, flags: msg.flags | NLM_F_REQUEST | NLM_F_ACK }, seq, 0),
    );
    const replies: Reply[] = [];
    const dump = (msg.flags & NLM_F_DUMP) === NLM_F_DUMP;
    for (;;) {
      const got = await recvfrom(this.#fd, 1 << 20);
      if (!got) {
        throw new SysError(`${what}: no netlink reply`, 110, "the kernel did not answer in 5s");
      }
      for (const reply of decodeMessages(got.data)) {
        if (reply.seq !== seq) continue;
        if (reply.type === NLMSG_ERROR) {
          const error = errorOf(reply, what);
          if (error) throw error;
          if (!dump) return replies;
          continue;
        }
        if (reply.type === NLMSG_DONE) return replies;
        if (reply.type === NLMSG_NOOP) continue;
        replies.push(reply);
      }
    }
  }

  /** Closes the socket; pending and later requests fail. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    close(this.#fd);
  }
}

/** The calling process's pid, used as a hint in logs. */
export function processId(): number {
  return getpid();
}
