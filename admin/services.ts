/**
 * L4 virtual services in the admin API: `GET /api/v1/services` (the JSON of
 * `ipvsadm -Ln --stats --rate`: every service with its real servers, counters and
 * 2 s rates) and the `fulcrum_l4_*` metrics per service and per real server,
 * including drops by reason.
 * @module
 */
import type { Hono } from "hono";
import type { AdminEnv } from "../subsystem.ts";
import type { ServiceView } from "../l4/dataplane.ts";
import type { DropCounts } from "../l4/defense.ts";

export type { DropCounts };
import { family, type Sample } from "./prom.ts";

/** What the routes need of the L4 subsystem. */
export interface ServicesHandle {
  /** Services as the data plane has them now. */
  services(): readonly ServiceView[] | Promise<readonly ServiceView[]>;
}

/** Adds `GET /api/v1/services` to the admin app. */
export function mountServiceRoutes(app: Hono<AdminEnv>, handle: ServicesHandle): void {
  app.get("/api/v1/services", async (c) => {
    try {
      return c.json(await handle.services());
    } catch (err) {
      return c.json({
        error: {
          code: "dataplane_error",
          message: `the L4 data plane could not list services: ${
            err instanceof Error ? err.message : String(err)
          }; see the appliance log`,
        },
      }, 503);
    }
  });
}

/** Kernel splice use of the userspace plane (bulk flows moved off the JS path). */
export interface SpliceCounts {
  /** Connections spliced now. */
  active: number;
  /** Connections moved to splice since start. */
  opened: number;
  /** Bulk connections kept on the JS path because the cap was reached. */
  refused: number;
}

/** What {@link servicesMetrics} adds beside the service views. */
export interface ServicesMetricsOptions {
  /** Drops by reason, per service and per real server. */
  drops?: DropCounts;
  /** Splice counters, when the userspace plane runs. */
  splice?: SpliceCounts;
}

/** Prometheus text for the services, their real servers, the drops and splice use. */
export function servicesMetrics(
  views: readonly ServiceView[],
  options: ServicesMetricsOptions = {},
): string {
  const drops = options.drops ?? { services: {} };
  const svc = (f: (v: ServiceView) => number): Sample[] =>
    views.map((v) => ({ labels: { service: v.name }, value: f(v) }));
  const dest = (f: (d: ServiceView["dests"][number]) => number): Sample[] =>
    views.flatMap((v) =>
      v.dests.map((d) => ({ labels: { service: v.name, server: d.address }, value: f(d) }))
    );
  const out: string[] = [
    family("fulcrum_l4_connections_total", "counter", {
      help: "Connections scheduled by each virtual service",
      samples: svc((v) => v.stats.conns),
    }),
    family("fulcrum_l4_in_bytes_total", "counter", {
      help: "Bytes from clients through each virtual service",
      samples: svc((v) => v.stats.inBytes),
    }),
    family("fulcrum_l4_out_bytes_total", "counter", {
      help: "Bytes to clients through each virtual service",
      samples: svc((v) => v.stats.outBytes),
    }),
    family("fulcrum_l4_in_packets_total", "counter", {
      help: "Packets (userspace: reads) from clients through each virtual service",
      samples: svc((v) => v.stats.inPkts),
    }),
    family("fulcrum_l4_out_packets_total", "counter", {
      help: "Packets (userspace: reads) to clients through each virtual service",
      samples: svc((v) => v.stats.outPkts),
    }),
    family("fulcrum_l4_connection_rate", "gauge", {
      help: "Connections per second over the 2 s estimator",
      samples: svc((v) => v.rates.cps),
    }),
    family("fulcrum_l4_server_connections_total", "counter", {
      help: "Connections scheduled to each real server",
      samples: dest((d) => d.stats.conns),
    }),
    family("fulcrum_l4_server_in_bytes_total", "counter", {
      help: "Bytes from clients to each real server",
      samples: dest((d) => d.stats.inBytes),
    }),
    family("fulcrum_l4_server_out_bytes_total", "counter", {
      help: "Bytes from each real server to clients",
      samples: dest((d) => d.stats.outBytes),
    }),
    family("fulcrum_l4_server_in_packets_total", "counter", {
      help: "Packets (userspace: reads) from clients to each real server",
      samples: dest((d) => d.stats.inPkts),
    }),
    family("fulcrum_l4_server_out_packets_total", "counter", {
      help: "Packets (userspace: reads) from each real server to clients",
      samples: dest((d) => d.stats.outPkts),
    }),
    family("fulcrum_l4_server_active_connections", "gauge", {
      help: "Established connections per real server",
      samples: dest((d) => d.activeConns),
    }),
    family("fulcrum_l4_server_inactive_connections", "gauge", {
      help: "Connections in other states (connecting, closing, UDP) per real server",
      samples: dest((d) => d.inactiveConns),
    }),
    family("fulcrum_l4_server_persistent_connections", "gauge", {
      help: "Persistence templates bound to each real server",
      samples: dest((d) => d.persistentConns),
    }),
    family("fulcrum_l4_server_weight", "gauge", {
      help: "Weight each real server has in its service now",
      samples: dest((d) => d.weight),
    }),
  ];
  const dropSamples: Sample[] = [];
  for (const [service, reasons] of Object.entries(drops.services)) {
    for (const [reason, value] of Object.entries(reasons)) {
      dropSamples.push({ labels: { service, reason }, value });
    }
  }
  out.push(family("fulcrum_l4_drops_total", "counter", {
    help: "Connections refused or closed by the plane, by reason",
    samples: dropSamples,
  }));
  const serverDrops: Sample[] = [];
  for (const [service, servers] of Object.entries(drops.servers ?? {})) {
    for (const [server, reasons] of Object.entries(servers)) {
      for (const [reason, value] of Object.entries(reasons)) {
        serverDrops.push({ labels: { service, server, reason }, value });
      }
    }
  }
  out.push(family("fulcrum_l4_server_drops_total", "counter", {
    help: "Connections to each real server refused or closed by the plane, by reason",
    samples: serverDrops,
  }));
  const splice = options.splice;
  if (splice) {
    out.push(
      family("fulcrum_l4_splice_active", "gauge", {
        help: "Bulk TCP connections the userspace plane moves by kernel splice now",
        samples: [{ labels: {}, value: splice.active }],
      }),
      family("fulcrum_l4_splice_opened_total", "counter", {
        help: "TCP connections moved to kernel splice once they turned out bulk",
        samples: [{ labels: {}, value: splice.opened }],
      }),
      family("fulcrum_l4_splice_refused_total", "counter", {
        help: "Bulk TCP connections kept on the JS path because the splice cap was reached",
        samples: [{ labels: {}, value: splice.refused }],
      }),
    );
  }
  return out.join("");
}
