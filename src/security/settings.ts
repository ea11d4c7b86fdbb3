/**
 * TLS settings from `rollcall server` flags (src/server/config.ts reads them):
 *
 *   --tls-cert FILE --tls-key FILE [--tls-client-ca FILE]            the HTTP API over HTTPS
 *                                                                     (and the probe listener
 *                                                                     on an https:// --probe-listen)
 *   --consul-tls-cert FILE --consul-tls-key FILE [--consul-tls-client-ca FILE]
 *                                                                     the Consul API over HTTPS
 *   --dns-tls-cert FILE --dns-tls-key FILE [--dns-tls-client-ca FILE] DNS over TLS on the DNS
 *                                                                     port's TCP side
 *   --peer-tls-cert FILE --peer-tls-key FILE --peer-tls-ca FILE       mutual TLS between nodes
 *   [--federation-tls-ca FILE] [--federation-tls-cert FILE --federation-tls-key FILE]
 *                                                                     the client side of the links to
 *                                                                     other datacenters
 *
 * Every listener's flags follow one pattern (TLS_FLAGS), read by one function
 * (readTlsFiles): a certificate needs its key and a key its certificate; a CA needs both. The
 * peer transport is mutual or nothing, so it needs all three. Files are only named here;
 * they are read and checked when the node starts, and again on SIGHUP (tls-reloader.ts).
 */
import type { ClientTlsFiles, TlsFiles } from './tls-files.js';

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

export type TlsTargetName = keyof TlsSettings;

/** One listener's TLS flags: `--<prefix>-cert`, `--<prefix>-key` and its CA flag. */
export interface TlsListenerFlags {
  readonly prefix: string;
  /** `--<prefix>-client-ca` (clients must present a certificate; optional), or `--peer-tls-ca`. */
  readonly caFlag: string;
  /** The other side must always prove itself (the peer transport: mutual TLS or nothing). */
  readonly caRequired: boolean;
}

/** The flag names are a contract (docs/cli.md, docs/security.md): never rename one. */
export const TLS_FLAGS: { readonly [K in TlsTargetName]: TlsListenerFlags } = {
  api: { prefix: 'tls', caFlag: 'tls-client-ca', caRequired: false },
  consul: { prefix: 'consul-tls', caFlag: 'consul-tls-client-ca', caRequired: false },
  dns: { prefix: 'dns-tls', caFlag: 'dns-tls-client-ca', caRequired: false },
  peer: { prefix: 'peer-tls', caFlag: 'peer-tls-ca', caRequired: true },
};

export const NO_TLS: TlsSettings = { api: null, consul: null, dns: null, peer: null };

/**
 * The client side's flags for the links to other datacenters (src/federation/http-client.ts):
 * `--federation-tls-ca` (the CAs other datacenters' API certificates must chain to; absent:
 * the system's store) and `--federation-tls-cert`/`--federation-tls-key` (presented to a
 * datacenter whose API asks for a client certificate; absent: none). A contract too.
 */
export const FEDERATION_TLS_FLAGS = { prefix: 'federation-tls', caFlag: 'federation-tls-ca' } as const;

/** The environment variable of each TLS flag, as src/server/config.ts maps them (`tls-cert`: `ROLLCALL_TLS_CERT`). */
export const TLS_ENV: Readonly<Record<string, string>> = Object.fromEntries(
  [...Object.values(TLS_FLAGS), FEDERATION_TLS_FLAGS].flatMap((f) =>
    [`${f.prefix}-cert`, `${f.prefix}-key`, f.caFlag].map((flag) => [
      flag,
      `ROLLCALL_${flag.toUpperCase().replace(/-/g, '_')}`,
    ]),
  ),
);

type Get = (flag: string) => string | boolean | undefined;
type Fail = (setting: string, message: string) => never;

/**
 * One listener's files from its flags; null when none of them is set. `fail` reports a
 * problem with the flag it concerns (ConfigError in config.ts).
 */
export function readTlsFiles(flags: TlsListenerFlags, get: Get, fail: Fail): TlsFiles | null {
  const file = (flag: string): string | null => {
    const v = get(flag);
    if (v === undefined || v === '') return null;
    if (typeof v !== 'string') fail(`--${flag}`, 'expects a file name');
    return v as string;
  };
  const certFlag = `${flags.prefix}-cert`;
  const keyFlag = `${flags.prefix}-key`;
  const cert = file(certFlag);
  const key = file(keyFlag);
  const ca = file(flags.caFlag);
  if (cert === null && key === null && ca === null) return null;
  if (cert === null) fail(`--${certFlag}`, `is required with --${key !== null ? keyFlag : flags.caFlag}`);
  if (key === null) fail(`--${keyFlag}`, `is required with --${certFlag}`);
  if (flags.caRequired && ca === null)
    fail(`--${flags.caFlag}`, `is required with --${certFlag}: peers authenticate each other (mutual TLS)`);
  return { cert: cert!, key: key!, ca };
}

/**
 * The federation links' client TLS files (FEDERATION_TLS_FLAGS); null when none is set. A
 * CA alone is enough (trust a private CA, present no certificate); a certificate needs its
 * key and a key its certificate.
 */
export function readFederationTlsFiles(get: Get, fail: Fail): ClientTlsFiles | null {
  const file = (flag: string): string | null => {
    const v = get(flag);
    if (v === undefined || v === '') return null;
    if (typeof v !== 'string') fail(`--${flag}`, 'expects a file name');
    return v as string;
  };
  const { prefix, caFlag } = FEDERATION_TLS_FLAGS;
  const ca = file(caFlag);
  const cert = file(`${prefix}-cert`);
  const key = file(`${prefix}-key`);
  if (ca === null && cert === null && key === null) return null;
  if (cert === null && key !== null) fail(`--${prefix}-cert`, `is required with --${prefix}-key`);
  if (key === null && cert !== null) fail(`--${prefix}-key`, `is required with --${prefix}-cert`);
  return { ca, cert, key };
}

/** Reads every listener's TLS flags. */
export function readTlsSettings(get: Get, fail: Fail): TlsSettings {
  return {
    api: readTlsFiles(TLS_FLAGS.api, get, fail),
    consul: readTlsFiles(TLS_FLAGS.consul, get, fail),
    dns: readTlsFiles(TLS_FLAGS.dns, get, fail),
    peer: readTlsFiles(TLS_FLAGS.peer, get, fail),
  };
}
