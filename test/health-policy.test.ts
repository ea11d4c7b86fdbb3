/** The health policy an admin sets: parsing (first field at fault), canonical form, resolution order. */
import { describe, expect, it } from 'vitest';
import type { HealthPolicy } from '../src/health/index.js';
import {
  DEFAULT_CLUSTER_ALERTS,
  DEFAULT_SERVICE_ALERTS,
  DEFAULT_THRESHOLDS,
  PolicyResolver,
  parseHealthPolicy,
  resolveClusterAlerts,
  resolvePolicy,
} from '../src/health/index.js';

const POLICY: HealthPolicy = {
  defaults: { alerts: { minHealthy: 2 }, health: { minDwellMs: 30_000 } },
  namespaces: { test: { health: { minDwellMs: 0, cpu: { subhealthy: null } } } },
  services: {
    'prod/orders': {
      health: { p99Ms: { subhealthy: { enter: 250, exit: 200 } } },
      alerts: { maxSubhealthyFraction: 0.25 },
    },
    'test/search': { health: { degradeAfter: 1 } },
  },
  cluster: { maxLagEntries: 500 },
};

describe('resolvePolicy', () => {
  it('uses the built-in defaults without a policy', () => {
    expect(resolvePolicy(null, 'prod', 'orders')).toEqual({
      health: DEFAULT_THRESHOLDS,
      alerts: DEFAULT_SERVICE_ALERTS,
    });
    expect(resolveClusterAlerts(null)).toEqual(DEFAULT_CLUSTER_ALERTS);
  });

  it('layers defaults, then namespace, then service, field by field', () => {
    const orders = resolvePolicy(POLICY, 'prod', 'orders');
    expect(orders.health.p99Ms.subhealthy).toEqual({ enter: 250, exit: 200 });
    expect(orders.health.minDwellMs).toBe(30_000);
    expect(orders.health.successRatio).toEqual(DEFAULT_THRESHOLDS.successRatio);
    expect(orders.alerts).toEqual({ minHealthy: 2, maxSubhealthyFraction: 0.25 });
    const search = resolvePolicy(POLICY, 'test', 'search');
    expect(search.health.minDwellMs).toBe(0);
    expect(search.health.degradeAfter).toBe(1);
    expect(search.health.cpu.subhealthy).toBeUndefined(); // removed with null
    expect(resolvePolicy(POLICY, 'prod', 'payments').health.p99Ms).toEqual(DEFAULT_THRESHOLDS.p99Ms);
    expect(resolveClusterAlerts(POLICY)).toEqual({ ...DEFAULT_CLUSTER_ALERTS, maxLagEntries: 500 });
  });

  it('is remembered per service until the policy object changes', () => {
    let policy: HealthPolicy | null = POLICY;
    const r = new PolicyResolver(() => policy);
    const first = r.resolve('prod', 'orders');
    expect(r.resolve('prod', 'orders')).toBe(first);
    policy = null;
    expect(r.resolve('prod', 'orders').health).toBe(DEFAULT_THRESHOLDS);
  });
});

describe('parseHealthPolicy', () => {
  it('accepts the documented example and sorts its keys', () => {
    const out = parseHealthPolicy(
      JSON.parse(JSON.stringify({ ...POLICY, services: { 'prod/z': {}, ...POLICY.services } })),
    );
    expect(out.ok).toBe(true);
    if (out.ok) expect(Object.keys(out.value.services ?? {})).toEqual(['prod/orders', 'prod/z', 'test/search']);
  });

  const bad: [string, unknown, string][] = [
    ['not an object', [], 'policy'],
    ['an unknown top-level field', { default: {} }, 'policy.default'],
    ['an unknown metric', { defaults: { health: { cpuUsage: {} } } }, 'policy.defaults.health.cpuUsage'],
    [
      'a band without exit',
      { defaults: { health: { cpu: { subhealthy: { enter: 0.9 } } } } },
      'policy.defaults.health.cpu.subhealthy.exit',
    ],
    [
      'a ratio above 1',
      { defaults: { health: { cpu: { subhealthy: { enter: 1.5, exit: 0.8 } } } } },
      'policy.defaults.health.cpu.subhealthy.enter',
    ],
    [
      'an exit on the wrong side',
      { defaults: { health: { cpu: { subhealthy: { enter: 0.8, exit: 0.9 } } } } },
      'policy.defaults.health.cpu.subhealthy',
    ],
    [
      'a fractional degradeAfter',
      { defaults: { health: { degradeAfter: 1.5 } } },
      'policy.defaults.health.degradeAfter',
    ],
    ['a bad namespace name', { namespaces: { 'a/b': {} } }, 'policy.namespaces.a/b'],
    ['a service key without namespace', { services: { orders: {} } }, 'policy.services.orders'],
    ['a negative minHealthy', { defaults: { alerts: { minHealthy: -1 } } }, 'policy.defaults.alerts.minHealthy'],
    ['an unknown cluster field', { cluster: { lag: 1 } }, 'policy.cluster.lag'],
    // Coherent alone, incoherent over the namespace's band: caught after merging.
    [
      'a service down band that is no longer past its namespace subhealthy band',
      {
        namespaces: {
          prod: {
            health: { successRatio: { subhealthy: { enter: 0.4, exit: 0.45 }, down: { enter: 0.3, exit: 0.35 } } },
          },
        },
        services: { 'prod/orders': { health: { successRatio: { down: { enter: 0.5, exit: 0.6 } } } } },
      },
      'policy.services.prod/orders.health.successRatio.down',
    ],
  ];
  for (const [name, raw, field] of bad) {
    it(`refuses ${name}, naming ${field}`, () => {
      const out = parseHealthPolicy(raw);
      expect(out.ok).toBe(false);
      if (!out.ok) {
        expect(out.field).toBe(field);
        expect(out.message.startsWith(field)).toBe(true);
      }
    });
  }
});
