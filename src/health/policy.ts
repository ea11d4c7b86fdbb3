/**
 * The health policy an admin sets: thresholds and alert limits per namespace or per
 * service, over built-in defaults. It is replicated as one document (the registry stores it
 * as given after parseHealthPolicy), so every leader decides with the same numbers.
 *
 * Resolution for namespace `ns`, service `svc`, field by field:
 *   built-in defaults  <-  policy.defaults  <-  policy.namespaces[ns]  <-  policy.services["ns/svc"]
 * A band given in an override replaces that band whole; `null` removes it (e.g. no cpu rule).
 *
 * @example
 * ```json
 * {
 *   "defaults":   { "alerts": { "minHealthy": 2 } },
 *   "namespaces": { "test": { "health": { "minDwellMs": 0 } } },
 *   "services":   { "prod/orders": { "health": { "p99Ms": { "subhealthy": { "enter": 250, "exit": 200 } } },
 *                                    "alerts": { "maxSubhealthyFraction": 0.25 } } },
 *   "cluster":    { "maxLagEntries": 500 }
 * }
 * ```
 */
import type { Parsed } from './report.js';
import { METRICS } from './report.js';
import type { Band, HealthThresholds, MetricBands } from './thresholds.js';
import { DEFAULT_THRESHOLDS, validateThresholds } from './thresholds.js';

export interface ServiceAlertThresholds {
  /** Alert when fewer than this many enabled instances are healthy. 0 turns the rule off. */
  readonly minHealthy: number;
  /** Alert when more than this fraction of enabled instances is subhealthy. 1 turns the rule off. */
  readonly maxSubhealthyFraction: number;
}

export interface ClusterAlertThresholds {
  /** A member whose applied index trails the commit index by more than this is lagging. */
  readonly maxLagEntries: number;
  /** ...for at least this long (ms), so a burst of writes does not page anyone. */
  readonly lagForMs: number;
  /** A member not heard from for this long (ms), or disconnected that long, is unreachable. */
  readonly unreachableMs: number;
  /** No leader for this long (ms) fires `no-leader`. */
  readonly noLeaderMs: number;
}

export const DEFAULT_SERVICE_ALERTS: ServiceAlertThresholds = Object.freeze({
  minHealthy: 1,
  maxSubhealthyFraction: 0.5,
});
export const DEFAULT_CLUSTER_ALERTS: ClusterAlertThresholds = Object.freeze({
  maxLagEntries: 1000,
  lagForMs: 5000,
  unreachableMs: 5000,
  noLeaderMs: 3000,
});

type BandsOverride = { readonly subhealthy?: Band | null; readonly down?: Band | null };

export interface ThresholdsOverride {
  readonly successRatio?: BandsOverride;
  readonly p99Ms?: BandsOverride;
  readonly cpu?: BandsOverride;
  readonly memory?: BandsOverride;
  readonly disk?: BandsOverride;
  readonly degradeAfter?: number;
  readonly recoverAfter?: number;
  readonly minDwellMs?: number;
  readonly reportTtlMs?: number;
}

export interface PolicyOverride {
  readonly health?: ThresholdsOverride;
  readonly alerts?: Partial<ServiceAlertThresholds>;
}

export interface HealthPolicy {
  readonly defaults?: PolicyOverride;
  readonly namespaces?: Readonly<Record<string, PolicyOverride>>;
  /** Keyed by "namespace/service". */
  readonly services?: Readonly<Record<string, PolicyOverride>>;
  readonly cluster?: Partial<ClusterAlertThresholds>;
}

export interface ServicePolicy {
  readonly health: HealthThresholds;
  readonly alerts: ServiceAlertThresholds;
}

/** Most namespace plus service entries a policy may carry. */
export const MAX_POLICY_ENTRIES = 1000;

export function mergeThresholds(base: HealthThresholds, o: ThresholdsOverride | undefined): HealthThresholds {
  if (o === undefined) return base;
  const bands = (m: (typeof METRICS)[number]): MetricBands => {
    const over = o[m];
    if (over === undefined) return base[m];
    const out: { subhealthy?: Band; down?: Band } = {};
    for (const level of ['subhealthy', 'down'] as const) {
      const v = level in over ? over[level] : base[m][level];
      if (v !== null && v !== undefined) out[level] = v;
    }
    return out;
  };
  return {
    successRatio: bands('successRatio'),
    p99Ms: bands('p99Ms'),
    cpu: bands('cpu'),
    memory: bands('memory'),
    disk: bands('disk'),
    degradeAfter: o.degradeAfter ?? base.degradeAfter,
    recoverAfter: o.recoverAfter ?? base.recoverAfter,
    minDwellMs: o.minDwellMs ?? base.minDwellMs,
    reportTtlMs: o.reportTtlMs ?? base.reportTtlMs,
  };
}

function mergeLevel(base: ServicePolicy, o: PolicyOverride | undefined): ServicePolicy {
  if (o === undefined) return base;
  return { health: mergeThresholds(base.health, o.health), alerts: { ...base.alerts, ...o.alerts } };
}

/** The thresholds in force for one service. */
export function resolvePolicy(policy: HealthPolicy | null, namespace: string, service: string): ServicePolicy {
  let p: ServicePolicy = { health: DEFAULT_THRESHOLDS, alerts: DEFAULT_SERVICE_ALERTS };
  if (policy === null) return p;
  p = mergeLevel(p, policy.defaults);
  p = mergeLevel(p, policy.namespaces?.[namespace]);
  return mergeLevel(p, policy.services?.[`${namespace}/${service}`]);
}

export function resolveClusterAlerts(policy: HealthPolicy | null): ClusterAlertThresholds {
  return { ...DEFAULT_CLUSTER_ALERTS, ...policy?.cluster };
}

/**
 * Resolves per service and remembers the answers until the policy object changes (the
 * leader asks on every report). `current` is read on every call, so a newly applied policy
 * takes effect at once.
 */
export class PolicyResolver {
  #policy: HealthPolicy | null | undefined = undefined;
  readonly #cache = new Map<string, ServicePolicy>();

  constructor(private readonly current: () => HealthPolicy | null) {}

  resolve(namespace: string, service: string): ServicePolicy {
    const policy = this.current();
    if (policy !== this.#policy) {
      this.#policy = policy;
      this.#cache.clear();
    }
    const key = `${namespace}/${service}`;
    let p = this.#cache.get(key);
    if (p === undefined) {
      p = resolvePolicy(policy, namespace, service);
      if (this.#cache.size >= 10_000) this.#cache.clear();
      this.#cache.set(key, p);
    }
    return p;
  }

  thresholds = (namespace: string, service: string): HealthThresholds => this.resolve(namespace, service).health;

  cluster(): ClusterAlertThresholds {
    return resolveClusterAlerts(this.current());
  }
}

// ---- parsing: what an admin sends -------------------------------------------------------

class Invalid extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

type Obj = Record<string, unknown>;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function obj(v: unknown, field: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Invalid(field, 'must be an object');
  return v as Obj;
}

function only(o: Obj, field: string, keys: readonly string[]): void {
  for (const k of Object.keys(o))
    if (!keys.includes(k)) throw new Invalid(`${field}.${k}`, `unknown field (known: ${keys.join(', ')})`);
}

function num(v: unknown, field: string, min: number, max: number, integer = false): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw new Invalid(field, `must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`);
  }
  return v;
}

function band(v: unknown, field: string, metric: string): Band | null {
  if (v === null) return null;
  const o = obj(v, field);
  only(o, field, ['enter', 'exit']);
  const max = metric === 'p99Ms' ? 86_400_000 : 1;
  return { enter: num(o['enter'], `${field}.enter`, 0, max), exit: num(o['exit'], `${field}.exit`, 0, max) };
}

function thresholdsOverride(v: unknown, field: string): ThresholdsOverride {
  const o = obj(v, field);
  only(o, field, [...METRICS, 'degradeAfter', 'recoverAfter', 'minDwellMs', 'reportTtlMs']);
  const out: Record<string, unknown> = {};
  for (const m of METRICS) {
    if (o[m] === undefined) continue;
    const b = obj(o[m], `${field}.${m}`);
    only(b, `${field}.${m}`, ['subhealthy', 'down']);
    const bands: Record<string, Band | null> = {};
    for (const level of ['subhealthy', 'down'] as const)
      if (b[level] !== undefined) bands[level] = band(b[level], `${field}.${m}.${level}`, m);
    out[m] = bands;
  }
  for (const k of ['degradeAfter', 'recoverAfter'] as const)
    if (o[k] !== undefined) out[k] = num(o[k], `${field}.${k}`, 1, 100, true);
  for (const k of ['minDwellMs', 'reportTtlMs'] as const)
    if (o[k] !== undefined) out[k] = num(o[k], `${field}.${k}`, 0, 86_400_000, true);
  return out as ThresholdsOverride;
}

function policyOverride(v: unknown, field: string): PolicyOverride {
  const o = obj(v, field);
  only(o, field, ['health', 'alerts']);
  const out: { health?: ThresholdsOverride; alerts?: Partial<ServiceAlertThresholds> } = {};
  if (o['health'] !== undefined) out.health = thresholdsOverride(o['health'], `${field}.health`);
  if (o['alerts'] !== undefined) {
    const a = obj(o['alerts'], `${field}.alerts`);
    only(a, `${field}.alerts`, ['minHealthy', 'maxSubhealthyFraction']);
    const alerts: { minHealthy?: number; maxSubhealthyFraction?: number } = {};
    if (a['minHealthy'] !== undefined)
      alerts.minHealthy = num(a['minHealthy'], `${field}.alerts.minHealthy`, 0, 1_000_000, true);
    if (a['maxSubhealthyFraction'] !== undefined)
      alerts.maxSubhealthyFraction = num(a['maxSubhealthyFraction'], `${field}.alerts.maxSubhealthyFraction`, 0, 1);
    out.alerts = alerts;
  }
  return out;
}

function entries(v: unknown, field: string, key: RegExp, what: string): Record<string, PolicyOverride> {
  const o = obj(v, field);
  const out: Record<string, PolicyOverride> = {};
  // Sorted: the stored document has one encoding whatever order the admin wrote.
  for (const k of Object.keys(o).sort()) {
    if (!key.test(k)) throw new Invalid(`${field}.${k}`, `must be ${what}`);
    out[k] = policyOverride(o[k], `${field}.${k}`);
  }
  return out;
}

const SERVICE_KEY = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\/[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Checks a policy document and returns it in canonical form, or the first field at fault.
 * Every namespace and service override is also checked merged over what it overrides, so
 * no stored policy can resolve to incoherent thresholds.
 */
export function parseHealthPolicy(raw: unknown): Parsed<HealthPolicy> {
  try {
    const o = obj(raw, 'policy');
    only(o, 'policy', ['defaults', 'namespaces', 'services', 'cluster']);
    const out: {
      defaults?: PolicyOverride;
      namespaces?: Record<string, PolicyOverride>;
      services?: Record<string, PolicyOverride>;
      cluster?: Partial<ClusterAlertThresholds>;
    } = {};
    if (o['defaults'] !== undefined) out.defaults = policyOverride(o['defaults'], 'policy.defaults');
    if (o['namespaces'] !== undefined)
      out.namespaces = entries(o['namespaces'], 'policy.namespaces', NAME, 'a namespace name');
    if (o['services'] !== undefined)
      out.services = entries(o['services'], 'policy.services', SERVICE_KEY, '"namespace/service"');
    if (o['cluster'] !== undefined) {
      const c = obj(o['cluster'], 'policy.cluster');
      only(c, 'policy.cluster', ['maxLagEntries', 'lagForMs', 'unreachableMs', 'noLeaderMs']);
      const cluster: Record<string, number> = {};
      if (c['maxLagEntries'] !== undefined)
        cluster.maxLagEntries = num(c['maxLagEntries'], 'policy.cluster.maxLagEntries', 1, 1e12, true);
      for (const k of ['lagForMs', 'unreachableMs', 'noLeaderMs'] as const)
        if (c[k] !== undefined) cluster[k] = num(c[k], `policy.cluster.${k}`, 0, 86_400_000, true);
      out.cluster = cluster;
    }
    const count = Object.keys(out.namespaces ?? {}).length + Object.keys(out.services ?? {}).length;
    if (count > MAX_POLICY_ENTRIES)
      throw new Invalid('policy', `at most ${MAX_POLICY_ENTRIES} namespace and service entries (got ${count})`);
    checkResolved(out);
    return { ok: true, value: out };
  } catch (err) {
    if (err instanceof Invalid) return { ok: false, field: err.field, message: err.message };
    throw err;
  }
}

function checkResolved(p: HealthPolicy): void {
  const check = (ns: string, svc: string, field: string) => {
    const bad = validateThresholds(resolvePolicy(p, ns, svc).health, field);
    if (bad) throw new Invalid(bad.field, bad.message.slice(bad.field.length + 2));
  };
  // Names that match no override resolve to the defaults alone.
  check('\u0000', '\u0000', 'policy.defaults.health');
  for (const ns of Object.keys(p.namespaces ?? {})) check(ns, '\u0000', `policy.namespaces.${ns}.health`);
  for (const key of Object.keys(p.services ?? {})) {
    const [ns = '', svc = ''] = key.split('/');
    check(ns, svc, `policy.services.${key}.health`);
  }
}
