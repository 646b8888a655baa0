import assert from "node:assert/strict";
import { freePort, spawnFulcrum, stopFulcrum, waitForHttp } from "./cli.ts";

Deno.test({
  name: "fulcrum run trims the C heap every second and says so at start",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/appliance.yaml`;
    const port = freePort();
    await Deno.writeTextFile(
      path,
      `admin: { listen: 127.0.0.1:${port} }
pools:
  html:
    check: { type: none }
    servers: [{ address: 127.0.0.1:8101 }]
vrrp: { enabled: false }
l4: { dataplane: userspace }
`,
    );
    const child = spawnFulcrum(["run", "-c", path]);
    try {
      await waitForHttp(`http://127.0.0.1:${port}/healthz`);
    } finally {
      const stderr = await stopFulcrum(child).finally(() => Deno.remove(dir, { recursive: true }));
      assert.match(stderr, /msg="memory trim on" every_ms=1000/);
      assert.match(stderr, /msg=stopped/);
    }
  },
});
