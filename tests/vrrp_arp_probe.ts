/**
 * Test tool: asks "who has VIP" by ARP every 10 ms out of an interface and prints a
 * JSON line `{"t": epochMs, "mac": ...}` for replies from the watched MAC (at most
 * one line per 50 ms). Used by the VRRP benchmark to time "the VIP answers on the
 * new master". Run it inside a namespace.
 *
 *   ip netns exec NS deno run -A tests/vrrp_arp_probe.ts eth0 10.77.0.3 10.77.0.100 aa:bb:..
 * @module
 */
import { ETH_P_ARP, PacketSocket } from "../sys/packet.ts";
import { arpFrame, parseArp } from "../vrrp/garp.ts";

/** Probes until the process is killed. */
export async function probe(
  ifname: string,
  src: string,
  vip: string,
  watch: string,
): Promise<void> {
  const mac = (await Deno.readTextFile(`/sys/class/net/${ifname}/address`)).trim();
  const macBytes = new Uint8Array(mac.split(":").map((h) => parseInt(h, 16)));
  const sock = new PacketSocket(ifname, { protocol: ETH_P_ARP, receiveTimeoutMs: 20 });
  const request = arpFrame(1, { srcMac: macBytes, srcIp: src, targetIp: vip });
  setInterval(() => {
    try {
      sock.send(request);
    } catch { /* interface gone: the bench is closing */ }
  }, 10);
  let last = 0;
  for (;;) {
    const frame = await sock.receive();
    if (!frame) continue;
    const arp = parseArp(frame);
    if (!arp || arp.op !== 2 || arp.senderIp !== vip || arp.senderMac !== watch) continue;
    const now = Date.now();
    if (now - last < 50) continue;
    last = now;
    console.log(JSON.stringify({ t: now, mac: arp.senderMac }));
  }
}

if (import.meta.main) await probe(Deno.args[0], Deno.args[1], Deno.args[2], Deno.args[3]);
