/**
 * What a provider may report with its keepalives: how its calls go and how loaded it is.
 * Every field is optional; an absent metric neither harms nor helps the instance's health.
 * Ratios and usage are fractions in [0, 1]; latency is in milliseconds.
 */

export const METRICS = ['successRatio', 'p99Ms', 'cpu', 'memory', 'disk'] as const;
export type Metric = (typeof METRICS)[number];

export interface HealthReport {
  /** Share of calls that succeeded over the provider's own recent window (0..1). */
  readonly successRatio?: number;
  /** 99th percentile latency of those calls, in milliseconds. */
  readonly p99Ms?: number;
  /** CPU, memory and disk use as fractions (0..1). */
  readonly cpu?: number;
  readonly memory?: number;
  readonly disk?: number;
}

/** Largest p99 worth recording (one day): anything above is as bad as it gets. */
export const MAX_P99_MS = 86_400_000;

export type Parsed<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly field: string; readonly message: string };

/**
 * Checks a report from the wire. Unknown fields are refused (a typo such as `cpuUsage`
 * would otherwise be silently ignored and the provider would look healthy forever).
 */
export function parseHealthReport(raw: unknown, path = 'report'): Parsed<HealthReport> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    return { ok: false, field: path, message: `${path}: must be an object` };
  const out: { -readonly [K in Metric]?: number } = {};
  for (const [key, value] of Object.entries(raw)) {
    const field = `${path}.${key}`;
    if (!(METRICS as readonly string[]).includes(key))
      return { ok: false, field, message: `${field}: unknown metric (known: ${METRICS.join(', ')})` };
    if (typeof value !== 'number' || !Number.isFinite(value))
      return { ok: false, field, message: `${field}: must be a finite number` };
    const max = key === 'p99Ms' ? MAX_P99_MS : 1;
    if (value < 0 || value > max) return { ok: false, field, message: `${field}: must be between 0 and ${max}` };
    out[key as Metric] = value;
  }
  return { ok: true, value: out };
}

/** JSON schema of a report (for route documentation; the handler parses with parseHealthReport). */
export const HEALTH_REPORT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    successRatio: { type: 'number', minimum: 0, maximum: 1, description: 'Share of calls that succeeded (0..1).' },
    p99Ms: { type: 'number', minimum: 0, maximum: MAX_P99_MS, description: '99th percentile call latency, ms.' },
    cpu: { type: 'number', minimum: 0, maximum: 1, description: 'CPU use (0..1).' },
    memory: { type: 'number', minimum: 0, maximum: 1, description: 'Memory use (0..1).' },
    disk: { type: 'number', minimum: 0, maximum: 1, description: 'Disk use (0..1).' },
  },
} as const;

/**
 * The optional body of `PUT /v1/sessions/:id/keepalive`: nothing at all (a plain
 * keepalive), or `{"report": {...}}`. The route cannot use a fastify body schema for it: a
 * body schema rejects a request that has no body.
 */
export function parseKeepaliveBody(raw: unknown): Parsed<HealthReport | undefined> {
  if (raw === undefined || raw === null) return { ok: true, value: undefined };
  if (typeof raw !== 'object' || Array.isArray(raw))
    return {
      ok: false,
      field: 'body',
      message: 'body: must be empty or an object like {"report": {"successRatio": 0.99}}',
    };
  for (const key of Object.keys(raw))
    if (key !== 'report') return { ok: false, field: key, message: `${key}: unknown field (known: report)` };
  const report = (raw as { report?: unknown }).report;
  return report === undefined ? { ok: true, value: undefined } : parseHealthReport(report);
}
