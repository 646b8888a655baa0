/**
 * Netlink: message and attribute encoding, and a socket that sends a request (or a
 * batch of many per system call) and collects its replies (ACKs, errors with errno
 * and extended-ack text, multipart dumps). rtnetlink (VIPs) and generic netlink
 * (IPVS) are built on this.
 * @module
 */
import {
  AF_NETLINK,
  bind,
  close,
  getpid,
  recvfrom,
  recvfromNow,
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
  /** The attributes already encoded (hot paths); sent instead of `attrs`. */
  readonly encoded?: Uint8Array;
}

/** A received message. `payload` starts after the 16-byte nlmsghdr. */
export interface Reply {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly payload: Uint8Array;
}

function messageSize(msg: Message): number {
  const header = align4(msg.header?.length ?? 0);
  return HEADER + header + (msg.encoded ? msg.encoded.length : attrsSize(msg.attrs ?? []));
}

/** Writes `msg` at `offset` of `out`; returns its size. */
function writeMessage(
  msg: Message,
  seq: number,
  pid: number,
  out: Uint8Array,
  offset: number,
): number {
  const size = messageSize(msg);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  view.setUint32(offset, size, true);
  view.setUint16(offset + 4, msg.type, true);
  view.setUint16(offset + 6, msg.flags, true);
  view.setUint32(offset + 8, seq, true);
  view.setUint32(offset + 12, pid, true);
  const header = msg.header ?? new Uint8Array(0);
  out.set(header, offset + HEADER);
  const body = offset + HEADER + align4(header.length);
  if (msg.encoded) out.set(msg.encoded, body);
  else writeAttrs(msg.attrs ?? [], out, body);
  return size;
}

/** Encodes one message with the given sequence number and port id. */
export function encodeMessage(msg: Message, seq: number, pid = 0): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(messageSize(msg));
  writeMessage(msg, seq, pid, out, 0);
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
const NLM_F_CAPPED = 0x100;
const NLM_F_ACK_TLVS = 0x200;

/** The errno and extended-ack text of an NLMSG_ERROR payload (errno 0 = ACK). */
export function decodeAck(reply: Reply): { errno: number; extack?: string } {
  const p = reply.payload;
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const errno = -view.getInt32(0, true) || 0;
  if (errno === 0 || p.length < 20) return { errno };
  // With NETLINK_EXT_ACK the original header follows (16 bytes, payload capped), then TLVs.
  const origLen = view.getUint32(4, true);
  const capped = (reply.flags & NLM_F_CAPPED) !== 0;
  const tlvStart = 4 + (capped ? HEADER : align4(origLen));
  if ((reply.flags & NLM_F_ACK_TLVS) === 0 || tlvStart >= p.length) return { errno };
  const msg = attrMap(p.subarray(tlvStart)).get(NLMSGERR_ATTR_MSG);
  return msg ? { errno, extack: read.str(msg) } : { errno };
}

const SOL_NETLINK = 270;
const NETLINK_EXT_ACK = 11;
const NETLINK_CAP_ACK = 10;
/** Bytes per sendto in a batch (the kernel refuses a message above its send buffer). */
const BATCH_BYTES = 96 * 1024;

/** Options of the {@link NetlinkSocket} constructor. */
export interface NetlinkSocketOptions {
  /**
   * Bytes of every read, 1 MiB unless set. The kernel sizes dump chunks to the largest
   * read it has seen on the socket, so one size per socket means no chunk is truncated.
   */
  readonly receiveSize?: number;
}

/** One message of a {@link NetlinkSocket.batch}, with what names it in errors. */
export interface BatchMessage extends Message {
  /** Names the message in errors (`add service tcp 10.0.0.1:80`); built only when needed. */
  readonly what: string | (() => string);
}

/**
 * A netlink socket for one protocol, doing one request (or batch) at a time.
 * Requests to the kernel are answered while `sendto` runs, so replies are read
 * without waiting (a blocking read on a worker thread is only the fallback), and
 * {@link NetlinkSocket.batch} sends many messages per system call.
 */
export class NetlinkSocket {
  readonly #fd: number;
  readonly #receiveSize: number;
  #seq = Math.floor(Math.random() * 0x7fffffff);
  #busy: Promise<unknown> = Promise.resolve();
  #closed = false;

  /** Opens a socket for `protocol` (NETLINK_ROUTE, NETLINK_GENERIC). */
  constructor(protocol: number, options: NetlinkSocketOptions = {}) {
    this.#receiveSize = options.receiveSize ?? 1 << 20;
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
   * naming `what` (e.g. `add service tcp 10.0.0.1:80`). `dump` (a multipart answer
   * ending in NLMSG_DONE) defaults to whether `msg.flags` hold NLM_F_DUMP.
   */
  request(
    msg: Message,
    what: string | (() => string) = "netlink request",
    options: { dump?: boolean } = {},
  ): Promise<Reply[]> {
    const dump = options.dump ?? (msg.flags & NLM_F_DUMP) === NLM_F_DUMP;
    return this.#queue(async () => {
      const [result] = await this.#exchange([{ ...msg, what }], dump, true);
      if (result instanceof Error) throw result;
      return result;
    });
  }

  /**
   * Sends messages in order, many per system call, and returns for each one
   * `undefined` (done) or the kernel's error. A failed message does not stop the
   * ones after it: the caller decides what to undo.
   */
  batch(msgs: readonly BatchMessage[]): Promise<(Error | undefined)[]> {
    return this.#queue(async () => {
      const out: (Error | undefined)[] = [];
      let start = 0;
      let size = 0;
      const flush = async (end: number) => {
        if (end === start) return;
        const results = await this.#exchange(msgs.slice(start, end), false, false);
        for (const r of results) out.push(r instanceof Error ? r : undefined);
        start = end;
        size = 0;
      };
      for (let i = 0; i < msgs.length; i++) {
        const m = msgs[i];
        size += 32 + (m.encoded ? m.encoded.length : (m.attrs?.length ?? 0) * 40);
        if (size >= BATCH_BYTES) await flush(i + 1);
      }
      await flush(msgs.length);
      return out;
    });
  }

  #queue<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#busy.then(work);
    this.#busy = run.catch(() => undefined);
    return run;
  }

  /**
   * Sends `msgs` in one datagram and collects their outcomes. With `ackAll` false only
   * the last message asks for an ACK: the kernel answers the others only when they fail,
   * and handles them in order, so the last ACK means every earlier one is done.
   */
  async #exchange(
    msgs: readonly BatchMessage[],
    dump: boolean,
    ackAll: boolean,
  ): Promise<(Reply[] | Error)[]> {
    const whatOf = (i: number) => {
      const w = msgs[i].what;
      return typeof w === "function" ? w() : w;
    };
    if (this.#closed) throw new Error(`${whatOf(0)}: the netlink socket is closed`);
    const first = (this.#seq + 1) >>> 0;
    this.#seq = (first + msgs.length - 1) >>> 0;
    const last = msgs.length - 1;
    const flagsOf = (m: Message, i: number) =>
      m.flags | NLM_F_REQUEST | (ackAll || i === last ? NLM_F_ACK : 0);
    const buf = new Uint8Array(msgs.reduce((n, m) => n + messageSize(m), 0));
    let offset = 0;
    msgs.forEach((m, i) => {
      offset += writeMessage({ ...m, flags: flagsOf(m, i) }, (first + i) >>> 0, 0, buf, offset);
    });
    sendto(this.#fd, buf);
    const results: (Reply[] | Error | undefined)[] = msgs.map(() => undefined);
    const data: Reply[][] = msgs.map(() => []);
    let pending = ackAll ? msgs.length : 1;
    while (pending > 0) {
      const got = recvfromNow(this.#fd, this.#receiveSize) ??
        await recvfrom(this.#fd, this.#receiveSize);
      if (!got) {
        throw new SysError(
          `${whatOf(0)}: no netlink reply`,
          110,
          "the kernel did not answer in 5s",
        );
      }
      for (const reply of decodeMessages(got.data)) {
        const index = (reply.seq - first) >>> 0;
        if (index >= msgs.length || results[index] !== undefined) continue;
        const counts = ackAll || index === last;
        if (reply.type === NLMSG_ERROR) {
          const ack = decodeAck(reply);
          if (ack.errno !== 0) {
            results[index] = new NetlinkError(ack.errno, whatOf(index), ack.extack);
            if (counts) pending--;
          } else if (!dump) {
            results[index] = data[index];
            if (counts) pending--;
          }
        } else if (reply.type === NLMSG_DONE) {
          results[index] = data[index];
          if (counts) pending--;
        } else if (reply.type !== NLMSG_NOOP) {
          data[index].push(reply);
        }
      }
    }
    return results.map((r, i) => r ?? data[i]);
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
