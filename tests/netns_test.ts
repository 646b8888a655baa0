import assert from "node:assert/strict";
import { canUseNetns, lan, Netns } from "./netns.ts";

Deno.test({
  name: "two namespaces on a test LAN reach each other and vanish on delete",
  ignore: !(await canUseNetns()),
  fn: async () => {
    const a = await Netns.create();
    const b = await Netns.create();
    let hub: Netns | undefined;
    try {
      hub = await lan([{ ns: a, addr: "10.231.0.1/24" }, { ns: b, addr: "10.231.0.2/24" }]);
      const ping = await a.exec(["ping", "-c1", "-W2", "10.231.0.2"], { check: false });
      assert.equal(ping.code, 0, ping.stderr + ping.stdout);
    } finally {
      await a.delete();
      await b.delete();
      await hub?.delete();
    }
    const list = await new Deno.Command("ip", { args: ["netns", "list"] }).output();
    assert.ok(!new TextDecoder().decode(list.stdout).includes(a.name));
  },
});
