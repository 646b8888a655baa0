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
  read,
  type Reply,
} from "./netlink.ts";

/** The controller family's fixed id. */
export const GENL_ID_CTRL = 0x10;
/** Controller commands and attributes (linux/genetlink.h). */
export const CTRL_CMD_GETFAMILY = 3;
export const CTRL_ATTR_FAMILY_ID = 1;
export const CTRL_ATTR_FAMILY_NAME = 2;
export const CTRL_ATTR_VERSION = 3;
export const CTRL_ATTR_HDRSIZE = 4;
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

/** A generic netlink socket talking to one family, resolved by name when opened. */
export class GenlSocket {
  readonly family: GenlFamily;
  readonly #sock: NetlinkSocket;
  readonly #onRequest?: (cmd: number) => void;

  private constructor(sock: NetlinkSocket, family: GenlFamily, options: GenlOpenOptions) {
    this.#sock = sock;
    this.family = family;
    this.#onRequest = options.onRequest;
  }

  /**
   * Opens a socket and looks `name` up. Throws a {@link NetlinkError} with errno
   * ENOENT (2) when the kernel has no such family (module not loaded).
   */
  static async open(name: string, options: GenlOpenOptions = {}): Promise<GenlSocket> {
    const sock = new NetlinkSocket(NETLINK_GENERIC);
    try {
      const replies = await sock.request(
        getFamilyRequest(name),
        `look up generic netlink family "${name}"`,
      );
      if (!replies.length) throw new NetlinkError(2, `look up generic netlink family "${name}"`);
      return new GenlSocket(sock, decodeFamily(replies[0]), options);
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
    const replies = await this.#sock.request({
      type: this.family.id,
      flags: (options.flags ?? 0) | (options.dump ? 0x300 : 0),
      header: genlHeader(cmd, this.family.version || 1),
      attrs,
    }, options.what ?? `${this.family.name} command ${cmd}`);
    return replies.map(decodeGenl);
  }

  /** Closes the socket. */
  close(): void {
    this.#sock.close();
  }
}
