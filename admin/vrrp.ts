/**
 * VRRP in the admin API: `GET /api/v1/vrrp`, `POST /api/v1/vrrp/:instance/stepdown`,
 * `POST /api/v1/vrrp/:instance/rejoin`, and the `fulcrum_vrrp_*` metrics.
 * @module
 */
import type { Hono } from "hono";
import type { AdminEnv } from "../subsystem.ts";
import type { InstanceStatus } from "../vrrp/instance.ts";
import { LATENESS_BOUNDS } from "../vrrp/instance.ts";
import { family, type Sample } from "./prom.ts";

/** What the routes need of one instance. */
export interface VrrpInstanceHandle {
  readonly name: string;
  stepdown(): void;
  rejoin(): void;
  status(): InstanceStatus;
  lateness(): { buckets: number[]; sum: number; count: number };
}

/** What the routes need of the subsystem. */
export interface VrrpHandle {
  instances(): ReadonlyMap<string, VrrpInstanceHandle>;
  list(): InstanceStatus[];
}

function notFound(name: string, known: string[]) {
  return {
    error: {
      code: "not_found",
      message: `vrrp instance "${name}" is not running; running instances: ${
        known.join(", ") || "none"
      }`,
    },
  };
}

/** Adds the VRRP routes to the admin app. */
export function mountVrrpRoutes(app: Hono<AdminEnv>, vrrp: VrrpHandle): void {
  app.get("/api/v1/vrrp", (c) => c.json({ instances: vrrp.list() }));
  for (const verb of ["stepdown", "rejoin"] as const) {
    app.post(`/api/v1/vrrp/:instance/${verb}`, (c) => {
      const name = c.req.param("instance");
      const instance = vrrp.instances().get(name);
      if (!instance) return c.json(notFound(name, [...vrrp.instances().keys()]), 404);
      instance[verb]();
      return c.json({ ok: true, instance: instance.status() });
    });
  }
}

const STATES = ["init", "backup", "master", "fault"] as const;

/** Prometheus text for the instances. */
export function vrrpMetrics(instances: readonly VrrpInstanceHandle[]): string {
  const statuses = instances.map((i) => ({ handle: i, s: i.status() }));
  const per = (f: (s: InstanceStatus) => number): Sample[] =>
    statuses.map(({ s }) => ({ labels: { instance: s.name }, value: f(s) }));
  const lateness: Sample[] = [];
  for (const { handle, s } of statuses) {
    const l = handle.lateness();
    LATENESS_BOUNDS.forEach((b, i) =>
      lateness.push({ suffix: "_bucket", labels: { instance: s.name, le: b }, value: l.buckets[i] })
    );
    lateness.push({ suffix: "_bucket", labels: { instance: s.name, le: "+Inf" }, value: l.count });
    lateness.push({ suffix: "_sum", labels: { instance: s.name }, value: l.sum });
    lateness.push({ suffix: "_count", labels: { instance: s.name }, value: l.count });
  }
  return [
    family("fulcrum_vrrp_state", "gauge", {
      help: "1 for the state each VRRP instance is in",
      samples: statuses.flatMap(({ s }) =>
        STATES.map((st) => ({
          labels: { instance: s.name, state: st },
          value: s.state === st ? 1 : 0,
        }))
      ),
    }),
    family("fulcrum_vrrp_priority", "gauge", {
      help: "Priority in use now (configured, adjusted by tracking)",
      samples: per((s) => s.priority),
    }),
    family("fulcrum_vrrp_adverts_received_total", "counter", {
      help: "Valid advertisements received",
      samples: per((s) => s.advertsIn),
    }),
    family("fulcrum_vrrp_adverts_sent_total", "counter", {
      help: "Advertisements sent",
      samples: per((s) => s.advertsOut),
    }),
    family("fulcrum_vrrp_transitions_total", "counter", {
      help: "State transitions",
      samples: per((s) => s.transitions),
    }),
    family("fulcrum_vrrp_rejected_total", "counter", {
      help: "Received packets dropped, by reason",
      samples: statuses.flatMap(({ s }) =>
        Object.entries(s.errors).map(([reason, n]) => ({
          labels: { instance: s.name, reason },
          value: n,
        }))
      ),
    }),
    family("fulcrum_vrrp_timer_lateness_seconds", "histogram", {
      help: "How late VRRP timers fired (scheduling lag of the process)",
      samples: lateness,
    }),
  ].join("");
}
