/**
 * The status page at `/`: one HTML file that reads the admin API and renders the
 * appliance, its pools, services and VRRP instances, refreshing every 2 s.
 * @module
 */

/** The page's HTML (no external assets). */
export const STATUS_PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fulcrum</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5rem;color:#1d2330;background:#f7f8fa}
h1{font-size:1.4rem;margin:0 0 .2rem}h2{font-size:1.05rem;margin:1.4rem 0 .4rem}
.muted{color:#667}table{border-collapse:collapse;background:#fff;min-width:40rem}
th,td{padding:.25rem .6rem;border-bottom:1px solid #e3e6ea;text-align:left;font-variant-numeric:tabular-nums}
th{background:#eef1f5;font-weight:600}.up,.running,.master{color:#137333;font-weight:600}
.down,.failed,.fault{color:#b3261e;font-weight:600}.drain,.disabled,.degraded,.backup{color:#9a6700;font-weight:600}
code{background:#eef1f5;padding:0 .25rem;border-radius:3px}
</style></head><body>
<h1>Fulcrum</h1><div id="meta" class="muted">loading…</div>
<h2>Subsystems</h2><div id="subsystems"></div>
<h2>Pools</h2><div id="pools" class="muted">—</div>
<h2>L4 services</h2><div id="services" class="muted">—</div>
<h2>VRRP</h2><div id="vrrp" class="muted">—</div>
<p class="muted">API: <code>/api/v1/status</code> <code>/api/v1/pools</code> <code>/api/v1/services</code>
<code>/api/v1/vrrp</code> <code>/api/v1/route?url=/a.jpg</code> <code>/metrics</code></p>
<script>
const esc = (v) => String(v ?? "").replace(/[&<>"]/g, (c) => ({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;"})[c]);
function table(rows, cols) {
  if (!rows.length) return '<span class="muted">none</span>';
  return "<table><tr>" + cols.map((c) => "<th>" + esc(c[0]) + "</th>").join("") + "</tr>" +
    rows.map((r) => "<tr>" + cols.map((c) => {
      const v = c[1](r);
      const cls = /^[a-z]+$/.test(String(v)) ? ' class="' + v + '"' : "";
      return "<td" + cls + ">" + esc(v) + "</td>";
    }).join("") + "</tr>").join("") + "</table>";
}
async function get(path) {
  try { const r = await fetch(path); return r.ok ? await r.json() : undefined; } catch { return undefined; }
}
async function refresh() {
  const status = await get("/api/v1/status");
  if (status) {
    document.getElementById("meta").textContent = "version " + status.version + " · up " +
      status.uptime_seconds + " s · config " + status.config.path + " (" + status.config.hash.slice(0, 12) +
      ") · reloads ok " + status.reloads.ok + ", failed " + status.reloads.failed;
    const subs = Object.entries(status.subsystems).map(([name, s]) => ({ name, ...s }));
    document.getElementById("subsystems").innerHTML =
      table(subs, [["name", (s) => s.name], ["state", (s) => s.state], ["detail", (s) => s.detail ?? ""]]);
  }
  const pools = await get("/api/v1/pools");
  if (pools) {
    const rows = (pools.pools ?? pools).flatMap((p) => (p.servers ?? []).map((s) => ({ pool: p.name, ...s })));
    document.getElementById("pools").innerHTML = table(rows, [["pool", (r) => r.pool], ["server", (r) => r.address],
      ["health", (r) => r.health], ["admin", (r) => r.admin],
      ["weight", (r) => r.weight?.effective + " / " + r.weight?.configured],
      ["last check", (r) => r.last_check?.reason ?? ""], ["since", (r) => r.last_change?.reason ?? ""]]);
  }
  const services = await get("/api/v1/services");
  if (services) {
    const rows = (services.services ?? services).flatMap((s) => (s.dests ?? []).map((d) => ({ svc: s, ...d })));
    document.getElementById("services").innerHTML = table(rows, [["service", (r) => r.svc.name],
      ["vip", (r) => r.svc.vip ?? ("fwmark " + r.svc.fwmark)], ["scheduler", (r) => r.svc.scheduler],
      ["server", (r) => r.address], ["weight", (r) => r.weight], ["active", (r) => r.activeConns],
      ["conns", (r) => r.stats?.conns]]);
  }
  const vrrp = await get("/api/v1/vrrp");
  if (vrrp) {
    const rows = vrrp.instances ?? vrrp;
    document.getElementById("vrrp").innerHTML = table(Array.isArray(rows) ? rows : [], [["instance", (r) => r.name],
      ["state", (r) => r.state], ["priority", (r) => r.priority + " / " + r.configuredPriority],
      ["master", (r) => r.master ?? ""], ["vips", (r) => (r.vips ?? []).join(" ")],
      ["last transition", (r) => r.lastTransition?.reason ?? ""]]);
  }
}
refresh(); setInterval(refresh, 2000);
</script></body></html>
`;
