/**
 * `GET /api/v1/route?url=…&method=…&host=…&listener=…`: explains how the L7 switch
 * would route a request (rule, pool, server, ring position, load-bound diversion).
 * The handler is thin; the decision comes from the switch itself.
 * @module
 */
import type { Hono } from "hono";
import type { AdminEnv } from "../subsystem.ts";

/** The question the endpoint forwards to the switch. */
export interface RouteQuery {
  readonly url: string;
  readonly method?: string;
  readonly host?: string;
  readonly listener?: string;
  readonly source?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

/** Whatever can explain a routing decision (the L7 subsystem). */
export interface RouteExplainer {
  /** The explanation as JSON, or a message saying what is wrong with the query. */
  explain(query: RouteQuery): object | string;
}

/**
 * Adds `GET /api/v1/route` to `app`. `header=Name:value` may repeat to add request
 * headers. Errors are `{ "error": { "code", "message" } }` with status 400 or 404.
 */
export function mountRoute(app: Hono<AdminEnv>, explainer: RouteExplainer): void {
  app.get("/api/v1/route", (c) => {
    const url = c.req.query("url");
    if (!url) {
      return c.json({
        error: { code: "bad_request", message: "url is required, e.g. /api/v1/route?url=/a.jpg" },
      }, 400);
    }
    const headers: Record<string, string> = {};
    for (const h of c.req.queries("header") ?? []) {
      const colon = h.indexOf(":");
      if (colon <= 0) {
        return c.json({
          error: { code: "bad_request", message: `header "${h}" must look like Name:value` },
        }, 400);
      }
      headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
    }
    const result = explainer.explain({
      url,
      method: c.req.query("method"),
      host: c.req.query("host"),
      listener: c.req.query("listener"),
      source: c.req.query("source"),
      headers,
    });
    if (typeof result === "string") {
      const code = result.includes("does not exist") || result.startsWith("no L7")
        ? "not_found"
        : "bad_request";
      return c.json({ error: { code, message: result } }, code === "not_found" ? 404 : 400);
    }
    return c.json(result);
  });
}
