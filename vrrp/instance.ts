/**
 * The shell around one VRRP instance: the raw socket, the timers, the VIPs, the
 * gratuitous ARPs, tracking and notify. Every decision is the pure machine's; this
 * file performs its actions and feeds it events.
 *
 * Late-timer defense: each timer measures how late it fired. Before the master is
 * declared down, the event loop is given a turn (so an advert already read by the
 * reader thread is handled) and the socket is drained without waiting.
 * @module
 */
import type { Cidr } from "../config/address.ts";
import type { InstanceConfig } from "../config/schema.ts";
import type { ServerStates } from "../health/state.ts";
import type { Logger } from "../log.ts";
import { ifNameToIndex } from "../sys/libc.ts";
import { ETH_P_ARP, ETH_P_IPV6, PacketSocket } from "../sys/packet.ts";
import { RawIpSocket } from "../sys/raw_ip.ts";
import type { Rtnl } from "../sys/rtnl.ts";
import { garpFrame, unsolicitedNaFrame, virtualMac } from "./garp.ts";
import {
  type Action,
  initial,
  type MachineEvent,
  type MachineState,
  nextDeadline,
  step,
} from "./machine.ts";
import { NotifyQueue } from "./notify.ts";
import {
  decodeAdvert,
  encodeAdvert,
  type Expectation,
  parseIpv4,
  REJECT_REASONS,
  type RejectReason,
  VRRP_GROUP4,
  VRRP_GROUP6,
  VRRP_PROTO,
} from "./packet.ts";
import type { Role, RoleBoard } from "./role.ts";
import { poolUp, type Tracked, trackVerdict } from "./track.ts";

/** What an instance needs from its subsystem. */
export interface InstanceDeps {
  readonly states: ServerStates;
  readonly roles: RoleBoard;
  readonly log: Logger;
  readonly rtnl: Rtnl;
  /** VRIDs of the other local instances on the same interface (not counted as errors). */
  readonly siblings?: () => ReadonlySet<number>;
  /** Called after each role change, with whether a sync group caused it. */
  readonly onRole?: (instance: Instance, role: Role, fromSync: boolean) => void;
}

/** One transition as shown by the admin API. */
export interface Transition {
  readonly from: Role;
  readonly to: Role;
  readonly reason: string;
  readonly at: string;
}

/** The JSON status of one instance. */
export interface InstanceStatus {
  readonly name: string;
  readonly interface: string;
  readonly vrid: number;
  readonly version: 2 | 3;
  readonly state: Role;
  readonly priority: number;
  readonly configuredPriority: number;
  readonly master: string | null;
  readonly masterPriority: number | null;
  readonly primary: string;
  readonly vips: readonly string[];
  readonly held: boolean;
  readonly faults: readonly string[];
  readonly lastTransition: Transition | null;
  readonly transitions: number;
  readonly advertsIn: number;
  readonly advertsOut: number;
  readonly intervalMismatches: number;
  readonly errors: Readonly<Record<RejectReason, number>>;
  readonly timerLatenessMs: {
    readonly last: number;
    readonly max: number;
    readonly over10ms: number;
  };
  readonly notifyPending: number;
}

type Timer = ReturnType<typeof setTimeout>;

const GARP_REPEAT_DELAY_MS = 5000;
const LINK_POLL_MS = 250;

/** Lateness buckets (seconds) for the metrics histogram. */
export const LATENESS_BOUNDS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1] as const;

/** A running VRRP instance. */
export class Instance {
  #config: InstanceConfig;
  readonly #deps: InstanceDeps;
  readonly #log: Logger;
  readonly #notify: NotifyQueue;
  readonly #family: 4 | 6;
  #state!: MachineState;
  #sock?: RawIpSocket;
  #arp?: PacketSocket;
  #mac?: Uint8Array;
  #ifindex = 0;
  /** With use_vmac: the macvlan carrying the virtual MAC and the VIPs. */
  #vmacIndex?: number;
  /** Parent sysctls changed for use_vmac, restored on stop. */
  #sysctlRestore: [string, string][] = [];
  #primary = "";
  #timer?: Timer;
  #timerDue?: number;
  #garpTimers = new Set<Timer>();
  #refreshTimer?: Timer;
  #linkTimer?: Timer;
  #io: Promise<void> = Promise.resolve();
  #running = false;
  #reader?: Promise<void>;
  #unsubscribe?: () => void;
  #tracked = new Map<string, Tracked>();
  #syncing = false;
  // counters
  #advertsIn = 0;
  #advertsOut = 0;
  #mismatches = 0;
  #lastGarpAt = -Infinity;
  #mismatchLogged = new Set<string>();
  #errors = Object.fromEntries(REJECT_REASONS.map((r) => [r, 0])) as Record<RejectReason, number>;
  #lateLast = 0;
  #lateMax = 0;
  #lateOver10 = 0;
  #lateBuckets = new Array<number>(LATENESS_BOUNDS.length).fill(0);
  #lateSum = 0;
  #lateCount = 0;
  #transitions = 0;
  #last: Transition | null = null;
  #sendErrors = 0;

  constructor(config: InstanceConfig, deps: InstanceDeps) {
    this.#config = config;
    this.#deps = deps;
    this.#log = deps.log;
    this.#notify = new NotifyQueue(deps.log);
    this.#family = config.virtual_ipaddress[0].family;
  }

  /** The configuration in force (replaced by {@link reconfigure}). */
  get config(): InstanceConfig {
    return this.#config;
  }

  /** The instance's name. */
  get name(): string {
    return this.config.name;
  }

  /** The machine's state now. */
  get state(): MachineState {
    return this.#state;
  }

  /** Opens sockets, resolves addresses and starts the machine; cleans up on failure. */
  async start(): Promise<void> {
    try {
      await this.#start();
    } catch (error) {
      this.#running = false;
      clearInterval(this.#linkTimer);
      this.#unsubscribe?.();
      await this.#sock?.close();
      await this.#arp?.close();
      if (this.#vmacIndex !== undefined) {
        await this.#deps.rtnl.deleteLink(this.#vmacIndex).catch(() => false);
      }
      for (const [path, value] of this.#sysctlRestore) {
        await Deno.writeTextFile(path, value).catch(() => {});
      }
      throw error;
    }
  }

  async #start(): Promise<void> {
    const c = this.config;
    this.#ifindex = ifNameToIndex(c.interface);
    this.#primary = c.unicast_src_ip ?? await this.#findPrimary();
    const link = await this.#deps.rtnl.link(this.#ifindex);
    this.#mac = link?.mac;
    if (c.use_vmac) await this.#setupVmac();
    this.#sock = RawIpSocket.open(VRRP_PROTO, {
      family: this.#family,
      ifname: c.interface,
      source: this.#primary,
    });
    if (!c.unicast_peers.length) this.#sock.join(this.#family === 4 ? VRRP_GROUP4 : VRRP_GROUP6);
    try {
      this.#arp = new PacketSocket(c.use_vmac ? `vrrp.${c.vrid}` : c.interface, {
        protocol: this.#family === 4 ? ETH_P_ARP : ETH_P_IPV6,
      });
    } catch (error) {
      this.#log.warn("cannot open a packet socket; gratuitous ARP disabled", {
        instance: c.name,
        error: (error as Error).message,
      });
    }
    this.#state = initial({
      version: c.version,
      priority: c.address_owner ? 255 : c.priority,
      intervalMs: c.advert_interval,
      preempt: c.preempt,
      preemptDelayMs: c.preempt_delay,
      primary: this.#primary,
    }, now());
    // addresses left behind by a crashed run would answer ARP beside the real master
    await this.#removeVips();
    this.#running = true;
    await this.#initTracking(link?.up ?? false);
    this.#reader = this.#readLoop();
    this.#deps.roles.set(c.name, "init", "starting");
    this.#feed({ kind: "startup" });
    this.#linkTimer = setInterval(() => void this.#pollLinks(), LINK_POLL_MS);
    this.#log.info("vrrp instance started", {
      instance: c.name,
      interface: c.interface,
      vrid: c.vrid,
      version: c.version,
      priority: this.#state.priority,
      primary: this.#primary,
      peers: c.unicast_peers.join(",") || undefined,
    });
  }

  /** Graceful stop: priority-0 advert when master, VIPs removed, sockets closed. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#feed({ kind: "shutdown" });
    this.#running = false;
    clearTimeout(this.#timer);
    clearInterval(this.#linkTimer);
    clearInterval(this.#refreshTimer);
    for (const t of this.#garpTimers) clearTimeout(t);
    this.#garpTimers.clear();
    this.#unsubscribe?.();
    await this.#io;
    await this.#sock?.close();
    await this.#arp?.close();
    await this.#reader;
    let waited: Timer | undefined;
    await Promise.race([
      this.#notify.idle(),
      new Promise((resolve) => waited = setTimeout(resolve, 5000)),
    ]);
    clearTimeout(waited);
    if (this.#vmacIndex !== undefined) await this.#deps.rtnl.deleteLink(this.#vmacIndex);
    for (const [path, value] of this.#sysctlRestore) {
      await Deno.writeTextFile(path, value).catch(() => {});
    }
    this.#deps.roles.delete(this.config.name);
  }

  /** Operator: release mastership with a priority-0 advert and stay backup. */
  stepdown(): void {
    this.#feed({ kind: "stepdown" });
  }

  /** Operator: undo a step down. */
  rejoin(): void {
    this.#feed({ kind: "rejoin" });
  }

  /** Follow a sync group peer's role. */
  sync(role: "master" | "backup" | "fault", group: string): void {
    this.#syncing = true;
    try {
      this.#feed({ kind: "sync", role, group });
    } finally {
      this.#syncing = false;
    }
  }

  /** Runs the notify command of a sync group through this instance's queue. */
  notifyGroup(command: readonly string[], role: Role, group: string): void {
    void this.#notify.enqueue(command, [role.toUpperCase(), group, String(this.#state.priority)]);
  }

  /** Resolves when all actions so far (VIP changes, sends) are done. */
  settled(): Promise<void> {
    return this.#io;
  }

  // ------------------------------------------------------------- machine

  #feed(event: MachineEvent): void {
    if (!this.#state) return;
    const wasMaster = this.#state.role === "master";
    const r = step(this.#state, event, now());
    this.#state = r.state;
    for (const action of r.actions) {
      // a master re-announcing (a lower router claimed mastership) does so at most once a second
      if (action.kind === "garp" && wasMaster && now() - this.#lastGarpAt < 1000) continue;
      this.#perform(action);
    }
    this.#arm();
  }

  #arm(): void {
    const due = this.#running ? nextDeadline(this.#state) : undefined;
    if (due === this.#timerDue && this.#timer !== undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerDue = due;
    if (due === undefined) return;
    this.#timer = setTimeout(() => void this.#fire(due), Math.max(0, due - now()));
  }

  async #fire(due: number): Promise<void> {
    this.#timer = undefined;
    this.#timerDue = undefined;
    if (!this.#running) return;
    this.#recordLateness(now() - due);
    if (this.#state.role === "backup") {
      // before declaring the master dead: let a read that already completed be
      // handled, then drain what the kernel still holds
      await delay(0);
      this.#drain();
      if (!this.#running) return;
    }
    this.#feed({ kind: "timer" });
  }

  #recordLateness(ms: number): void {
    const late = Math.max(0, ms);
    this.#lateLast = late;
    this.#lateMax = Math.max(this.#lateMax, late);
    if (late > 10) {
      this.#lateOver10++;
      if (late > this.config.advert_interval / 2) {
        this.#log.warn("vrrp timer fired late; the process was not scheduled in time", {
          instance: this.config.name,
          late_ms: Math.round(late),
        });
      }
    }
    this.#lateSum += late / 1000;
    this.#lateCount++;
    for (let i = 0; i < LATENESS_BOUNDS.length; i++) {
      if (late / 1000 <= LATENESS_BOUNDS[i]) this.#lateBuckets[i]++;
    }
  }

  #perform(action: Action): void {
    switch (action.kind) {
      case "send":
        this.#send(action.priority);
        return;
      case "addVips":
        this.#queue(() => this.#addVips());
        return;
      case "removeVips":
        this.#stopGarp();
        this.#queue(() => this.#removeVips());
        return;
      case "garp":
        this.#lastGarpAt = now();
        this.#queue(() => Promise.resolve(this.#startGarp()));
        return;
      case "role":
        this.#onRole(action.role, action.previous, action.reason);
        return;
    }
  }

  #queue(task: () => Promise<void>): void {
    this.#io = this.#io.then(task).catch((error) => {
      this.#log.error("vrrp address change failed", {
        instance: this.config.name,
        error: (error as Error).message,
      });
    });
  }

  #onRole(role: Role, previous: Role, reason: string): void {
    this.#transitions++;
    this.#last = { from: previous, to: role, reason, at: new Date().toISOString() };
    this.#log.info("vrrp transition", {
      instance: this.config.name,
      from: previous,
      to: role,
      reason,
      priority: this.#state.priority,
    });
    this.#deps.roles.set(this.config.name, role, reason);
    if (this.config.notify && role !== "init") {
      void this.#notify.enqueue(this.config.notify, [
        role.toUpperCase(),
        this.config.name,
        String(this.#state.priority),
      ]);
    }
    this.#deps.onRole?.(this, role, this.#syncing);
  }

  // ------------------------------------------------------------- wire

  #expectation(): Expectation {
    return {
      version: this.config.version,
      vrid: this.config.vrid,
      intervalMs: this.config.advert_interval,
      addresses: this.config.virtual_ipaddress.map((v) => v.address),
      password: this.config.auth?.password,
      own: [this.#primary],
    };
  }

  #destinations(): string[] {
    if (this.config.unicast_peers.length) return [...this.config.unicast_peers];
    return [this.#family === 4 ? VRRP_GROUP4 : VRRP_GROUP6];
  }

  #send(priority: number): void {
    if (!this.#sock || this.#sock.closed) return;
    for (const dst of this.#destinations()) {
      const bytes = encodeAdvert({
        version: this.config.version,
        vrid: this.config.vrid,
        priority,
        intervalMs: this.config.advert_interval,
        addresses: this.config.virtual_ipaddress.map((v) => v.address),
        password: this.config.version === 2 ? this.config.auth?.password : undefined,
      }, { src: this.#primary, dst });
      try {
        this.#sock.send(bytes, dst);
        this.#advertsOut++;
      } catch (error) {
        this.#sendErrors++;
        if (this.#sendErrors < 5 || this.#sendErrors % 100 === 0) {
          this.#log.warn("vrrp advert not sent", {
            instance: this.config.name,
            to: dst,
            error: (error as Error).message,
          });
        }
      }
    }
  }

  async #readLoop(): Promise<void> {
    while (this.#running && this.#sock && !this.#sock.closed) {
      let pkt;
      try {
        pkt = await this.#sock.receive();
      } catch {
        pkt = undefined;
      }
      if (pkt && this.#running) this.#handle(pkt.from, pkt.data);
    }
  }

  #drain(): void {
    for (let i = 0; i < 1000 && this.#sock && !this.#sock.closed; i++) {
      const pkt = this.#sock.receiveNow();
      if (!pkt) break;
      this.#handle(pkt.from, pkt.data);
    }
  }

  /** Handles one received packet; exposed for the flood tests through `inject`. */
  #handle(from: string, data: Uint8Array): void {
    let ttl = 255;
    let src = from;
    let payload = data;
    let dsts: string[];
    if (this.#family === 4) {
      const ip = parseIpv4(data);
      if (!ip) {
        this.#errors.truncated++;
        return;
      }
      ttl = ip.ttl;
      src = ip.src;
      payload = ip.payload;
      dsts = [ip.dst];
    } else {
      dsts = [VRRP_GROUP6, this.#primary];
    }
    if (payload.length >= 2 && payload[1] !== this.config.vrid) {
      if (this.#deps.siblings?.().has(payload[1])) return;
    }
    let decoded = decodeAdvert(payload, { src, dst: dsts[0], ttl }, this.#expectation());
    for (let i = 1; i < dsts.length && !decoded.ok && decoded.reason === "checksum"; i++) {
      decoded = decodeAdvert(payload, { src, dst: dsts[i], ttl }, this.#expectation());
    }
    if (!decoded.ok) {
      if (decoded.reason === "own") return;
      this.#errors[decoded.reason]++;
      this.#log.debug("vrrp packet dropped", {
        instance: this.config.name,
        from: src,
        reason: decoded.reason,
        detail: decoded.detail,
      });
      return;
    }
    this.#advertsIn++;
    if (decoded.intervalMismatch) {
      this.#mismatches++;
      if (!this.#mismatchLogged.has(src)) {
        this.#mismatchLogged.add(src);
        this.#log.warn("vrrp peer advertises another interval; following the master's (v3)", {
          instance: this.config.name,
          from: src,
          theirs_ms: decoded.advert.intervalMs,
          ours_ms: this.config.advert_interval,
        });
      }
    }
    this.#feed({
      kind: "advert",
      from: src,
      priority: decoded.advert.priority,
      intervalMs: decoded.advert.intervalMs,
    });
  }

  /** Feeds raw received bytes as if read from the socket (tests of bad input). */
  inject(from: string, data: Uint8Array): void {
    this.#handle(from, data);
  }

  // ------------------------------------------------------------- addresses

  async #setupVmac(): Promise<void> {
    const name = `vrrp.${this.config.vrid}`;
    const mac = virtualMac(this.config.vrid, this.#family);
    await this.#deps.rtnl.addMacvlan(name, this.#ifindex, { mac, up: false });
    this.#vmacIndex = ifNameToIndex(name);
    this.#mac = mac;
    // the backup has the same MAC: its macvlan must stay silent (no IPv6 link-local,
    // ARP answers only for addresses it holds) until it holds the VIPs
    const sysctl = (path: string, value: string) => Deno.writeTextFile(path, value).catch(() => {});
    await sysctl(`/proc/sys/net/ipv4/conf/${name}/arp_ignore`, "1");
    if (this.#family === 4) await sysctl(`/proc/sys/net/ipv6/conf/${name}/disable_ipv6`, "1");
    await this.#deps.rtnl.setLinkUp(this.#vmacIndex, true);
    // only the macvlan may answer ARP for the VIPs (with the virtual MAC), and the
    // parent must not announce a VIP as the source of its own ARP requests
    if (this.#family === 4) {
      const conf = `/proc/sys/net/ipv4/conf/${this.config.interface}`;
      for (const [key, value] of [["arp_ignore", "1"], ["arp_announce", "2"]]) {
        try {
          const before = (await Deno.readTextFile(`${conf}/${key}`)).trim();
          await Deno.writeTextFile(`${conf}/${key}`, value);
          this.#sysctlRestore.push([`${conf}/${key}`, before]);
        } catch (error) {
          this.#log.warn(`cannot set ${key} on the parent; it may answer ARP for the VIPs too`, {
            instance: this.config.name,
            error: (error as Error).message,
          });
        }
      }
    }
  }

  async #findPrimary(): Promise<string> {
    const vips = new Set(this.config.virtual_ipaddress.map((v) => v.address));
    const addrs = (await this.#deps.rtnl.addresses(this.#ifindex))
      .filter((a) => a.family === this.#family && !vips.has(a.address));
    const pick = this.#family === 4
      ? addrs.find((a) => (a.flags & 1) === 0) ?? addrs[0]
      : addrs.find((a) => a.address.startsWith("fe80")) ?? addrs[0];
    if (!pick) {
      throw new Error(
        `vrrp instance "${this.config.name}": interface ${this.config.interface} has no IPv${this.#family} address; add one or set unicast_src_ip`,
      );
    }
    return pick.address;
  }

  async #addVips(): Promise<void> {
    for (const vip of this.config.virtual_ipaddress) {
      await this.#deps.rtnl.addAddress(this.#vmacIndex ?? this.#ifindex, vip);
    }
  }

  async #removeVips(): Promise<void> {
    for (const vip of this.config.virtual_ipaddress) {
      await this.#deps.rtnl.deleteAddress(this.#vmacIndex ?? this.#ifindex, vip);
    }
  }

  #announce(): void {
    if (!this.#arp || !this.#mac || this.#state.role !== "master") return;
    for (const vip of this.config.virtual_ipaddress) {
      try {
        this.#arp.send(frameFor(this.#mac, vip));
      } catch (error) {
        this.#log.warn("gratuitous ARP not sent", {
          instance: this.config.name,
          vip: vip.address,
          error: (error as Error).message,
        });
      }
    }
  }

  #startGarp(): void {
    this.#stopGarp();
    const g = this.config.garp;
    const burst = (at: number) => {
      const count = Math.max(1, g.repeat);
      for (let i = 0; i < count; i++) {
        const t = setTimeout(() => {
          this.#garpTimers.delete(t);
          this.#announce();
        }, at + i * g.interval);
        this.#garpTimers.add(t);
      }
    };
    this.#announce();
    burst(0);
    if (g.repeat > 0) burst(GARP_REPEAT_DELAY_MS);
    if (g.refresh > 0) this.#refreshTimer = setInterval(() => this.#announce(), g.refresh);
  }

  #stopGarp(): void {
    for (const t of this.#garpTimers) clearTimeout(t);
    this.#garpTimers.clear();
    clearInterval(this.#refreshTimer);
    this.#refreshTimer = undefined;
  }

  // ------------------------------------------------------------- tracking

  async #initTracking(linkUp: boolean): Promise<void> {
    const previous = this.#tracked;
    this.#tracked = new Map();
    const own = `interface ${this.config.interface}`;
    this.#tracked.set(own, { what: own, up: previous.get(own)?.up ?? linkUp });
    for (const t of this.config.track.interfaces) {
      const name = typeof t === "string" ? t : t.name;
      const weight = typeof t === "string" ? 0 : t.weight;
      const key = `interface ${name}`;
      const up = previous.get(key)?.up ?? await this.#linkUp(name);
      this.#tracked.set(key, { what: key, up, weight });
    }
    for (const t of this.config.track.pools) {
      const pool = typeof t === "string" ? t : t.pool;
      const weight = typeof t === "string" ? 0 : t.weight;
      this.#tracked.set(`pool ${pool}`, {
        what: `pool ${pool}`,
        up: poolUp(this.#deps.states.list(pool)),
        weight,
      });
    }
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    if (this.config.track.pools.length) {
      this.#unsubscribe = this.#deps.states.subscribe((e) => {
        const key = `pool ${e.state.pool}`;
        const t = this.#tracked.get(key);
        if (!t) return;
        this.#setTracked(key, poolUp(this.#deps.states.list(e.state.pool)));
      });
    }
    this.#applyTracking();
  }

  async #linkUp(name: string): Promise<boolean> {
    try {
      return (await this.#deps.rtnl.link(ifNameToIndex(name)))?.up ?? false;
    } catch {
      return false;
    }
  }

  /**
   * Takes a new configuration in place when only priority, preemption, tracking,
   * notify or GARP settings changed (no release, no re-election). Returns false when
   * the change needs a restart (interface, VRID, version, addresses, peers, auth…).
   */
  async reconfigure(config: InstanceConfig): Promise<boolean> {
    const identity = (c: InstanceConfig) =>
      JSON.stringify([
        c.name,
        c.interface,
        c.vrid,
        c.version,
        c.address_owner,
        c.advert_interval,
        c.virtual_ipaddress,
        c.unicast_src_ip,
        c.unicast_peers,
        c.auth,
        c.use_vmac,
      ]);
    if (!this.#running || identity(config) !== identity(this.config)) return false;
    this.#config = config;
    this.#state = {
      ...this.#state,
      config: {
        ...this.#state.config,
        priority: config.priority,
        preempt: config.preempt,
        preemptDelayMs: config.preempt_delay,
      },
    };
    if (this.#state.role === "master" && this.#refreshTimer !== undefined) {
      clearInterval(this.#refreshTimer);
      this.#refreshTimer = undefined;
    }
    if (
      this.#state.role === "master" && config.garp.refresh > 0 && this.#refreshTimer === undefined
    ) {
      this.#refreshTimer = setInterval(() => this.#announce(), config.garp.refresh);
    }
    await this.#initTracking(true);
    this.#log.info("vrrp instance reconfigured in place", {
      instance: config.name,
      priority: this.#state.priority,
    });
    return true;
  }

  #setTracked(key: string, up: boolean): void {
    const t = this.#tracked.get(key);
    if (!t || t.up === up) return;
    this.#tracked.set(key, { ...t, up });
    this.#log.info(`tracked ${t.what} is ${up ? "up" : "down"}`, { instance: this.config.name });
    this.#applyTracking();
  }

  #applyTracking(): void {
    const base = this.config.address_owner ? 255 : this.config.priority;
    const verdict = trackVerdict(base, [...this.#tracked.values()]);
    const current = new Set(this.#state.faults);
    for (const f of verdict.faults) {
      if (!current.has(f)) this.#feed({ kind: "fault", what: f, on: true });
    }
    for (const f of current) {
      if (!verdict.faults.includes(f)) this.#feed({ kind: "fault", what: f, on: false });
    }
    if (verdict.priority !== this.#state.priority) {
      this.#feed({ kind: "priority", priority: verdict.priority });
    }
  }

  async #pollLinks(): Promise<void> {
    if (!this.#running) return;
    for (const t of this.#tracked.values()) {
      if (!t.what.startsWith("interface ")) continue;
      const name = t.what.slice("interface ".length);
      let up = false;
      try {
        const index = ifNameToIndex(name);
        up = (await this.#deps.rtnl.link(index))?.up ?? false;
      } catch {
        up = false;
      }
      if (!this.#running) return;
      this.#setTracked(t.what, up);
    }
  }

  // ------------------------------------------------------------- status

  /** The JSON status of this instance. */
  status(): InstanceStatus {
    const s = this.#state;
    return {
      name: this.config.name,
      interface: this.config.interface,
      vrid: this.config.vrid,
      version: this.config.version,
      state: s?.role ?? "init",
      priority: s?.priority ?? this.config.priority,
      configuredPriority: this.config.address_owner ? 255 : this.config.priority,
      master: s?.role === "master" ? this.#primary : s?.master ?? null,
      masterPriority: s?.role === "master" ? s.priority : s?.masterPriority ?? null,
      primary: this.#primary,
      vips: this.config.virtual_ipaddress.map((v) => v.text),
      held: s?.held ?? false,
      faults: s?.faults ?? [],
      lastTransition: this.#last,
      transitions: this.#transitions,
      advertsIn: this.#advertsIn,
      advertsOut: this.#advertsOut,
      intervalMismatches: this.#mismatches,
      errors: { ...this.#errors },
      timerLatenessMs: {
        last: round(this.#lateLast),
        max: round(this.#lateMax),
        over10ms: this.#lateOver10,
      },
      notifyPending: this.#notify.pending,
    };
  }

  /** Timer lateness histogram: cumulative bucket counts, sum (s) and count. */
  lateness(): { buckets: number[]; sum: number; count: number } {
    return { buckets: [...this.#lateBuckets], sum: this.#lateSum, count: this.#lateCount };
  }
}

function frameFor(mac: Uint8Array, vip: Cidr): Uint8Array<ArrayBuffer> {
  return vip.family === 4 ? garpFrame(mac, vip.address) : unsolicitedNaFrame(mac, vip.address);
}

function now(): number {
  return performance.now();
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
