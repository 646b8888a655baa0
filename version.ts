/**
 * Fulcrum's version, read from deno.json so it is written in one place.
 * @module
 */
import meta from "./deno.json" with { type: "json" };

/** The version string, e.g. `0.1.0`. */
export const VERSION: string = meta.version;
