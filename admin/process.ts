/**
 * Process metrics in the names Prometheus's client libraries use.
 * @module
 */
import { readOwnProcFile } from "../sys/proc.ts";
import { family } from "./prom.ts";

const CLOCK_TICKS = 100;

/** CPU seconds (user + system) of this process from /proc, or undefined off Linux. */
export function cpuSeconds(): number | undefined {
  const stat = readOwnProcFile("stat");
  if (stat === undefined) return undefined;
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
}

/** Open file descriptors of this process, or undefined when /proc is not readable. */
export function openFds(): number | undefined {
  try {
    let n = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
    return n;
  } catch {
    return undefined;
  }
}

/** Renders process_* metrics. */
export function processMetrics(startedAt: number): string {
  const memory = Deno.memoryUsage();
  const out = [
    family("process_resident_memory_bytes", "gauge", {
      help: "Resident memory size in bytes.",
      samples: [{ value: memory.rss }],
    }),
    family("process_heap_bytes", "gauge", {
      help: "JavaScript heap in use, in bytes.",
      samples: [{ value: memory.heapUsed }],
    }),
    family("process_start_time_seconds", "gauge", {
      help: "Start time of the process since the epoch in seconds.",
      samples: [{ value: Math.floor(startedAt / 1000) }],
    }),
  ];
  const cpu = cpuSeconds();
  if (cpu !== undefined) {
    out.push(family("process_cpu_seconds_total", "counter", {
      help: "Total user and system CPU time spent in seconds.",
      samples: [{ value: cpu }],
    }));
  }
  const fds = openFds();
  if (fds !== undefined) {
    out.push(family("process_open_fds", "gauge", {
      help: "Number of open file descriptors.",
      samples: [{ value: fds }],
    }));
  }
  return out.join("");
}
