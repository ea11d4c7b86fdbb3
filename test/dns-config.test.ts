/**
 * The DNS flags as `rollcall server` reads them (src/server/config.ts): off by default,
 * from a flag or ROLLCALL_DNS_*, and a clear error naming the flag for a bad value; the
 * DNS token file (--dns-token-file) and what readDnsToken accepts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DnsTokenFileError, readDnsToken } from '../src/dns/index.js';
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
    expect(resolveConfig(BASE, {}).dns).toEqual({ listen: null, domain: 'consul', ttl: 0, tokenFile: null });
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
      tokenFile: null,
    });
    expect(resolveConfig(BASE, { ROLLCALL_DNS_LISTEN: '0.0.0.0:53', ROLLCALL_DNS_TTL: '5' }).dns).toEqual({
      listen: { host: '0.0.0.0', port: 53 },
      domain: 'consul',
      ttl: 5,
      tokenFile: null,
    });
  });

  it('--dns-token-file names a file (its secret is read at start, by runServer), or ROLLCALL_DNS_TOKEN_FILE', () => {
    expect(resolveConfig({ ...BASE, 'dns-token-file': '/etc/rollcall/dns-token' }, {}).dns.tokenFile).toBe(
      '/etc/rollcall/dns-token',
    );
    expect(resolveConfig(BASE, { ROLLCALL_DNS_TOKEN_FILE: '/run/secrets/dns' }).dns.tokenFile).toBe('/run/secrets/dns');
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

describe('readDnsToken', () => {
  it('reads the secret without surrounding white space; refuses a file that is not one secret, without quoting it', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'rollcall-dns-token-'));
    try {
      const file = (name: string, text: string): string => {
        const p = path.join(dir, name);
        writeFileSync(p, text);
        return p;
      };
      expect(await readDnsToken(file('ok', 'rc_0123456789abcdefghij\n'))).toBe('rc_0123456789abcdefghij');
      for (const [name, text] of [
        ['empty', ''],
        ['short', 'rc_short'],
        ['two', 'rc_0123456789abcdefghij rc_0123456789abcdefghij'],
      ] as const) {
        const err = await readDnsToken(file(name, text)).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(DnsTokenFileError);
        expect((err as Error).message).not.toContain('rc_0123456789abcdefghij');
      }
      await expect(readDnsToken(path.join(dir, 'missing'))).rejects.toThrow(/cannot read .*missing: ENOENT/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
