/**
 * The TLS flags of every listener come from one table and one reader (src/security/settings.ts),
 * and --probe-listen takes a scheme: https:// serves the probes with the HTTP API's TLS, as etcd
 * serves an https --listen-metrics-urls. The flag and environment names are a contract. The
 * federation links' client side (--federation-tls-*) takes a CA alone, or a certificate with its key.
 */
import { describe, expect, it } from 'vitest';
import { NO_TLS, readFederationTlsFiles, readTlsFiles, TLS_ENV, TLS_FLAGS } from '../src/security/index.js';
import { ConfigError, probeListenSetting, resolveConfig } from '../src/server/config.js';

const fail = (setting: string, message: string): never => {
  throw new Error(`${setting}: ${message}`);
};

describe('TLS flags', () => {
  it('keeps every flag and environment name', () => {
    expect(TLS_ENV).toEqual({
      'tls-cert': 'ROLLCALL_TLS_CERT',
      'tls-key': 'ROLLCALL_TLS_KEY',
      'tls-client-ca': 'ROLLCALL_TLS_CLIENT_CA',
      'consul-tls-cert': 'ROLLCALL_CONSUL_TLS_CERT',
      'consul-tls-key': 'ROLLCALL_CONSUL_TLS_KEY',
      'consul-tls-client-ca': 'ROLLCALL_CONSUL_TLS_CLIENT_CA',
      'dns-tls-cert': 'ROLLCALL_DNS_TLS_CERT',
      'dns-tls-key': 'ROLLCALL_DNS_TLS_KEY',
      'dns-tls-client-ca': 'ROLLCALL_DNS_TLS_CLIENT_CA',
      'peer-tls-cert': 'ROLLCALL_PEER_TLS_CERT',
      'peer-tls-key': 'ROLLCALL_PEER_TLS_KEY',
      'peer-tls-ca': 'ROLLCALL_PEER_TLS_CA',
      'federation-tls-cert': 'ROLLCALL_FEDERATION_TLS_CERT',
      'federation-tls-key': 'ROLLCALL_FEDERATION_TLS_KEY',
      'federation-tls-ca': 'ROLLCALL_FEDERATION_TLS_CA',
    });
  });

  it('reads one listener by its prefix, naming the flag at fault', () => {
    const flags = { 'consul-tls-cert': 'c', 'consul-tls-key': 'k' } as Record<string, string>;
    expect(readTlsFiles(TLS_FLAGS.consul, (f) => flags[f], fail)).toEqual({ cert: 'c', key: 'k', ca: null });
    expect(readTlsFiles(TLS_FLAGS.api, (f) => flags[f], fail)).toBeNull();
    expect(() => readTlsFiles(TLS_FLAGS.dns, (f) => ({ 'dns-tls-client-ca': 'a' })[f], fail)).toThrow(
      '--dns-tls-cert: is required with --dns-tls-client-ca',
    );
    expect(() => readTlsFiles(TLS_FLAGS.api, (f) => (f === 'tls-cert' ? true : undefined), fail)).toThrow(
      '--tls-cert: expects a file name',
    );
  });
});

describe('--federation-tls-*', () => {
  const BASE = {
    id: 'n1',
    data: '/tmp/x',
    listen: '127.0.0.1:1',
    peers: 'n1=127.0.0.1:2',
    'cluster-secret': 'secret-secret',
  };
  const FED = { ...BASE, 'federation-secret': 'fed-secret-1' };

  it('a CA alone, or a certificate with its key; each half of a pair needs the other', () => {
    const read = (flags: Record<string, string>) => readFederationTlsFiles((f) => flags[f], fail);
    expect(read({})).toBeNull();
    expect(read({ 'federation-tls-ca': 'ca.pem' })).toEqual({ ca: 'ca.pem', cert: null, key: null });
    expect(read({ 'federation-tls-cert': 'c', 'federation-tls-key': 'k' })).toEqual({ ca: null, cert: 'c', key: 'k' });
    expect(() => read({ 'federation-tls-cert': 'c' })).toThrow(
      '--federation-tls-key: is required with --federation-tls-cert',
    );
    expect(() => read({ 'federation-tls-ca': 'a', 'federation-tls-key': 'k' })).toThrow(
      '--federation-tls-cert: is required with --federation-tls-key',
    );
  });

  it('come from flags or the environment, and need --federation-secret', () => {
    expect(resolveConfig(FED, {}).federation?.tls).toBeNull();
    expect(
      resolveConfig(FED, {
        ROLLCALL_FEDERATION_TLS_CA: 'ca.pem',
        ROLLCALL_FEDERATION_TLS_CERT: 'n1.pem',
        ROLLCALL_FEDERATION_TLS_KEY: 'n1-key.pem',
      }).federation?.tls,
    ).toEqual({ ca: 'ca.pem', cert: 'n1.pem', key: 'n1-key.pem' });
    expect(() => resolveConfig({ ...BASE, 'federation-tls-ca': 'ca.pem' }, {})).toThrow(ConfigError);
    expect(() => resolveConfig({ ...BASE, 'federation-tls-ca': 'ca.pem' }, {})).toThrow(
      '--federation-tls-ca: needs --federation-secret',
    );
  });
});

describe('--probe-listen', () => {
  const apiTls = { ...NO_TLS, api: { cert: 'c', key: 'k', ca: null } };

  it('is plain HTTP as HOST:PORT or http://, HTTPS as https://', () => {
    expect(probeListenSetting(undefined, NO_TLS)).toBeNull();
    expect(probeListenSetting('', NO_TLS)).toBeNull();
    expect(probeListenSetting('127.0.0.1:8701', apiTls)).toEqual({ host: '127.0.0.1', port: 8701, https: false });
    expect(probeListenSetting('http://0.0.0.0:8701', NO_TLS)).toEqual({ host: '0.0.0.0', port: 8701, https: false });
    expect(probeListenSetting('https://[::1]:8701', apiTls)).toEqual({ host: '::1', port: 8701, https: true });
  });

  it('refuses https:// without the API certificate, and what is no address', () => {
    expect(() => probeListenSetting('https://127.0.0.1:8701', NO_TLS)).toThrow(ConfigError);
    expect(() => probeListenSetting('https://127.0.0.1:8701', NO_TLS)).toThrow(/--tls-cert and --tls-key/);
    expect(() => probeListenSetting('ftp://127.0.0.1:8701', apiTls)).toThrow(/expected HOST:PORT/);
    expect(() => probeListenSetting('https://127.0.0.1', apiTls)).toThrow(/expected HOST:PORT/);
  });
});
