/**
 * The Prometheus registry (src/server/metrics.ts): series found through declared label
 * names or bound children must expose exactly what the former implementation did — one
 * series per label set, keyed by the sorted label entries, in first-use order, labels in
 * the order of the first observation. `Reference` below is that implementation, kept here
 * as the oracle; fast-check feeds both the same observations (fixed seed; SEED=n for others).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LATENCY_BUCKETS, type Labels, MetricsRegistry } from '../src/server/metrics.js';

const SEED = Number(process.env.SEED ?? 6_2026);

/** The former registry's counters and histograms (keyOf on every call), rendering only. */
class Reference {
  private readonly out: string[] = [];
  private readonly counters = new Map<
    string,
    { help: string; series: Map<string, { labels: Labels; value: number }> }
  >();
  private readonly histograms = new Map<
    string,
    {
      help: string;
      buckets: readonly number[];
      series: Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>;
    }
  >();
  private readonly order: string[] = [];

  counter(name: string, help: string): void {
    this.counters.set(name, { help, series: new Map() });
    this.order.push(name);
  }

  histogram(name: string, help: string, buckets: readonly number[]): void {
    this.histograms.set(name, { help, buckets, series: new Map() });
    this.order.push(name);
  }

  inc(name: string, labels: Labels, by: number): void {
    const c = this.counters.get(name)!;
    const k = keyOf(labels);
    const s = c.series.get(k);
    if (s) s.value += by;
    else c.series.set(k, { labels, value: by });
  }

  observe(name: string, labels: Labels, value: number): void {
    const h = this.histograms.get(name)!;
    const k = keyOf(labels);
    let s = h.series.get(k);
    if (!s) h.series.set(k, (s = { labels, counts: new Array<number>(h.buckets.length).fill(0), sum: 0, count: 0 }));
    for (let i = 0; i < h.buckets.length; i++) if (value <= h.buckets[i]!) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  render(): string {
    const out = this.out;
    out.length = 0;
    for (const name of this.order) {
      const c = this.counters.get(name);
      const h = this.histograms.get(name);
      out.push(
        `# HELP ${name} ${(c ?? h)!.help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`,
        `# TYPE ${name} ${c ? 'counter' : 'histogram'}`,
      );
      if (c) for (const s of c.series.values()) out.push(`${name}${labelText(s.labels)} ${num(s.value)}`);
      if (h) {
        for (const s of h.series.values()) {
          for (const [i, b] of h.buckets.entries())
            out.push(`${name}_bucket${labelText(s.labels, ['le', num(b)])} ${s.counts[i]}`);
          out.push(`${name}_bucket${labelText(s.labels, ['le', '+Inf'])} ${s.count}`);
          out.push(`${name}_sum${labelText(s.labels)} ${num(s.sum)}`);
          out.push(`${name}_count${labelText(s.labels)} ${s.count}`);
        }
      }
    }
    return `${out.join('\n')}\n`;
  }
}

function keyOf(labels: Labels): string {
  return JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
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

const NAMES = ['method', 'route', 'status'] as const;

type Op =
  | { kind: 'inc'; values: [string, string, string]; by: number; how: 'object' | 'child' }
  | { kind: 'observe'; values: [string, string, string]; value: number; how: 'object' | 'child' }
  | { kind: 'plain'; by: number }
  | { kind: 'any'; labels: Record<string, string> };

const labelValueArb = fc.constantFrom(
  'GET',
  'PUT',
  '/v1/a/:id',
  'unmatched',
  '200',
  '404',
  '',
  'a"b',
  'c\\d',
  'e\nf',
  'é',
);
const valuesArb = fc.tuple(labelValueArb, labelValueArb, labelValueArb);
const sampleArb = fc.oneof(
  fc.constantFrom(...LATENCY_BUCKETS, 0, -1, 0.00050001, 11, NaN, Infinity, -Infinity),
  fc.double({ min: -1, max: 20, noNaN: true }),
);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    kind: fc.constant('inc' as const),
    values: valuesArb,
    by: fc.constantFrom(1, 2, 0.5),
    how: fc.constantFrom('object' as const, 'child' as const),
  }),
  fc.record({
    kind: fc.constant('observe' as const),
    values: valuesArb,
    value: sampleArb,
    how: fc.constantFrom('object' as const, 'child' as const),
  }),
  fc.record({ kind: fc.constant('plain' as const), by: fc.constantFrom(1, 3) }),
  fc.record({
    kind: fc.constant('any' as const),
    labels: fc.dictionary(fc.constantFrom('a', 'b', 'reason'), labelValueArb, { maxKeys: 3 }),
  }),
);

function run(ops: readonly Op[]): { actual: string; expected: string } {
  const ref = new Reference();
  const r = new MetricsRegistry();
  const requests = r.counter('t_requests_total', 'Requests\nby "kind" \\ path.', NAMES);
  ref.counter('t_requests_total', 'Requests\nby "kind" \\ path.');
  const plain = r.counter('t_plain_total', 'No labels.', []);
  ref.counter('t_plain_total', 'No labels.');
  const any = r.counter('t_any_total', 'Labels not declared: any set goes.');
  ref.counter('t_any_total', 'Labels not declared: any set goes.');
  const latency = r.histogram('t_latency_seconds', 'Latency.', LATENCY_BUCKETS, NAMES);
  ref.histogram('t_latency_seconds', 'Latency.', LATENCY_BUCKETS);
  const plainChild = plain.labels();
  for (const op of ops) {
    switch (op.kind) {
      case 'inc': {
        const labels = { method: op.values[0], route: op.values[1], status: op.values[2] };
        if (op.how === 'child') requests.labels(...op.values).inc(op.by);
        else requests.inc(labels, op.by);
        ref.inc('t_requests_total', labels, op.by);
        break;
      }
      case 'observe': {
        const labels = { method: op.values[0], route: op.values[1], status: op.values[2] };
        if (op.how === 'child') latency.labels(...op.values).observe(op.value);
        else latency.observe(labels, op.value);
        ref.observe('t_latency_seconds', labels, op.value);
        break;
      }
      case 'plain':
        if (op.by === 1) plain.inc();
        else plainChild.inc(op.by);
        ref.inc('t_plain_total', {}, op.by);
        break;
      case 'any':
        any.inc(op.labels);
        ref.inc('t_any_total', op.labels, 1);
        break;
    }
  }
  return { actual: r.render(), expected: ref.render() };
}

describe('metrics registry', () => {
  it('exposes byte for byte what the former keyOf registry did, through objects or bound children', () => {
    const out = fc.check(
      fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
        const { actual, expected } = run(ops);
        return actual === expected;
      }),
      { seed: SEED, numRuns: 300 },
    );
    if (out.failed)
      throw new Error(
        `failed (seed ${SEED}): ${fc.stringify(out.counterexample)}\nreplay: SEED=${SEED} npx vitest run test/server-metrics.test.ts`,
      );
  });

  it('creates a series on first use only, and a bound child shares it with the object form', () => {
    const r = new MetricsRegistry();
    const c = r.counter('t_total', 'T.', ['kind', 'outcome']);
    const okChild = c.labels('write', 'ok');
    c.labels('write', 'error'); // bound but never counted: not exposed
    expect(r.render()).toBe('# HELP t_total T.\n# TYPE t_total counter\n');
    okChild.inc();
    c.inc({ kind: 'write', outcome: 'ok' }, 2);
    expect(c.get({ kind: 'write', outcome: 'ok' })).toBe(3);
    expect(okChild.value).toBe(3);
    expect(r.render()).toBe('# HELP t_total T.\n# TYPE t_total counter\nt_total{kind="write",outcome="ok"} 3\n');
  });

  it('refuses a missing declared label and a wrong number of values', () => {
    const r = new MetricsRegistry();
    const c = r.counter('t_total', 'T.', ['kind', 'outcome']);
    expect(() => c.inc({ kind: 'x' })).toThrow(/label outcome is missing/);
    expect(() => c.labels('x')).toThrow(/expected 2 label values/);
  });
});
