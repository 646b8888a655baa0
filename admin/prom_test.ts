import assert from "node:assert/strict";
import { family, Histogram } from "./prom.ts";

Deno.test("family renders HELP, TYPE and escaped labels", () => {
  const text = family("fulcrum_x_total", "counter", {
    help: "Things.",
    samples: [{ labels: { pool: 'a"b' }, value: 3 }, { value: Infinity }],
  });
  assert.equal(
    text,
    '# HELP fulcrum_x_total Things.\n# TYPE fulcrum_x_total counter\nfulcrum_x_total{pool="a\\"b"} 3\nfulcrum_x_total +Inf\n',
  );
});

Deno.test("a histogram's buckets are cumulative and end in +Inf", () => {
  const h = new Histogram([0.1, 1]);
  h.observe(0.05);
  h.observe(0.5);
  h.observe(3);
  const values = h.samples().map((s) => s.value);
  assert.deepEqual(values, [1, 2, 3, 3.55, 3]);
});
