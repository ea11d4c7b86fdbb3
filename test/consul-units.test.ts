/**
 * The Consul API's pure parts: Go durations (Consul's `wait` and a check's `TTL`), the one
 * health mapping, the check record kept in metadata, the session id derived from a check
 * id, the registration reader, and the catalog index that moves only when the set of
 * services or tags changes.
 */
import { describe, expect, it } from 'vitest';
import { AnswerCache, MAX_ANSWER_CHARS, MAX_CACHED_CHARS } from '../src/consul/answer-cache.js';
import { CatalogIndex } from '../src/consul/catalog-index.js';
import { CHECK_META_KEY, readRecord, sessionIdForCheck, userMeta, withRecord } from '../src/consul/check-record.js';
import { formatGoDuration, parseGoDuration } from '../src/consul/duration.js';
import { ConsulError } from '../src/consul/errors.js';
import { parseRegistration } from '../src/consul/registration.js';
import { healthCheck, instanceStatus, serviceEntry, statusOfHealth } from '../src/consul/shapes.js';
import { isDatacenterName } from '../src/federation/config.js';
import type { Health, Instance, RegistryEvent } from '../src/registry/index.js';
import { ConfigError, resolveConfig } from '../src/server/config.js';

function inst(over: Partial<Instance> = {}): Instance {
  return {
    id: 'i1',
    namespace: 'default',
    service: 'web',
    cluster: 'default',
    address: '10.0.0.1',
    port: 80,
    weight: 100,
    tags: [],
    metadata: {},
    health: 'healthy',
    enabled: true,
    sessionId: null,
    createRevision: 1,
    modRevision: 1,
    version: 1,
    ...over,
  };
}

describe('Go durations', () => {
  it.each([
    ['0', 0],
    ['100ms', 100],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1m30s', 90_000],
    ['1h', 3_600_000],
    ['1.5s', 1500],
    ['.5s', 500],
    ['120000ms', 120_000],
    ['300us', 0.3],
    ['300µs', 0.3],
    ['300μs', 0.3],
    ['1000000ns', 1],
    ['2h45m', 9_900_000],
    ['+10s', 10_000],
    ['-1s', -1000],
  ])('parses %s', (text, ms) => {
    expect(parseGoDuration(text)).toBeCloseTo(ms, 9);
  });

  it.each(['', '10', '1.5', 's', '.s', '1d', '1 s', '10S', '1m30', 'ms10', '--1s', '1e3s', 'abc'])(
    'refuses %j',
    (text) => {
      expect(parseGoDuration(text)).toBeNull();
    },
  );

  it('formats as Go does for whole units', () => {
    expect(formatGoDuration(90_000)).toBe('1m30s');
    expect(formatGoDuration(10_000)).toBe('10s');
    expect(formatGoDuration(250)).toBe('250ms');
    expect(formatGoDuration(3_600_000)).toBe('1h0m0s');
    expect(formatGoDuration(0)).toBe('0s');
  });
});

describe('health mapping', () => {
  it.each([
    ['healthy', 'passing'],
    ['subhealthy', 'warning'],
    ['down', 'critical'],
    // Expiry protection holds the instance: a passing=1 client must not be emptied by a network fault.
    ['suspect', 'passing'],
  ] as const)('%s is %s', (health, status) => {
    expect(statusOfHealth(health)).toBe(status);
    expect(instanceStatus(inst({ health }))).toBe(status);
  });

  it('shows the worse of the health and the TTL check status', () => {
    const meta = (status: string) => ({
      [CHECK_META_KEY]: JSON.stringify({
        check: { id: 'service:i1', name: 'c', status, notes: '', output: 'note', ttlMs: 10_000 },
      }),
    });
    const cases: [Health, string, string][] = [
      ['healthy', 'passing', 'passing'],
      ['healthy', 'warning', 'warning'],
      ['healthy', 'critical', 'critical'],
      ['subhealthy', 'passing', 'warning'],
      ['down', 'warning', 'critical'],
      ['suspect', 'critical', 'critical'],
    ];
    for (const [health, check, expected] of cases)
      expect(instanceStatus(inst({ health, metadata: meta(check) }))).toBe(expected);
    const c = healthCheck(inst({ health: 'subhealthy', metadata: meta('passing') }));
    expect(c).toMatchObject({
      CheckID: 'service:i1',
      Status: 'warning',
      Output: 'Rollcall health: subhealthy',
      Type: 'ttl',
    });
  });

  it('gives an instance without a TTL check a check standing for its health', () => {
    expect(healthCheck(inst({ health: 'down' }))).toMatchObject({
      CheckID: 'rollcall:i1',
      Status: 'critical',
      ServiceID: 'i1',
      ServiceName: 'web',
      ServiceTags: [],
    });
  });

  it('never shows the reserved key as Meta and never has null lists', () => {
    const e = serviceEntry(inst({ metadata: { a: '1', [CHECK_META_KEY]: '{}' } }), 'dc1') as {
      Service: { Meta: object; Tags: unknown[] };
      Checks: unknown[];
      Node: { TaggedAddresses: Record<string, unknown> };
    };
    expect(e.Service.Meta).toEqual({ a: '1' });
    expect(e.Service.Tags).toEqual([]);
    expect(e.Checks).toHaveLength(1);
    // The Go client decodes Node.TaggedAddresses as map[string]string.
    for (const v of Object.values(e.Node.TaggedAddresses)) expect(typeof v).toBe('string');
  });
});

describe('check record and session ids', () => {
  it('round-trips through metadata and leaves the user keys alone', () => {
    const meta = withRecord(
      { a: '1' },
      {
        check: { id: 'service:x', name: 'n', status: 'critical', notes: '', output: '', ttlMs: 5000 },
        warningWeight: 3,
      },
    );
    expect(userMeta({ metadata: meta })).toEqual({ a: '1' });
    expect(readRecord({ metadata: meta })).toEqual({
      check: { id: 'service:x', name: 'n', status: 'critical', notes: '', output: '', ttlMs: 5000 },
      warningWeight: 3,
    });
    expect(withRecord(meta, { check: null, warningWeight: null })).toEqual({ a: '1' });
    expect(readRecord({ metadata: { [CHECK_META_KEY]: 'not json' } })).toEqual({ check: null, warningWeight: null });
  });

  it('derives a valid session id from any check id, per namespace', () => {
    const valid = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/;
    expect(sessionIdForCheck('default', 'service:web1')).toBe('consul:default:service:web1');
    expect(sessionIdForCheck('prod', 'service:web1')).not.toBe(sessionIdForCheck('default', 'service:web1'));
    for (const id of ['web check/1', 'x'.repeat(200), 'ünïcode', 'a b']) {
      const s = sessionIdForCheck('n'.repeat(128), id);
      expect(s).toMatch(valid);
      expect(sessionIdForCheck('n'.repeat(128), id)).toBe(s);
      expect(sessionIdForCheck('default', id)).toMatch(valid);
    }
  });
});

describe('registration', () => {
  const refused = (body: Record<string, unknown>): string => {
    try {
      parseRegistration(body);
    } catch (err) {
      expect(err).toBeInstanceOf(ConsulError);
      return `${(err as ConsulError).status} ${(err as ConsulError).message}`;
    }
    throw new Error('accepted');
  };

  it('reads PascalCase and snake_case alike, with Consul defaults', () => {
    const a = parseRegistration({ Name: 'web', Port: 80, Check: { TTL: '10s' } });
    expect(a).toMatchObject({
      service: 'web',
      id: 'web',
      port: 80,
      address: null,
      tags: [],
      meta: {},
      check: { id: 'service:web', name: "Service 'web' check", ttlMs: 10_000, status: 'critical' },
    });
    const b = parseRegistration({
      name: 'web',
      id: 'w1',
      port: 80,
      meta: { Some_Key: 'v' },
      check: { ttl: '1m30s', check_id: 'mine', status: 'passing', deregister_critical_service_after: '90m' },
    });
    expect(b).toMatchObject({
      id: 'w1',
      meta: { Some_Key: 'v' },
      check: { id: 'mine', ttlMs: 90_000, status: 'passing' },
    });
    expect(parseRegistration({ Name: 'web', Port: 1, Checks: [{ TTL: '5s' }] }).check?.id).toBe('service:web');
    expect(parseRegistration({ Name: 'web', Port: 1, Weights: { Passing: 5, Warning: 1 } })).toMatchObject({
      weight: 5,
      warningWeight: 1,
    });
  });

  it('refuses checks Rollcall does not run, naming the field', () => {
    expect(refused({ Name: 'web', Port: 80, Check: { HTTP: 'http://x/health', Interval: '10s' } })).toBe(
      '400 Check.HTTP: Rollcall runs no such checks; use a TTL check',
    );
    expect(refused({ Name: 'web', Port: 80, Checks: [{ TTL: '5s' }, { TCP: 'x:1', Interval: '5s' }] })).toMatch(
      /^400 Checks\[1\]\.TCP: /,
    );
    expect(refused({ Name: 'web', Port: 80, check: { grpc: 'x:1', interval: '5s' } })).toMatch(/^400 Check\.GRPC: /);
    expect(refused({ Name: 'web', Port: 80, Check: { Args: ['/bin/true'], Interval: '5s' } })).toMatch(
      /^400 Check\.Args: /,
    );
    expect(refused({ Name: 'web', Port: 80, Check: { Interval: '5s' } })).toMatch(/^400 Check\.TTL: required/);
    expect(refused({ Name: 'web', Port: 80, Checks: [{ TTL: '5s' }, { TTL: '6s' }] })).toMatch(
      /^400 Checks\[1\]: Rollcall takes one TTL check/,
    );
    expect(refused({ Name: 'web', Port: 80, Check: { TTL: '500ms' } })).toBe('400 Check.TTL: must be from 1s to 24h');
    expect(refused({ Name: 'web', Port: 80, Check: { TTL: '10' } })).toMatch(/^400 Check\.TTL: not a duration/);
    expect(refused({ Port: 80 })).toBe('400 Missing service name');
    expect(refused({ Name: 'web' })).toMatch(/^400 Port: /);
    expect(refused({ Name: 'web', Port: 80, Connect: { Native: true } })).toMatch(/^400 Connect: /);
    expect(refused({ Name: 'web', Port: 80, Meta: { [CHECK_META_KEY]: 'x' } })).toMatch(/reserved/);
    // A cluster still below v4 counts Rollcall's record key: 63 Meta keys beside a check.
    const meta64 = Object.fromEntries(Array.from({ length: 64 }, (_, k) => [`k${k}`, 'v']));
    expect(() => parseRegistration({ Name: 'web', Port: 80, Meta: meta64, Check: { TTL: '10s' } }, 3)).toThrow(
      /at most 63 keys with a check .* state-machine version 4/,
    );
    expect(parseRegistration({ Name: 'web', Port: 80, Meta: meta64, Check: { TTL: '10s' } }, 4).meta).toEqual(meta64);
  });
});

describe('catalog index', () => {
  const put = (revision: number, instance: Instance, previous?: Instance): RegistryEvent => ({
    type: 'put',
    revision,
    instance,
    ...(previous ? { previous } : {}),
    cause: 'register',
  });
  const del = (revision: number, instance: Instance): RegistryEvent => ({
    type: 'delete',
    revision,
    instance,
    cause: 'unregister',
  });

  it('moves only when the set of services or their tags changes', () => {
    const c = new CatalogIndex();
    c.rebuild({ listServices: () => [], listInstances: () => ({ instances: [] }) });
    const a1 = inst({ id: 'a1', tags: ['x'] });
    expect(c.apply(put(1, a1))).toBe(true);
    // Another instance with the same tags, a health flip, a port change: no change to the set.
    const a2 = inst({ id: 'a2', tags: ['x'] });
    expect(c.apply(put(2, a2))).toBe(false);
    expect(c.apply(put(3, { ...a1, health: 'down', modRevision: 3 }, a1))).toBe(false);
    expect(c.apply(put(4, { ...a2, port: 81 }, a2))).toBe(false);
    expect(c.changedAt('default')).toBe(1);
    // A new tag; then one of two instances with it goes (still there); then the last.
    expect(c.apply(put(5, { ...a2, tags: ['x', 'y'] }, a2))).toBe(true);
    expect(c.services('default')).toEqual({ web: ['x', 'y'] });
    expect(c.apply(del(6, a1))).toBe(false);
    expect(c.apply(del(7, { ...a2, tags: ['x', 'y'] }))).toBe(true);
    expect(c.services('default')).toEqual({});
    expect(c.changedAt('default')).toBe(7);
    // Disabling the only instance removes the service; another namespace is not touched.
    const b = inst({ id: 'b', service: 'api' });
    c.apply(put(8, b));
    expect(c.apply(put(9, { ...b, enabled: false }, b))).toBe(true);
    expect(c.changedAt('other')).toBe(0);
  });
});

describe('--datacenter: one rule with federation (issue 18)', () => {
  const BASE = {
    id: 'n1',
    data: '/tmp/x',
    listen: '127.0.0.1:8101',
    peers: 'n1=127.0.0.1:7101',
    'cluster-secret': 'local-secret',
  };
  it('takes letters, digits and -, at most 63 (one DNS label); a dot, an underscore or 64 characters is refused naming the flag', () => {
    expect(resolveConfig({ ...BASE, datacenter: 'eu-west-1' }, {}).consul.datacenter).toBe('eu-west-1');
    expect(resolveConfig(BASE, {}).consul.datacenter).toBe('dc1');
    for (const bad of ['eu.west', 'eu_west', 'x'.repeat(64)]) {
      expect(() => resolveConfig({ ...BASE, datacenter: bad }, {})).toThrow(ConfigError);
      expect(() => resolveConfig({ ...BASE, datacenter: bad }, {})).toThrow(/--datacenter/);
      expect(isDatacenterName(bad)).toBe(false);
    }
  });
});

describe('the shared-answer cache', () => {
  it('bounds the characters it keeps, not only the number of answers', () => {
    const cache = new AnswerCache();
    const big = 'x'.repeat(MAX_ANSWER_CHARS);
    // 4096 services' answers of 64 KiB each would pin 256 MiB: the budget keeps far less.
    for (let s = 0; s < 1024; s++) cache.put(`s\u0000default\u0000svc${s}`, 'checks', 7, big);
    expect(cache.size * MAX_ANSWER_CHARS).toBeLessThanOrEqual(16 * 1024 * 1024);
    expect(cache.chars).toBeLessThanOrEqual(MAX_CACHED_CHARS);
    expect(cache.size).toBeGreaterThan(0);
    // The last answer put is kept, and what is kept is still served at its index only.
    expect(cache.get('s\u0000default\u0000svc1023', 'checks', 7)).toBe(big);
    expect(cache.get('s\u0000default\u0000svc1023', 'checks', 8)).toBeUndefined();
    // Forgetting and replacing give the characters back.
    cache.forget('s\u0000default\u0000svc1023');
    cache.put('s\u0000default\u0000svc1022', 'checks', 8, 'y');
    cache.clear();
    expect(cache.chars).toBe(0);
    expect(cache.size).toBe(0);
  });
});
