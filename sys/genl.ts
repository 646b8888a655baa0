/**
 * Generic netlink: the 4-byte genlmsghdr, the controller's `CTRL_CMD_GETFAMILY`
 * lookup (family ids are dynamic), and a socket bound to one resolved family.
 * IPVS (sys/ipvs.ts) is built on this.
 * @module
 */
import {
  AF_NETLINK,
  bind,
  close,
  recvfrom,
  recvfromNow,
  sendto,
  setReceiveTimeout,
  setsockoptInt,
  SO_RCVBUF,
  SOCK_RAW,
  socket,
  SOL_SOCKET,
  SysError,
} from "./libc.ts";
import {
  type Attr,
  attr,
  attrMap,
  decodeMessages,
  encodeMessage,
  type Message,
  NETLINK_GENERIC,
  NetlinkError,
  NLM_F_ACK,
  NLM_F_DUMP,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_NOOP,
  read,
  type Reply,
} from "./netlink.ts";

/** The controller family's fixed id. */
export const GENL_ID_CTRL = 0x10;
/** Controller commands and attributes (linux/genetlink.h). */
export const CTRL_CMD_GETFAMILY = 3;
/** Controller attribute: the family id (u16). */
export const CTRL_ATTR_FAMILY_ID = 1;
/** Controller attribute: the family name (string). */
export const CTRL_ATTR_FAMILY_NAME = 2;
/** Controller attribute: the family version (u32). */
export const CTRL_ATTR_VERSION = 3;
/** Controller attribute: the family's fixed header size (u32). */
export const CTRL_ATTR_HDRSIZE = 4;
/** Controller attribute: the family's highest attribute type (u32). */
export const CTRL_ATTR_MAXATTR = 5;

/** Size of `struct genlmsghdr { u8 cmd; u8 version; u16 reserved; }`. */
export const GENL_HDRLEN = 4;

/** Encodes a genlmsghdr. */
export function genlHeader(cmd: number, version: number): Uint8Array {
  return new Uint8Array([cmd & 0xff, version & 0xff, 0, 0]);
}

/** A generic netlink message as received: its command, version and attribute bytes. */
export interface GenlReply {
  readonly cmd: number;
  readonly version: number;
  /** The attributes after the genlmsghdr. */
  readonly attrs: Uint8Array;
}

/** Splits a netlink reply's payload into genlmsghdr and attributes. */
export function decodeGenl(reply: Reply): GenlReply {
  const p = reply.payload;
  return { cmd: p[0], version: p[1], attrs: p.subarray(GENL_HDRLEN) };
}

/** What the controller says about one family. */
export interface GenlFamily {
  readonly id: number;
  readonly name: string;
  readonly version: number;
  readonly maxAttr: number;
}

/** The `CTRL_CMD_GETFAMILY` request for `name`. */
export function getFamilyRequest(name: string): Message {
  return {
    type: GENL_ID_CTRL,
    flags: 0,
    header: genlHeader(CTRL_CMD_GETFAMILY, 1),
    attrs: [attr.str(CTRL_ATTR_FAMILY_NAME, name)],
  };
}

/** Decodes the controller's answer to `CTRL_CMD_GETFAMILY`. */
export function decodeFamily(reply: Reply): GenlFamily {
  const attrs = attrMap(decodeGenl(reply).attrs);
  const id = attrs.get(CTRL_ATTR_FAMILY_ID);
  const name = attrs.get(CTRL_ATTR_FAMILY_NAME);
  if (!id || !name) {
    throw new Error("the generic netlink controller sent a reply without id or name");
  }
  const version = attrs.get(CTRL_ATTR_VERSION);
  const maxAttr = attrs.get(CTRL_ATTR_MAXATTR);
  return {
    id: read.u16(id),
    name: read.str(name),
    version: version ? read.u32(version) : 0,
    maxAttr: maxAttr ? read.u32(maxAttr) : 0,
  };
}

/** Options of {@link GenlSocket.open}. */
export interface GenlOpenOptions {
  /** Counts every request sent (for "one change = one message" checks). */
  readonly onRequest?: (cmd: number) => void;
}

/** One command of a {@link GenlSocket.batch}. */
export interface GenlCommand {
  readonly cmd: number;
  /** The attributes, or `encoded`: the same already encoded (hot paths). */
  readonly attrs?: readonly Attr[];
  readonly encoded?: Uint8Array;
  /** Names the command in errors (`add service tcp 10.0.0.1:80`); built only when needed. */
  readonly what: string | (() => string);
}

const SOL_NETLINK = 270;
const NETLINK_EXT_ACK = 11;
const NETLINK_CAP_ACK = 10;
const NLMSG_HDRLEN = 16;
/** Bytes per sendto in a batch (the kernel refuses a message above its send buffer). */
const BATCH_BYTES = 96 * 1024;
/**
 * Every read uses this size: the kernel sizes dump chunks to the largest read it has
 * seen on the socket, so one size everywhere means no chunk is ever truncated.
 */
const RECV_SIZE = 16384;

interface Outgoing {
  readonly type: number;
  readonly header: Uint8Array;
  readonly attrs?: readonly Attr[];
  readonly encoded?: Uint8Array;
  readonly what: string | (() => string);
  readonly flags?: number;
}

/** The errno and extended-ack text of an NLMSG_ERROR payload (errno 0 = ACK). */
export function decodeAck(reply: Reply): { errno: number; extack?: string } {
  const p = reply.payload;
  const view = new DataView(p.buffer, p.byteOffset, p.byteLength);
  const errno = -view.getInt32(0, true) || 0;
  if (errno === 0 || p.length < 20) return { errno };
  const origLen = view.getUint32(4, true);
  const capped = (reply.flags & 0x100) !== 0;
  const tlvStart = 4 + (capped ? NLMSG_HDRLEN : (origLen + 3) & ~3);
  if ((reply.flags & 0x200) === 0 || tlvStart >= p.length) return { errno };
  const msg = attrMap(p.subarray(tlvStart)).get(1);
  return msg ? { errno, extack: read.str(msg) } : { errno };
}

/**
 * A generic netlink socket talking to one family, resolved by name when opened.
 * Requests to the kernel are answered while `sendto` runs, so replies are read
 * without waiting (a blocking read on a worker thread is only the fallback), and
 * {@link GenlSocket.batch} sends many commands per system call.
 */
export class GenlSocket {
  #family: GenlFamily = { id: GENL_ID_CTRL, name: "nlctrl", version: 2, maxAttr: 0 };
  readonly #fd: number;
  readonly #onRequest?: (cmd: number) => void;
  #seq = Math.floor(Math.random() * 0x3fffffff);
  #busy: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(options: GenlOpenOptions) {
    this.#onRequest = options.onRequest;
    this.#fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC);
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

  /** The resolved family. */
  get family(): GenlFamily {
    return this.#family;
  }

  /**
   * Opens a socket and looks `name` up. Throws a {@link NetlinkError} with errno
   * ENOENT (2) when the kernel has no such family (module not loaded).
   */
  static async open(name: string, options: GenlOpenOptions = {}): Promise<GenlSocket> {
    const sock = new GenlSocket(options);
    try {
      const req = getFamilyRequest(name);
      const [result] = await sock.#run([{
        type: req.type,
        header: req.header!,
        attrs: req.attrs!,
        what: `look up generic netlink family "${name}"`,
      }], false);
      if (result instanceof Error) throw result;
      if (!result.length) throw new NetlinkError(2, `look up generic netlink family "${name}"`);
      sock.#family = decodeFamily(result[0]);
      return sock;
    } catch (error) {
      sock.close();
      throw error;
    }
  }

  /** Sends one command with attributes; returns the replies (many when `dump`). */
  request(
    cmd: number,
    attrs: readonly Attr[],
    options: { dump?: boolean; flags?: number; what?: string } = {},
  ): Promise<GenlReply[]> {
    this.#onRequest?.(cmd);
    const what = options.what ?? `${this.#family.name} command ${cmd}`;
    const run = this.#busy.then(() =>
      this.#run([{
        type: this.#family.id,
        header: genlHeader(cmd, this.#family.version || 1),
        attrs,
        what,
        flags: (options.flags ?? 0) | (options.dump ? NLM_F_DUMP : 0),
      }], options.dump ?? false)
    );
    this.#busy = run.catch(() => undefined);
    return run.then(([r]) => {
      if (r instanceof Error) throw r;
      return r.map(decodeGenl);
    });
  }

  /**
   * Sends commands in order, many per system call, and returns for each one
   * `undefined` (done) or the kernel's error. A failed command does not stop the
   * ones after it: the caller decides what to undo.
   */
  batch(commands: readonly GenlCommand[]): Promise<(Error | undefined)[]> {
    for (const c of commands) this.#onRequest?.(c.cmd);
    const run = this.#busy.then(async () => {
      const out: (Error | undefined)[] = [];
      let part: Outgoing[] = [];
      let size = 0;
      const flush = async () => {
        if (!part.length) return;
        const results = await this.#run(part, false, false);
        for (const r of results) out.push(r instanceof Error ? r : undefined);
        part = [];
        size = 0;
      };
      for (const c of commands) {
        const msg: Outgoing = {
          type: this.#family.id,
          header: genlHeader(c.cmd, this.#family.version || 1),
          attrs: c.attrs,
          encoded: c.encoded,
          what: c.what,
        };
        part.push(msg);
        size += 32 + (c.encoded ? c.encoded.length : (c.attrs?.length ?? 0) * 40);
        if (size >= BATCH_BYTES) await flush();
      }
      await flush();
      return out;
    });
    this.#busy = run.catch(() => undefined);
    return run;
  }

  /**
   * Sends `msgs` in one datagram and collects their outcomes. With `ackAll` false only
   * the last message asks for an ACK: the kernel answers the others only when they fail,
   * and handles them in order, so the last ACK means every earlier one is done.
   */
  async #run(
    msgs: readonly Outgoing[],
    dump: boolean,
    ackAll = true,
  ): Promise<(Reply[] | Error)[]> {
    const whatOf = (i: number) => {
      const w = msgs[i].what;
      return typeof w === "function" ? w() : w;
    };
    if (this.#closed) throw new Error(`${whatOf(0)}: the netlink socket is closed`);
    const first = (this.#seq + 1) >>> 0;
    const sizes = msgs.map((m) => m.encoded ? 16 + GENL_HDRLEN + m.encoded.length : 0);
    const parts = msgs.map((m, i) => {
      if (m.encoded) return undefined;
      const ack = ackAll || i === msgs.length - 1 ? NLM_F_ACK : 0;
      const bytes = encodeMessage(
        {
          type: m.type,
          flags: (m.flags ?? 0) | NLM_F_REQUEST | ack,
          header: m.header,
          attrs: m.attrs ?? [],
        },
        (first + i) >>> 0,
        0,
      );
      sizes[i] = bytes.length;
      return bytes;
    });
    this.#seq = (first + msgs.length - 1) >>> 0;
    const total = sizes.reduce((n, x) => n + x, 0);
    const buf = new Uint8Array(total);
    const view = new DataView(buf.buffer);
    let offset = 0;
    msgs.forEach((m, i) => {
      const p = parts[i];
      if (p) {
        buf.set(p, offset);
      } else {
        const ack = ackAll || i === msgs.length - 1 ? NLM_F_ACK : 0;
        view.setUint32(offset, sizes[i], true);
        view.setUint16(offset + 4, m.type, true);
        view.setUint16(offset + 6, (m.flags ?? 0) | NLM_F_REQUEST | ack, true);
        view.setUint32(offset + 8, (first + i) >>> 0, true);
        view.setUint32(offset + 12, 0, true);
        buf.set(m.header, offset + 16);
        buf.set(m.encoded!, offset + 16 + GENL_HDRLEN);
      }
      offset += sizes[i];
    });
    sendto(this.#fd, buf);
    const results: (Reply[] | Error | undefined)[] = msgs.map(() => undefined);
    const data: Reply[][] = msgs.map(() => []);
    const last = msgs.length - 1;
    let pending = ackAll ? msgs.length : 1;
    while (pending > 0) {
      const got = recvfromNow(this.#fd, RECV_SIZE) ?? await recvfrom(this.#fd, RECV_SIZE);
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

  /** Closes the socket. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    close(this.#fd);
  }
}
