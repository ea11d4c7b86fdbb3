/** Alert rules and the engine: stable ids, fire and resolve, `for` durations, vanished services. */
import { describe, expect, it } from 'vitest';
import type { AlertSnapshot, ServiceCounts } from '../src/health/index.js';
import { AlertEngine, DEFAULT_CLUSTER_ALERTS, DEFAULT_SERVICE_ALERTS } from '../src/health/index.js';

const svc = (over: Partial<ServiceCounts> = {}): ServiceCounts => ({
  namespace: 'prod',
  service: 'orders',
  total: 3,
  healthy: 3,
  subhealthy: 0,
  suspect: 0,
  down: 0,
  ...over,
});
const members = [
  { id: 'n1', lag: 0, lastContactMs: 0 },
  { id: 'n2', lag: 0, lastContactMs: 100 },
  { id: 'n3', lag: 0, lastContactMs: 100 },
];
const snap = (over: Partial<AlertSnapshot> = {}): AlertSnapshot => ({
  services: [svc()],
  cluster: { self: 'n1', leader: 'n1', members },
  protection: [],
  ...over,
});
const engine = (minHealthy = 1) =>
  new AlertEngine({
    limits: () => ({ service: () => ({ ...DEFAULT_SERVICE_ALERTS, minHealthy }), cluster: DEFAULT_CLUSTER_ALERTS }),
    forgetServiceAfterMs: 60_000,
  });
const brief = (events: ReturnType<AlertEngine['evaluate']>) => events.map((e) => `${e.type} ${e.alert.id}`);

describe('AlertEngine', () => {
  it('is quiet when all is well', () => {
    expect(engine().evaluate(snap(), 0)).toEqual([]);
  });

  it('fires when a service has fewer healthy instances than required, and resolves when it recovers', () => {
    const e = engine(2);
    const fired = e.evaluate(snap({ services: [svc({ healthy: 1, subhealthy: 1, down: 1 })] }), 1000);
    expect(brief(fired)).toEqual(['fired service-min-healthy:prod/orders']);
    expect(fired[0]!.alert).toMatchObject({ severity: 'warning', value: 1, threshold: 2, since: 1000 });
    expect(e.evaluate(snap({ services: [svc({ healthy: 1, subhealthy: 1, down: 1 })] }), 2000)).toEqual([]); // still active: no new event
    expect(e.active()).toHaveLength(1);
    expect(brief(e.evaluate(snap(), 3000))).toEqual(['resolved service-min-healthy:prod/orders']);
    expect(e.active()).toEqual([]);
    expect(e.recent().map((x) => x.seq)).toEqual([1, 2]);
  });

  it('keeps alerting on a service whose last instance vanished, until it is forgotten', () => {
    const e = engine();
    e.evaluate(snap(), 0);
    const gone = e.evaluate(snap({ services: [] }), 1000);
    expect(brief(gone)).toEqual(['fired service-min-healthy:prod/orders']);
    expect(gone[0]!.alert.severity).toBe('critical');
    expect(e.evaluate(snap({ services: [] }), 30_000)).toEqual([]);
    expect(brief(e.evaluate(snap({ services: [] }), 61_001))).toEqual(['resolved service-min-healthy:prod/orders']);
  });

  it('fires when the subhealthy fraction passes the limit', () => {
    const e = engine();
    expect(e.evaluate(snap({ services: [svc({ healthy: 2, subhealthy: 1 })] }), 0)).toEqual([]); // 33 % is not > 50 %
    expect(brief(e.evaluate(snap({ services: [svc({ healthy: 1, subhealthy: 2 })] }), 1))).toContain(
      'fired service-subhealthy:prod/orders',
    );
  });

  it('fires while expiry protection holds instances (suspect, or the leader says so)', () => {
    const e = engine();
    expect(brief(e.evaluate(snap({ services: [svc({ healthy: 1, suspect: 2 })] }), 0))).toEqual([
      'fired expiry-protection:prod/orders',
    ]);
    expect(brief(e.evaluate(snap({ protection: [{ namespace: 'prod', service: 'orders' }] }), 1))).toEqual([]); // still protected
    expect(brief(e.evaluate(snap(), 2))).toEqual(['resolved expiry-protection:prod/orders']);
  });

  it('fires node-lagging only after the lag has lasted lagForMs', () => {
    const e = engine();
    const lagging = snap({
      cluster: {
        self: 'n1',
        leader: 'n1',
        members: [members[0]!, { id: 'n2', lag: 5000, lastContactMs: 100 }, members[2]!],
      },
    });
    expect(e.evaluate(lagging, 0)).toEqual([]);
    expect(e.evaluate(lagging, DEFAULT_CLUSTER_ALERTS.lagForMs - 1)).toEqual([]);
    expect(brief(e.evaluate(lagging, DEFAULT_CLUSTER_ALERTS.lagForMs))).toEqual(['fired node-lagging:n2']);
    // A blip resets the clock.
    const e2 = engine();
    e2.evaluate(lagging, 0);
    e2.evaluate(snap(), 1000);
    expect(e2.evaluate(lagging, DEFAULT_CLUSTER_ALERTS.lagForMs)).toEqual([]);
  });

  it('fires node-unreachable for a silent member (never for itself) and no-leader after noLeaderMs', () => {
    const e = engine();
    const silent = snap({
      cluster: {
        self: 'n1',
        leader: null,
        members: [{ id: 'n1', lag: null, lastContactMs: null }, { id: 'n2', lag: 0, lastContactMs: 9000 }, members[2]!],
      },
    });
    expect(brief(e.evaluate(silent, 0))).toEqual(['fired node-unreachable:n2']);
    expect(brief(e.evaluate(silent, DEFAULT_CLUSTER_ALERTS.noLeaderMs))).toEqual(['fired no-leader:cluster']);
    expect(brief(e.evaluate(snap(), DEFAULT_CLUSTER_ALERTS.noLeaderMs + 1))).toEqual([
      'resolved no-leader:cluster',
      'resolved node-unreachable:n2',
    ]);
  });

  it('gives a member never heard from the same grace as a silent one', () => {
    const e = engine();
    const fresh = snap({
      cluster: {
        self: 'n1',
        leader: 'n1',
        members: [members[0]!, { id: 'n2', lag: null, lastContactMs: null }, members[2]!],
      },
    });
    expect(e.evaluate(fresh, 0)).toEqual([]);
    expect(brief(e.evaluate(fresh, DEFAULT_CLUSTER_ALERTS.unreachableMs))).toEqual(['fired node-unreachable:n2']);
  });
});
