/**
 * TLS settings from `rollcall server` flags (src/server/config.ts reads them):
 *
 *   --tls-cert FILE --tls-key FILE [--tls-client-ca FILE]            the HTTP API over HTTPS
 *   --consul-tls-cert FILE --consul-tls-key FILE [--consul-tls-client-ca FILE]
 *                                                                     the Consul API over HTTPS
 *   --dns-tls-cert FILE --dns-tls-key FILE [--dns-tls-client-ca FILE] DNS over TLS on the DNS
 *                                                                     port's TCP side
 *   --peer-tls-cert FILE --peer-tls-key FILE --peer-tls-ca FILE       mutual TLS between nodes
 *
 * A certificate needs its key and a key its certificate; a client CA needs both. The peer
 * transport is mutual or nothing, so it needs all three. Files are only named here; they
 * are read and checked when the node starts (tls-files.ts), and again on SIGHUP.
 */
import type { TlsFiles } from './tls-files.js';

export interface TlsSettings {
  /** The HTTP API (and the monitoring page on it); null: plain HTTP. */
  readonly api: TlsFiles | null;
  /** The Consul-compatible API; null: plain HTTP. */
  readonly consul: TlsFiles | null;
  /** DNS over TCP; null: plain. */
  readonly dns: TlsFiles | null;
  /** The peer transport (ca required); null: plain TCP with the HMAC handshake only. */
  readonly peer: TlsFiles | null;
}

export const NO_TLS: TlsSettings = { api: null, consul: null, dns: null, peer: null };

/** Environment variables for the flags, as src/server/config.ts maps them. */
export const TLS_ENV: Readonly<Record<string, string>> = {
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
};

type Get = (flag: string) => string | boolean | undefined;
type Fail = (setting: string, message: string) => never;

/** Reads the TLS flags; `fail` reports a problem with the flag it concerns (ConfigError in config.ts). */
export function readTlsSettings(get: Get, fail: Fail): TlsSettings {
  const file = (flag: string): string | null => {
    const v = get(flag);
    if (v === undefined || v === '') return null;
    if (typeof v !== 'string') fail(`--${flag}`, 'expects a file name');
    return v as string;
  };
  const listener = (prefix: string, caFlag: string, caRequired: boolean): TlsFiles | null => {
    const cert = file(`${prefix}tls-cert`);
    const key = file(`${prefix}tls-key`);
    const ca = file(caFlag);
    if (cert === null && key === null && ca === null) return null;
    if (cert === null) fail(`--${prefix}tls-cert`, `is required with --${key !== null ? `${prefix}tls-key` : caFlag}`);
    if (key === null) fail(`--${prefix}tls-key`, `is required with --${prefix}tls-cert`);
    if (caRequired && ca === null)
      fail(`--${caFlag}`, `is required with --${prefix}tls-cert: peers authenticate each other (mutual TLS)`);
    return { cert: cert!, key: key!, ca };
  };
  return {
    api: listener('', 'tls-client-ca', false),
    consul: listener('consul-', 'consul-tls-client-ca', false),
    dns: listener('dns-', 'dns-tls-client-ca', false),
    peer: listener('peer-', 'peer-tls-ca', true),
  };
}
