import assert from "node:assert/strict";
import { L7Metrics } from "./metrics.ts";

Deno.test("requests are counted by labels and rendered as Prometheus text", () => {
  const m = new L7Metrics();
  const base = {
    listener: "web",
    rule: "0",
    pool: "images",
    server: "127.0.0.1:8201",
    seconds: 0.002,
  };
  m.request({ ...base, status: 200 });
  m.request({ ...base, status: 204 });
  m.request({ ...base, status: 503, server: "-" });
  m.reject("web", "smuggling");
  m.inflight("web", 1);
  const text = m.render([{ pool: "images", server: "127.0.0.1:8201", inflight: 3 }]);
  assert.match(
    text,
    /fulcrum_l7_requests_total\{listener="web",rule="0",pool="images",server="127.0.0.1:8201",code="2xx"\} 2/,
  );
  assert.match(text, /code="5xx"\} 1/);
  assert.match(text, /fulcrum_l7_request_duration_seconds_count\{listener="web",pool="images"\} 3/);
  assert.match(text, /fulcrum_l7_rejected_total\{listener="web",reason="smuggling"\} 1/);
  assert.match(
    text,
    /fulcrum_l7_server_inflight_requests\{pool="images",server="127.0.0.1:8201"\} 3/,
  );
  assert.equal(m.total("web"), 3);
  assert.equal(m.total("web", "5xx"), 1);
  assert.equal(m.rejected("web", "smuggling"), 1);
});
