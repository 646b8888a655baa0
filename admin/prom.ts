/**
 * Prometheus text exposition, written by hand: a family is a name, a type, a help
 * line and samples with labels.
 * @module
 */

/** One sample of a metric family. */
export interface Sample {
  readonly labels?: Readonly<Record<string, string | number>>;
  readonly value: number;
  /** Suffix such as `_bucket`, `_sum`, `_count` for histograms. */
  readonly suffix?: string;
}

function escapeLabel(value: string | number): string {
  return String(value).replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(/"/g, '\\"');
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

/** Renders one metric family (HELP, TYPE and samples) as exposition text. */
export function family(
  name: string,
  type: "counter" | "gauge" | "histogram" | "untyped",
  options: { help: string; samples: readonly Sample[] },
): string {
  const lines = [`# HELP ${name} ${options.help}`, `# TYPE ${name} ${type}`];
  for (const sample of options.samples) {
    const labels = Object.entries(sample.labels ?? {});
    const text = labels.length
      ? `{${labels.map(([k, v]) => `${k}="${escapeLabel(v)}"`).join(",")}}`
      : "";
    lines.push(`${name}${sample.suffix ?? ""}${text} ${formatValue(sample.value)}`);
  }
  return lines.join("\n") + "\n";
}

/** A histogram with fixed upper bounds (seconds), cheap to observe on a hot path. */
export class Histogram {
  readonly bounds: readonly number[];
  #counts: number[];
  #sum = 0;
  #count = 0;

  constructor(bounds: readonly number[] = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5]) {
    this.bounds = bounds;
    this.#counts = new Array(bounds.length).fill(0);
  }

  /** Records one observation. */
  observe(value: number): void {
    this.#sum += value;
    this.#count++;
    for (let i = 0; i < this.bounds.length; i++) {
      if (value <= this.bounds[i]) {
        this.#counts[i]++;
        return;
      }
    }
  }

  /** The samples of this histogram with `labels` added to each. */
  samples(labels: Record<string, string | number> = {}): Sample[] {
    const out: Sample[] = [];
    let cumulative = 0;
    this.bounds.forEach((bound, i) => {
      cumulative += this.#counts[i];
      out.push({ suffix: "_bucket", labels: { ...labels, le: bound }, value: cumulative });
    });
    out.push({ suffix: "_bucket", labels: { ...labels, le: "+Inf" }, value: this.#count });
    out.push({ suffix: "_sum", labels, value: this.#sum });
    out.push({ suffix: "_count", labels, value: this.#count });
    return out;
  }
}
