/**
 * The one place Fulcrum opens libc. Everything above sys/ calls the typed functions
 * here (or the protocol modules built on them) and never sees a pointer.
 *
 * Blocking calls (`recvfrom`, `recv`, `poll`) are declared `nonblocking: true`: Deno runs
 * them on a worker thread, so they do not stall the event loop. errno is thread-local,
 * so those calls report only their return value; sockets they read should carry a
 * receive timeout (`SO_RCVTIMEO`) so a reader loop can notice it was closed.
 * @module
 */

const SYMBOLS = {
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  sendto: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"],
    result: "isize",
  },
  send: { parameters: ["i32", "buffer", "usize", "i32"], result: "isize" },
  recvfrom: {
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"],
    result: "isize",
    nonblocking: true,
  },
  recvfromNow: {
    name: "recvfrom",
    parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"],
    result: "isize",
  },
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  __errno_location: { parameters: [], result: "pointer" },
  strerror: { parameters: ["i32"], result: "pointer" },
  getpid: { parameters: [], result: "i32" },
  setpriority: { parameters: ["i32", "u32", "i32"], result: "i32" },
  pollNow: { name: "poll", parameters: ["buffer", "u64", "i32"], result: "i32" },
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  splice: {
    parameters: ["i32", "pointer", "i32", "pointer", "usize", "u32"],
    result: "isize",
  },
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  pollWait: {
    name: "poll",
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
  listen: { parameters: ["i32", "i32"], result: "i32" },
  accept4: { parameters: ["i32", "buffer", "buffer", "i32"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epollWait: {
    name: "epoll_wait",
    parameters: ["i32", "buffer", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  epollWaitNow: { name: "epoll_wait", parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  mallocTrim: { name: "malloc_trim", parameters: ["usize"], result: "i32", nonblocking: true },
  open: { parameters: ["buffer", "i32"], result: "i32" },
  madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

type Libc = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

let lib: Libc | undefined;

/** The libc symbols, opened on first use. Throws a clear error without `--allow-ffi`. */
function libc(): Libc {
  if (!lib) {
    try {
      lib = Deno.dlopen("libc.so.6", SYMBOLS).symbols;
    } catch (error) {
      throw new Error(
        `cannot open libc for raw sockets and netlink (${
          (error as Error).message
        }); run with --allow-ffi on Linux`,
      );
    }
  }
  return lib;
}

/** True when FFI can be used in this process (permission granted, Linux libc present). */
export function ffiAvailable(): boolean {
  try {
    libc();
    return true;
  } catch {
    return false;
  }
}

/** errno names for the values kernel-facing code meets. */
const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  4: "EINTR",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  22: "EINVAL",
  24: "EMFILE",
  93: "EPROTONOSUPPORT",
  95: "EOPNOTSUPP",
  97: "EAFNOSUPPORT",
  98: "EADDRINUSE",
  99: "EADDRNOTAVAIL",
  101: "ENETUNREACH",
  105: "ENOBUFS",
  110: "ETIMEDOUT",
  111: "ECONNREFUSED",
};

/** A failed system call, with errno and its name. */
export class SysError extends Error {
  readonly errno: number;
  readonly code: string;
  constructor(call: string, errno: number, hint = "") {
    const code = ERRNO_NAMES[errno] ?? `errno ${errno}`;
    super(`${call} failed: ${code} (${strerror(errno)})${hint ? `; ${hint}` : ""}`);
    this.name = "SysError";
    this.errno = errno;
    this.code = code;
  }
}

/** The current thread's errno (valid right after a synchronous call). */
export function errno(): number {
  const ptr = libc().__errno_location();
  return ptr ? new Deno.UnsafePointerView(ptr).getInt32() : 0;
}

/** The C library's text for an errno value. */
export function strerror(code: number): string {
  const ptr = libc().strerror(code);
  return ptr ? Deno.UnsafePointerView.getCString(ptr) : `errno ${code}`;
}

function check(call: string, result: number | bigint, hint?: string): number {
  const n = Number(result);
  if (n < 0) throw new SysError(call, errno(), hint);
  return n;
}

/** Address families and socket types used across sys/. */
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const AF_PACKET = 17;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_RCVBUF = 8;
export const SO_SNDBUF = 7;
export const SO_RCVTIMEO = 20;
export const SO_BINDTODEVICE = 25;
export const MSG_DONTWAIT = 0x40;

/** Opens a socket; throws {@link SysError} with a hint when privileges are missing. */
export function socket(domain: number, type: number, protocol: number): number {
  return check(
    `socket(${domain}, ${type}, ${protocol})`,
    libc().socket(domain, type | SOCK_CLOEXEC, protocol),
    "raw and netlink sockets need root or CAP_NET_RAW/CAP_NET_ADMIN",
  );
}

/** Binds `fd` to a raw sockaddr. */
export function bind(fd: number, sockaddr: Uint8Array<ArrayBuffer>): void {
  check("bind", libc().bind(fd, sockaddr, sockaddr.byteLength));
}

/** Connects `fd` to a raw sockaddr. */
export function connect(fd: number, sockaddr: Uint8Array<ArrayBuffer>): void {
  check("connect", libc().connect(fd, sockaddr, sockaddr.byteLength));
}

/** Closes a file descriptor, ignoring errors (it is gone either way). */
export function close(fd: number): void {
  libc().close(fd);
}

/** Sets a socket option from raw bytes. */
export function setsockopt(
  fd: number,
  level: number,
  option: number,
  value: Uint8Array<ArrayBuffer>,
): void {
  check(
    `setsockopt(${level}, ${option})`,
    libc().setsockopt(fd, level, option, value, value.byteLength),
  );
}

/** Sets an `int` socket option. */
export function setsockoptInt(fd: number, level: number, option: number, value: number): void {
  const buf = new Uint8Array(4);
  new DataView(buf.buffer).setInt32(0, value, true);
  setsockopt(fd, level, option, buf);
}

/** Sets `SO_RCVTIMEO` so blocking reads return after `ms` with nothing. */
export function setReceiveTimeout(fd: number, ms: number): void {
  const tv = new Uint8Array(16);
  const view = new DataView(tv.buffer);
  view.setBigInt64(0, BigInt(Math.floor(ms / 1000)), true);
  view.setBigInt64(8, BigInt((ms % 1000) * 1000), true);
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv);
}

/** The local sockaddr a socket is bound to. */
export function getsockname(fd: number): Uint8Array {
  const buf = new Uint8Array(128);
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, 128, true);
  check("getsockname", libc().getsockname(fd, buf, len));
  return buf.subarray(0, new DataView(len.buffer).getUint32(0, true));
}

/** Sends `data` to `sockaddr` (or to the connected peer when `sockaddr` is empty). */
export function sendto(
  fd: number,
  data: Uint8Array<ArrayBuffer>,
  sockaddr?: Uint8Array<ArrayBuffer>,
): number {
  const addr = sockaddr ?? new Uint8Array(0);
  return check(
    "sendto",
    libc().sendto(fd, data, BigInt(data.byteLength), 0, addr, addr.byteLength),
  );
}

/** One datagram read: its bytes and the sender's raw sockaddr. */
export interface Datagram {
  readonly data: Uint8Array;
  readonly from: Uint8Array;
}

/**
 * Reads one datagram without blocking the event loop. Returns `undefined` when the
 * receive timeout passed or the socket is closed or failed (errno is not visible here).
 */
export async function recvfrom(fd: number, size = 65536): Promise<Datagram | undefined> {
  const buf = new Uint8Array(size);
  const from = new Uint8Array(128);
  const fromLen = new Uint8Array(4);
  new DataView(fromLen.buffer).setUint32(0, 128, true);
  const n = Number(await libc().recvfrom(fd, buf, BigInt(size), 0, from, fromLen));
  if (n < 0) return undefined;
  const len = new DataView(fromLen.buffer).getUint32(0, true);
  return { data: buf.subarray(0, n), from: from.subarray(0, Math.min(len, 128)) };
}

/**
 * Reads one datagram synchronously with `MSG_DONTWAIT`: returns `undefined` at once
 * when none is queued. Used to drain a socket before deciding a peer is silent.
 */
export function recvfromNow(fd: number, size = 65536): Datagram | undefined {
  const buf = new Uint8Array(size);
  const from = new Uint8Array(128);
  const fromLen = new Uint8Array(4);
  new DataView(fromLen.buffer).setUint32(0, 128, true);
  const n = Number(libc().recvfromNow(fd, buf, BigInt(size), MSG_DONTWAIT, from, fromLen));
  if (n < 0) return undefined;
  const len = new DataView(fromLen.buffer).getUint32(0, true);
  return { data: buf.subarray(0, n), from: from.subarray(0, Math.min(len, 128)) };
}

/** The index of a network interface, or throws naming the interface. */
export function ifNameToIndex(name: string): number {
  const index = libc().if_nametoindex(new TextEncoder().encode(name + "\0"));
  if (index === 0) {
    throw new Error(`interface "${name}" does not exist; check the name with "ip link"`);
  }
  return index;
}

/** This process's id (netlink port ids start from it). */
export function getpid(): number {
  return libc().getpid();
}

// ---------------------------------------------------------------- nonblocking TCP connects
// (health checks: thousands of connects per second without a Deno resource per socket)

/** `socket()` type flag: nonblocking from the start. */
export const SOCK_NONBLOCK = 0o4000;
/** errno of a nonblocking connect still under way. */
export const EINPROGRESS = 115;
/** `poll()` event bits. */
export const POLLOUT = 4;
export const POLLERR = 8;
export const POLLHUP = 16;
/** `SOL_SOCKET` options for connect results and abortive close. */
export const SO_ERROR = 4;
export const SO_LINGER = 13;

let errnoView: Deno.UnsafePointerView | undefined;

/** errno read through a cached pointer (the main thread's errno does not move). */
function lastErrno(): number {
  if (!errnoView) {
    const ptr = libc().__errno_location();
    if (!ptr) return 0;
    errnoView = new Deno.UnsafePointerView(ptr);
  }
  return errnoView.getInt32();
}

/**
 * Starts a connect on a nonblocking socket without throwing: returns 0 when it
 * completed at once, otherwise errno (`EINPROGRESS` while under way).
 */
export function connectNow(fd: number, sockaddr: Uint8Array<ArrayBuffer>): number {
  return libc().connect(fd, sockaddr, sockaddr.byteLength) === 0 ? 0 : lastErrno();
}

/**
 * Polls an array of `struct pollfd` (8 bytes each: fd i32, events i16, revents i16)
 * without waiting; returns how many have events, revents filled in.
 */
export function pollNow(pollfds: Uint8Array<ArrayBuffer>): number {
  const n = libc().pollNow(pollfds, BigInt(pollfds.byteLength >> 3), 0);
  return n < 0 ? 0 : n;
}

const intBuf = new Uint8Array(4);
const intLen = new Uint8Array(4);
const intView = new DataView(intBuf.buffer);
const lenView = new DataView(intLen.buffer);

/** The pending error of a socket (`SO_ERROR`): 0 when its connect succeeded. */
export function socketError(fd: number): number {
  lenView.setUint32(0, 4, true);
  intView.setInt32(0, 0, true);
  if (libc().getsockopt(fd, SOL_SOCKET, SO_ERROR, intBuf, intLen) < 0) return lastErrno();
  return intView.getInt32(0, true);
}

const LINGER_ZERO = new Uint8Array([1, 0, 0, 0, 0, 0, 0, 0]);

const IPPROTO_TCP = 6;
const TCP_DEFER_ACCEPT = 9;
const INT_ONE = new Uint8Array([1, 0, 0, 0]);

/**
 * Makes a connecting socket hold back the handshake's last ACK (`TCP_DEFER_ACCEPT` on
 * the client side; Linux then acks with the first data, or after 200 ms). A check that
 * ends the connect with an RST at once never completes it on the server: no accept and
 * no wake-up there, as with HAProxy's checks (which use `TCP_QUICKACK` 0, reset by every
 * disconnect; this survives `connect(AF_UNSPEC)`, so one call per socket does).
 * Returns errno, 0 when set.
 */
export function delayAckNow(fd: number): number {
  return libc().setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, INT_ONE, 4) === 0 ? 0 : lastErrno();
}

/** Closes a socket with an RST (`SO_LINGER` 0): no TIME_WAIT left behind. */
export function closeAbortive(fd: number): void {
  libc().setsockopt(fd, SOL_SOCKET, SO_LINGER, LINGER_ZERO, LINGER_ZERO.byteLength);
  libc().close(fd);
}

/**
 * Sets the nice value of the calling thread (Linux applies `setpriority(PRIO_PROCESS,
 * 0, n)` to the calling thread only): lower is more urgent. Throws {@link SysError}
 * (EACCES/EPERM) without CAP_SYS_NICE for values below the current one.
 */
export function setThreadNice(nice: number): void {
  check(
    `setpriority(${nice})`,
    libc().setpriority(0, 0, nice),
    "raising priority needs root or CAP_SYS_NICE",
  );
}

// ---------------------------------------------------------------- splice(2) between sockets
// (the userspace TCP proxy's bulk path: bytes move socket → pipe → socket in the kernel)

/** `splice()` flags. */
export const SPLICE_F_MOVE = 1;
export const SPLICE_F_NONBLOCK = 2;
/** `pipe2()` flags. */
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
/** `fcntl()` command that sets a pipe's capacity in bytes. */
export const F_SETPIPE_SZ = 1031;
/** `shutdown()` direction: no more sends. */
export const SHUT_WR = 1;
/** `poll()` input event bit. */
export const POLLIN = 1;

const pipeFds = new Uint8Array(8);
const pipeView = new DataView(pipeFds.buffer);

/** Opens a pipe with `flags`: `[readEnd, writeEnd]`, or `-errno` as the first element. */
export function pipeNow(flags: number): [number, number] {
  if (libc().pipe2(pipeFds, flags) < 0) return [-lastErrno(), -1];
  return [pipeView.getInt32(0, true), pipeView.getInt32(4, true)];
}

/**
 * Moves up to `len` bytes from `fdIn` to `fdOut` (one of them a pipe) without copying
 * them to user space. Returns the bytes moved, 0 at end of input, or `-errno`.
 */
export function spliceNow(fdIn: number, fdOut: number, len: number, flags: number): number {
  const n = Number(libc().splice(fdIn, null, fdOut, null, BigInt(len), flags));
  return n < 0 ? -lastErrno() : n;
}

/** `fcntl(fd, cmd, arg)`: its result, or `-errno`. */
export function fcntlNow(fd: number, cmd: number, arg: number): number {
  const n = libc().fcntl(fd, cmd, arg);
  return n < 0 ? -lastErrno() : n;
}

/** Shuts down one or both directions of a socket: 0, or `-errno`. */
export function shutdownNow(fd: number, how: number): number {
  return libc().shutdown(fd, how) < 0 ? -lastErrno() : 0;
}

/** Writes bytes to a descriptor without waiting: the count written, or `-errno`. */
export function writeNow(fd: number, data: Uint8Array<ArrayBuffer>): number {
  const n = Number(libc().write(fd, data, BigInt(data.byteLength)));
  return n < 0 ? -lastErrno() : n;
}

/** Reads into `buf` from a descriptor without waiting: the count read, or `-errno`. */
export function readNow(fd: number, buf: Uint8Array<ArrayBuffer>): number {
  const n = Number(libc().read(fd, buf, BigInt(buf.byteLength)));
  return n < 0 ? -lastErrno() : n;
}

/**
 * Waits on a worker thread until one of the `struct pollfd`s in `pollfds` has an
 * event or `timeoutMs` passes; revents are filled in. Resolves to the count with
 * events (negative on failure). The buffer must stay untouched until it resolves.
 */
export function pollWait(pollfds: Uint8Array<ArrayBuffer>, timeoutMs: number): Promise<number> {
  return libc().pollWait(pollfds, BigInt(pollfds.byteLength >> 3), timeoutMs);
}

/** Sets `SO_LINGER` 0 so the next close of the last descriptor sends an RST. */
export function lingerZeroNow(fd: number): void {
  libc().setsockopt(fd, SOL_SOCKET, SO_LINGER, LINGER_ZERO, LINGER_ZERO.byteLength);
}

// ---------------------------------------------------------------- epoll and nonblocking TCP
// (sys/tcp.ts: the L7 proxy's sockets, read and written synchronously when ready)

/** `listen(fd, backlog)`: 0, or `-errno`. */
export function listenNow(fd: number, backlog: number): number {
  return libc().listen(fd, backlog) < 0 ? -lastErrno() : 0;
}

/**
 * Accepts a connection as a nonblocking, close-on-exec socket: its descriptor (the
 * peer's sockaddr in `addr`, `addrLen` its 4-byte length in and out), or `-errno`.
 */
export function acceptNow(
  fd: number,
  addr: Uint8Array<ArrayBuffer>,
  addrLen: Uint8Array<ArrayBuffer>,
): number {
  const c = libc().accept4(fd, addr, addrLen, SOCK_NONBLOCK | SOCK_CLOEXEC);
  return c < 0 ? -lastErrno() : c;
}

/** Opens a close-on-exec epoll set; throws {@link SysError}. */
export function epollCreate(): number {
  return check("epoll_create1", libc().epoll_create1(SOCK_CLOEXEC));
}

/** `epoll_ctl` operation that adds a descriptor. */
export const EPOLL_CTL_ADD = 1;

const epollEvent = new Uint8Array(12);
const epollEventView = new DataView(epollEvent.buffer);

/** `epoll_ctl(ep, op, fd)` with the event's data the fd itself: 0 or `-errno`. */
export function epollCtlNow(ep: number, op: number, fd: number, events: number): number {
  epollEventView.setUint32(0, events >>> 0, true);
  epollEventView.setUint32(4, fd, true);
  epollEventView.setUint32(8, 0, true);
  return libc().epoll_ctl(ep, op, fd, epollEvent) < 0 ? -lastErrno() : 0;
}

/**
 * Waits on a worker thread for events of an epoll set, filling `events` (12-byte
 * `struct epoll_event`s: events u32, data u64); resolves to their count (negative on
 * failure). The buffer must stay untouched until it resolves.
 */
export function epollWait(
  ep: number,
  events: Uint8Array<ArrayBuffer>,
  timeoutMs: number,
): Promise<number> {
  return libc().epollWait(ep, events, Math.floor(events.byteLength / 12), timeoutMs);
}

/**
 * Takes the events of an epoll set that are ready now: their count. With
 * `options.timeoutMs` it waits that long for one on this thread (which does nothing
 * else meanwhile).
 */
export function epollWaitNow(
  ep: number,
  events: Uint8Array<ArrayBuffer>,
  options: { timeoutMs?: number } = {},
): number {
  const max = Math.floor(events.byteLength / 12);
  const n = libc().epollWaitNow(ep, events, max, options.timeoutMs ?? 0);
  return n < 0 ? 0 : n;
}

/** `send()` flag: no SIGPIPE when the peer is gone (EPIPE instead). */
export const MSG_NOSIGNAL = 0x4000;

/** Sends bytes on a socket without waiting or SIGPIPE: the count sent, or `-errno`. */
export function sendNow(fd: number, data: Uint8Array<ArrayBuffer>): number {
  const n = Number(libc().send(fd, data, BigInt(data.byteLength), MSG_DONTWAIT | MSG_NOSIGNAL));
  return n < 0 ? -lastErrno() : n;
}

/** Opens a close-on-exec socket (`type` may carry `SOCK_NONBLOCK`): its fd, or `-errno`. */
export function socketNow(domain: number, type: number): number {
  const fd = libc().socket(domain, type | SOCK_CLOEXEC, 0);
  return fd < 0 ? -lastErrno() : fd;
}

const optBuf = new Uint8Array(4);
const optView = new DataView(optBuf.buffer);

/** Sets an `int` socket option without throwing: 0, or `-errno`. */
export function setIntOptionNow(fd: number, level: number, option: number, value: number): number {
  optView.setInt32(0, value, true);
  return libc().setsockopt(fd, level, option, optBuf, 4) < 0 ? -lastErrno() : 0;
}

/** Binds `fd` to a raw sockaddr without throwing: 0, or `-errno`. */
export function bindNow(fd: number, sockaddr: Uint8Array<ArrayBuffer>): number {
  return libc().bind(fd, sockaddr, sockaddr.byteLength) < 0 ? -lastErrno() : 0;
}

// ---------------------------------------------------------------- the C heap (sys/memory.ts)

/**
 * `malloc_trim(0)` on a worker thread: glibc hands the free pages of every arena back to
 * the kernel. Resolves to true when some memory was released.
 */
export async function mallocTrim(): Promise<boolean> {
  return (await libc().mallocTrim(0n)) === 1;
}

/** `madvise` advice: drop the pages; a later access faults them in again. */
export const MADV_DONTNEED = 4;

/** `madvise(address, length, advice)` without throwing: 0, or `-errno`. */
export function madviseNow(address: bigint, length: number, advice: number): number {
  const at = Deno.UnsafePointer.create(address);
  return libc().madvise(at, BigInt(length), advice) < 0 ? -lastErrno() : 0;
}

/**
 * Reads a whole file through libc: for the process's own /proc files, which Deno's
 * permissions keep from `Deno.readFile` unless every permission is granted.
 */
export function readFileNow(path: string): Uint8Array {
  const fd = libc().open(new TextEncoder().encode(`${path}\0`), O_CLOEXEC);
  if (fd < 0) throw new Error(`cannot open ${path}: ${strerror(lastErrno())}`);
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (true) {
      const chunk = new Uint8Array(65536);
      const n = Number(libc().read(fd, chunk, BigInt(chunk.byteLength)));
      if (n < 0) throw new Error(`cannot read ${path}: ${strerror(lastErrno())}`);
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
    }
  } finally {
    libc().close(fd);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}
