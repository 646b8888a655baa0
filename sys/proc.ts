/**
 * The process's own /proc files (`/proc/self/stat`, `cmdline`, `smaps`…). Deno lets a
 * program read them only when every permission is granted (`--allow-all`), which the
 * appliance does not ask for; with `--allow-ffi` they are read through libc instead.
 * @module
 */
import { ffiAvailable, readFileNow } from "./libc.ts";

/**
 * The text of `/proc/self/<name>`, or undefined where it cannot be read (not Linux,
 * neither `--allow-all` nor `--allow-ffi`).
 */
export function readOwnProcFile(name: string): string | undefined {
  const path = `/proc/self/${name}`;
  if (Deno.build.os !== "linux") return undefined;
  try {
    if (ffiAvailable()) return new TextDecoder().decode(readFileNow(path));
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}
