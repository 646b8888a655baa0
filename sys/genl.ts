/**
 * Generic netlink: the 4-byte genlmsghdr, the controller's `CTRL_CMD_GETFAMILY`
 * lookup (family ids are dynamic), and a socket bound to one resolved family.
 * IPVS (sys/ipvs.ts) is built on this.
 * @module
 */
import {
  type Attr,
  attr,
  attrMap,
  type Message,
  NETLINK_GENERIC,
  NetlinkError,
  NetlinkSocket,
  NLM_F_DUMP,
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

/**
 * Every read uses this size: the kernel sizes dump chunks to the largest read it has
 * seen on the socket, so one size everywhere means no chunk is ever truncated.
 */
const RECV_SIZE = 16384;

/**
 * A generic netlink socket talking to one family, resolved by name when opened: a
 * {@link NetlinkSocket} that adds the family id and the genlmsghdr to every command.
 * {@link GenlSocket.batch} sends many commands per system call.
 */
export class GenlSocket {
  #family: GenlFamily = { id: GENL_ID_CTRL, name: "nlctrl", version: 2, maxAttr: 0 };
  readonly #sock: NetlinkSocket;
  readonly #onRequest?: (cmd: number) => void;

  private constructor(options: GenlOpenOptions) {
    this.#onRequest = options.onRequest;
    this.#sock = new NetlinkSocket(NETLINK_GENERIC, { receiveSize: RECV_SIZE });
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
      const what = `look up generic netlink family "${name}"`;
      const replies = await sock.#sock.request(getFamilyRequest(name), what, { dump: false });
      if (!replies.length) throw new NetlinkError(2, what);
      sock.#family = decodeFamily(replies[0]);
      return sock;
    } catch (error) {
      sock.close();
      throw error;
    }
  }

  /** Sends one command with attributes; returns the replies (many when `dump`). */
  async request(
    cmd: number,
    attrs: readonly Attr[],
    options: { dump?: boolean; flags?: number; what?: string } = {},
  ): Promise<GenlReply[]> {
    this.#onRequest?.(cmd);
    const replies = await this.#sock.request(
      {
        type: this.#family.id,
        flags: (options.flags ?? 0) | (options.dump ? NLM_F_DUMP : 0),
        header: genlHeader(cmd, this.#family.version || 1),
        attrs,
      },
      options.what ?? `${this.#family.name} command ${cmd}`,
      { dump: options.dump ?? false },
    );
    return replies.map(decodeGenl);
  }

  /**
   * Sends commands in order, many per system call, and returns for each one
   * `undefined` (done) or the kernel's error. A failed command does not stop the
   * ones after it: the caller decides what to undo.
   */
  batch(commands: readonly GenlCommand[]): Promise<(Error | undefined)[]> {
    for (const c of commands) this.#onRequest?.(c.cmd);
    const version = this.#family.version || 1;
    return this.#sock.batch(commands.map((c) => ({
      type: this.#family.id,
      flags: 0,
      header: genlHeader(c.cmd, version),
      attrs: c.attrs,
      encoded: c.encoded,
      what: c.what,
    })));
  }

  /** Closes the socket. */
  close(): void {
    this.#sock.close();
  }
}
