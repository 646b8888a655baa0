/**
 * Test tool: sends Ethernet frames given as hex (one JSON file: `{ "frames": [...],
 * "repeat": N }`) out of an interface through AF_PACKET. Run it inside a namespace.
 *
 *   ip netns exec NS deno run -A tests/vrrp_inject.ts eth0 frames.json
 * @module
 */
import { ETH_P_IP, PacketSocket } from "../sys/packet.ts";
import { hex } from "../vrrp/testdata/keepalived.ts";

/** Sends every frame `repeat` times, round robin; returns how many were sent. */
export async function inject(ifname: string, path: string): Promise<number> {
  const { frames, repeat } = JSON.parse(await Deno.readTextFile(path)) as {
    frames: string[];
    repeat?: number;
  };
  const sock = new PacketSocket(ifname, { protocol: ETH_P_IP, receiveTimeoutMs: 10 });
  const bytes = frames.map(hex);
  let sent = 0;
  try {
    for (let r = 0; r < (repeat ?? 1); r++) {
      for (const b of bytes) {
        sock.send(b);
        sent++;
      }
      if (r % 50 === 49) await new Promise((res) => setTimeout(res, 1));
    }
  } finally {
    await sock.close();
  }
  return sent;
}

if (import.meta.main) console.log(await inject(Deno.args[0], Deno.args[1]));
