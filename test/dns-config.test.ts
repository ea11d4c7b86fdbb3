/**
 * The DNS flags as `rollcall server` reads them (src/server/config.ts): off by default,
 * from a flag or ROLLCALL_DNS_*, and a clear error naming the flag for a bad value.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, resolveConfig } from '../src/server/config.js';

const BASE = {
  id: 'n1',
  data: '/tmp/x',
  listen: '127.0.0.1:8101',
  peers: 'n1=127.0.0.1:7101',
  'cluster-secret': 'local-secret',
};

describe('DNS flags', () => {
  it('off by default: domain consul, TTL 0', () => {
    expect(resolveConfig(BASE, {}).dns).toEqual({ listen: null, domain: 'consul', ttl: 0 });
  });

  it('from flags, and from the environment', () => {
    expect(
      resolveConfig(
        { ...BASE, 'dns-listen': '127.0.0.1:8601', 'dns-domain': 'Rollcall.Internal.', 'dns-ttl': '30' },
        {},
      ).dns,
    ).toEqual({
      listen: { host: '127.0.0.1', port: 8601 },
      domain: 'rollcall.internal',
      ttl: 30,
    });
    expect(resolveConfig(BASE, { ROLLCALL_DNS_LISTEN: '0.0.0.0:53', ROLLCALL_DNS_TTL: '5' }).dns).toEqual({
      listen: { host: '0.0.0.0', port: 53 },
      domain: 'consul',
      ttl: 5,
    });
  });

  it.each([
    ['dns-listen', 'nowhere', '--dns-listen'],
    ['dns-domain', 'bad domain', '--dns-domain'],
    ['dns-domain', 'a..b', '--dns-domain'],
    ['dns-ttl', '-1', '--dns-ttl'],
    ['dns-ttl', '1.5', '--dns-ttl'],
    ['dns-ttl', 'soon', '--dns-ttl'],
  ])('--%s %j is refused, naming the flag', (flag, value, setting) => {
    let caught: unknown;
    try {
      resolveConfig({ ...BASE, [flag]: value }, {});
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).setting).toBe(setting);
  });
});
