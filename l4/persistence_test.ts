import assert from "node:assert/strict";
import { maskAddress, Persistence } from "./persistence.ts";

Deno.test("client addresses are masked to their persistence block", () => {
  assert.equal(maskAddress("10.1.2.77", "255.255.255.0"), "10.1.2.0");
  assert.equal(maskAddress("10.1.2.77", "255.255.255.255"), "10.1.2.77");
  assert.equal(maskAddress("10.1.2.77", "16"), "10.1.0.0");
  assert.equal(maskAddress("2001:db8:1:2::5", "64"), "2001:db8:1:2:0:0:0:0");
});

Deno.test("clients of one /24 share a server until the template expires", () => {
  const p = new Persistence<string>(300_000, "255.255.255.0");
  const always = () => true;
  assert.equal(p.lookup("10.0.0.1", 0, always), undefined);
  const t = p.bind("10.0.0.1", "A", 0);
  assert.equal(p.lookup("10.0.0.2", 1000, always), "A");
  assert.equal(p.lookup("10.0.1.2", 1000, always), undefined, "another /24");
  p.release(t);
  assert.equal(p.lookup("10.0.0.9", 299_999, always), "A");
  assert.equal(p.lookup("10.0.0.9", 300_000, always), undefined, "expired with no open conns");
});

Deno.test("a template with open connections is re-armed instead of expiring", () => {
  const p = new Persistence<string>(1000, "255.255.255.255");
  const t = p.bind("10.0.0.1", "A", 0);
  assert.equal(p.gc(5000), 0);
  assert.equal(p.lookup("10.0.0.1", 5500, () => true), "A");
  p.release(t);
  assert.equal(p.gc(7000), 1);
  assert.equal(p.size, 0);
});

Deno.test("a template to a server that may not take connections is dropped", () => {
  const p = new Persistence<string>(1000, "255.255.255.255");
  p.bind("10.0.0.1", "A", 0);
  assert.equal(p.countFor("A"), 1);
  assert.equal(p.lookup("10.0.0.1", 10, (d) => d !== "A"), undefined);
  assert.equal(p.countFor("A"), 0);
});
