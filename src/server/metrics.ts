/**
 * A small Prometheus registry writing the text exposition format 0.0.4
 * (https://prometheus.io/docs/instrumenting/exposition_formats/): counters, gauges
 * (set, or read at scrape time) and histograms with fixed buckets. Enough for one node's
 * metrics without a dependency; label values are escaped, series are kept per label set.
 *
 * Hot paths declare their label names and keep bound children (`histogram.labels(...)`,
 * `counter.labels(...)`), or look series up through maps keyed by label values: no key is
 * built and no labels are sorted per observation (that cost 2-4 µs a call, 2.5 % of a
 * leader under writes).
 */

export type Labels = Readonly<Record<string, string>>;

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'gauge' | 'histogram' | 'summary';
  render(out: string[]): void;
}

function labelText(labels: Labels, extra?: [string, string]): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  if (extra) parts.push(`${extra[0]}="${escapeLabel(extra[1])}"`);
  return parts.length === 0 ? '' : `{${parts.join(',')}}`;
}

function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (v === Infinity) return '+Inf';
  if (v === -Infinity) return '-Inf';
  return String(v);
}

function keyOf(labels: Labels): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/**
 * Finds the series of one label set without building a key: a tree of maps, one level
 * per declared label name, in declaration order. A metric declared without label names
 * keys its series by the sorted label entries instead (any label set goes). Leaves are
 * created on first lookup; what they hold is created on first use, so a series appears in
 * the exposition once it is first counted, in that order.
 */
class SeriesIndex<L> {
  private readonly tree = new Map<string, unknown>();
  private readonly byKey = new Map<string, L>();
  private unlabelled: L | null = null;

  constructor(
    private readonly names: readonly string[] | undefined,
    private readonly make: (labels: Labels) => L,
  ) {}

  /** The leaf of a label set given as an object (the names declared, or any). */
  of(labels: Labels): L {
    const names = this.names;
    if (names === undefined) {
      for (const _ in labels) {
        const k = keyOf(labels);
        let leaf = this.byKey.get(k);
        if (leaf === undefined) this.byKey.set(k, (leaf = this.make(labels)));
        return leaf;
      }
      return (this.unlabelled ??= this.make(labels));
    }
    if (names.length === 0) return (this.unlabelled ??= this.make({}));
    let level = this.tree;
    const last = names.length - 1;
    for (let i = 0; i < last; i++) {
      const v = labelValue(labels, names[i]!);
      let next = level.get(v) as Map<string, unknown> | undefined;
      if (next === undefined) level.set(v, (next = new Map<string, unknown>()));
      level = next;
    }
    const v = labelValue(labels, names[last]!);
    let leaf = level.get(v) as L | undefined;
    if (leaf === undefined) {
      // The series keeps its own copy, in declared order, of the declared labels only.
      const own: Record<string, string> = {};
      for (const n of names) own[n] = labelValue(labels, n);
      level.set(v, (leaf = this.make(own)));
    }
    return leaf;
  }

  /** The leaf of label values given in declaration order. */
  values(values: readonly string[]): L {
    const names = this.names ?? [];
    if (values.length !== names.length)
      throw new Error(`expected ${names.length} label values (${names.join(', ')}), got ${values.length}`);
    const labels: Record<string, string> = {};
    for (const [i, n] of names.entries()) labels[n] = values[i]!;
    return this.of(labels);
  }
}

function labelValue(labels: Labels, name: string): string {
  const v = labels[name];
  if (v === undefined) throw new Error(`label ${name} is missing`);
  return v;
}

interface CounterState {
  readonly labels: Labels;
  value: number;
}

/** One label set of a counter, resolved once; `inc` costs no lookup. */
export class CounterChild {
  private state: CounterState | null = null;

  constructor(
    private readonly labels: Labels,
    private readonly created: (s: CounterState) => void,
  ) {}

  inc(by = 1): void {
    let s = this.state;
    if (s === null) {
      this.state = s = { labels: this.labels, value: 0 };
      this.created(s);
    }
    s.value += by;
  }

  get value(): number {
    return this.state?.value ?? 0;
  }
}

export class Counter implements Metric {
  readonly type = 'counter';
  private readonly series: CounterState[] = [];
  private readonly index: SeriesIndex<CounterChild>;

  constructor(
    readonly name: string,
    readonly help: string,
    /** Declared label names (in exposition order) make lookups cheap; without them any label set goes. */
    labelNames?: readonly string[],
  ) {
    this.index = new SeriesIndex(labelNames, (labels) => new CounterChild(labels, (s) => this.series.push(s)));
  }

  /** The child of one label set (values in declared order); keep it and call `inc` on it. */
  labels(...values: string[]): CounterChild {
    return this.index.values(values);
  }

  inc(labels: Labels = {}, by = 1): void {
    this.index.of(labels).inc(by);
  }

  get(labels: Labels = {}): number {
    return this.index.of(labels).value;
  }

  render(out: string[]): void {
    for (const s of this.series) out.push(`${this.name}${labelText(s.labels)} ${num(s.value)}`);
  }
}

/**
 * A value read at scrape time: `collect` returns one value or one per label set. Usually a
 * gauge; a counter kept elsewhere (a monotonic total) is exposed with type 'counter'.
 */
export class Gauge implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly collect: () => number | readonly { labels: Labels; value: number }[],
    readonly type: 'gauge' | 'counter' = 'gauge',
  ) {}

  render(out: string[]): void {
    const v = this.collect();
    if (typeof v === 'number') out.push(`${this.name} ${num(v)}`);
    else for (const s of v) out.push(`${this.name}${labelText(s.labels)} ${num(s.value)}`);
  }
}

/** Quantiles over some window, with a sum and count (cumulative), read at scrape time. */
export interface SummaryValue {
  readonly quantiles: readonly (readonly [number, number])[];
  readonly sum: number;
  readonly count: number;
}

/** A summary computed elsewhere (e.g. from a Node histogram), read at scrape time. */
export class Summary implements Metric {
  readonly type = 'summary';

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly collect: () => SummaryValue,
  ) {}

  render(out: string[]): void {
    const v = this.collect();
    for (const [q, value] of v.quantiles) out.push(`${this.name}{quantile="${num(q)}"} ${num(value)}`);
    out.push(`${this.name}_sum ${num(v.sum)}`, `${this.name}_count ${num(v.count)}`);
  }
}

interface HistogramState {
  readonly labels: Labels;
  /** Observations per bucket, not cumulative (the exposition sums them); the last is +Inf. */
  readonly counts: number[];
  sum: number;
  count: number;
}

/** One label set of a histogram, resolved once; `observe` costs no lookup. */
export class HistogramChild {
  private state: HistogramState | null = null;

  constructor(
    private readonly labels: Labels,
    private readonly buckets: readonly number[],
    private readonly created: (s: HistogramState) => void,
  ) {}

  observe(value: number): void {
    let s = this.state;
    if (s === null) {
      this.state = s = {
        labels: this.labels,
        counts: new Array<number>(this.buckets.length + 1).fill(0),
        sum: 0,
        count: 0,
      };
      this.created(s);
    }
    const b = this.buckets;
    let i = 0;
    while (i < b.length && !(value <= b[i]!)) i++;
    s.counts[i]!++;
    s.sum += value;
    s.count++;
  }
}

export class Histogram implements Metric {
  readonly type = 'histogram';
  private readonly series: HistogramState[] = [];
  private readonly index: SeriesIndex<HistogramChild>;

  constructor(
    readonly name: string,
    readonly help: string,
    /** Upper bounds, ascending; +Inf is implied. */
    readonly buckets: readonly number[],
    /** Declared label names (in exposition order) make lookups cheap; without them any label set goes. */
    labelNames?: readonly string[],
  ) {
    this.index = new SeriesIndex(
      labelNames,
      (labels) => new HistogramChild(labels, buckets, (s) => this.series.push(s)),
    );
  }

  /** The child of one label set (values in declared order); keep it and call `observe` on it. */
  labels(...values: string[]): HistogramChild {
    return this.index.values(values);
  }

  observe(labels: Labels, value: number): void {
    this.index.of(labels).observe(value);
  }

  render(out: string[]): void {
    for (const s of this.series) {
      let cumulative = 0;
      this.buckets.forEach((b, i) => {
        cumulative += s.counts[i]!;
        out.push(`${this.name}_bucket${labelText(s.labels, ['le', num(b)])} ${cumulative}`);
      });
      out.push(`${this.name}_bucket${labelText(s.labels, ['le', '+Inf'])} ${s.count}`);
      out.push(`${this.name}_sum${labelText(s.labels)} ${num(s.sum)}`);
      out.push(`${this.name}_count${labelText(s.labels)} ${s.count}`);
    }
  }
}

/** Latency buckets in seconds, 0.5 ms to 10 s. */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

export class MetricsRegistry {
  private readonly metrics: Metric[] = [];
  private readonly hooks: (() => void)[] = [];

  /** Runs before every scrape (e.g. to take one consistent snapshot for many gauges). */
  beforeRender(hook: () => void): void {
    this.hooks.push(hook);
  }

  counter(name: string, help: string, labelNames?: readonly string[]): Counter {
    return this.add(new Counter(name, help, labelNames));
  }

  gauge(name: string, help: string, collect: () => number | readonly { labels: Labels; value: number }[]): Gauge {
    return this.add(new Gauge(name, help, collect));
  }

  /** A monotonic total kept elsewhere, read at scrape time. */
  counterFrom(name: string, help: string, collect: () => number | readonly { labels: Labels; value: number }[]): Gauge {
    return this.add(new Gauge(name, help, collect, 'counter'));
  }

  summaryFrom(name: string, help: string, collect: () => SummaryValue): Summary {
    return this.add(new Summary(name, help, collect));
  }

  histogram(
    name: string,
    help: string,
    buckets: readonly number[] = LATENCY_BUCKETS,
    labelNames?: readonly string[],
  ): Histogram {
    return this.add(new Histogram(name, help, buckets, labelNames));
  }

  /** The exposition text; a failing gauge is left out rather than failing the scrape. */
  render(): string {
    const out: string[] = [];
    for (const h of this.hooks) h();
    for (const m of this.metrics) {
      const lines: string[] = [];
      try {
        m.render(lines);
      } catch {
        continue;
      }
      out.push(
        `# HELP ${m.name} ${m.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`,
        `# TYPE ${m.name} ${m.type}`,
        ...lines,
      );
    }
    return `${out.join('\n')}\n`;
  }

  private add<M extends Metric>(m: M): M {
    if (this.metrics.some((x) => x.name === m.name)) throw new Error(`metric ${m.name} registered twice`);
    this.metrics.push(m);
    return m;
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
