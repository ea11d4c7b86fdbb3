/**
 * The flags of the user commands: the global ones every command takes, parsing with
 * node:util parseArgs, and the checks for values (required, integer, duration, key=value).
 * Bad flags throw UsageError (exit code 2). See docs/cli.md.
 */
import { readFileSync } from 'node:fs';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import type { ClientTls } from '../../client/index.js';

export const GLOBAL_HELP = `Global options:
  --endpoints URL,...   nodes to talk to (or ROLLCALL_ENDPOINTS); default
                        http://127.0.0.1:8101,http://127.0.0.1:8102,http://127.0.0.1:8103
  --token TOKEN         bearer token (or ROLLCALL_TOKEN)
  --dc NAME             ask another datacenter (or ROLLCALL_DC): every request names it
                        (?dc=NAME) and the nodes forward it there (docs/federation.md)
  --cacert FILE         CA certificate (PEM) that https:// nodes' certificates chain to
                        (or ROLLCALL_CACERT); with it the default endpoints are https://
  --cert FILE --key FILE  client certificate and key (PEM) for nodes that require one
                        (or ROLLCALL_CERT, ROLLCALL_KEY)
  --json                machine-readable output (one JSON document, or JSON lines for watch)
  --timeout DURATION    deadline per request, retries included (default 10s)
  -h, --help            this help`;

export const DEFAULT_ENDPOINTS = 'http://127.0.0.1:8101,http://127.0.0.1:8102,http://127.0.0.1:8103';
/** The default endpoints when TLS files are given (npm start -- --tls). */
export const DEFAULT_TLS_ENDPOINTS = DEFAULT_ENDPOINTS.replace(/http:/g, 'https:');

/** Bad flags or arguments: reported with exit code 2 and a pointer to --help. */
export class UsageError extends Error {}

const GLOBAL_OPTIONS = {
  endpoints: { type: 'string' },
  token: { type: 'string' },
  dc: { type: 'string' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  cacert: { type: 'string' },
  cert: { type: 'string' },
  key: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface Globals {
  readonly endpoints: string;
  readonly token: string | undefined;
  /** --dc (or ROLLCALL_DC): the datacenter every request names; undefined: the endpoints' own. */
  readonly dc: string | undefined;
  readonly json: boolean;
  readonly timeoutMs: number;
  readonly help: boolean;
  /** --cacert, --cert, --key, read: PEM contents for the client; undefined when none was given. */
  readonly tls: ClientTls | undefined;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** What parseArgs yields for `O`: every flag optional; strings, booleans, or arrays of them when `multiple`. */
export type OptionValues<O> = {
  -readonly [K in keyof O]?: O[K] extends { readonly type: 'boolean' }
    ? O[K] extends { readonly multiple: true }
      ? boolean[]
      : boolean
    : O[K] extends { readonly multiple: true }
      ? string[]
      : string;
};

export interface Parsed<O> {
  readonly values: OptionValues<O>;
  readonly positionals: string[];
  readonly globals: Globals;
}

/** parseArgs with the global flags added; usage errors become UsageError. */
export function parse<O extends Options>(argv: readonly string[], options: O, positionals = false): Parsed<O> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { ...GLOBAL_OPTIONS, ...options },
      strict: true,
      allowPositionals: positionals,
    });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const v = parsed.values as Record<string, unknown>;
  const tls = tlsFiles(v);
  const globals: Globals = {
    endpoints:
      (v.endpoints as string | undefined) ??
      process.env.ROLLCALL_ENDPOINTS ??
      (tls === undefined ? DEFAULT_ENDPOINTS : DEFAULT_TLS_ENDPOINTS),
    token: (v.token as string | undefined) ?? process.env.ROLLCALL_TOKEN ?? undefined,
    dc: datacenterFlag((v.dc as string | undefined) ?? process.env.ROLLCALL_DC),
    json: v.json === true,
    timeoutMs: v.timeout === undefined ? 10_000 : duration(v.timeout as string, '--timeout'),
    help: v.help === true,
    tls,
  };
  return { values: parsed.values as OptionValues<O>, positionals: parsed.positionals, globals };
}

/** --dc NAME: a datacenter name as `--datacenter` takes it (the server checks it too); empty means none. */
function datacenterFlag(raw: string | undefined): string | undefined {
  if (raw === undefined || raw === '') return undefined;
  if (!/^[A-Za-z0-9-]{1,63}$/.test(raw))
    throw new UsageError(
      `--dc takes a datacenter name (letters, digits and '-', at most 63), not ${JSON.stringify(raw)}`,
    );
  return raw;
}

/** Reads --cacert, --cert and --key (or ROLLCALL_CACERT, ROLLCALL_CERT, ROLLCALL_KEY), like curl's flags of those names. */
function tlsFiles(v: Record<string, unknown>): ClientTls | undefined {
  const flag = (name: string, env: string): string | undefined => {
    const value = (v[name] as string | undefined) ?? process.env[env];
    return value === undefined || value === '' ? undefined : value;
  };
  const read = (name: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new UsageError(
        `--${name}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
  };
  const cacert = flag('cacert', 'ROLLCALL_CACERT');
  const cert = flag('cert', 'ROLLCALL_CERT');
  const key = flag('key', 'ROLLCALL_KEY');
  if ((cert === undefined) !== (key === undefined))
    throw new UsageError(cert === undefined ? '--key needs --cert' : '--cert needs --key');
  if (cacert === undefined && cert === undefined) return undefined;
  return {
    ...(cacert === undefined ? {} : { ca: read('cacert', cacert) }),
    ...(cert === undefined || key === undefined ? {} : { cert: read('cert', cert), key: read('key', key) }),
  };
}

export function required(values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v.length === 0) throw new UsageError(`--${name} is required`);
  return v;
}

export function integer(raw: string | undefined, name: string, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max)
    throw new UsageError(`--${name} must be an integer ${min}..${max}, not ${JSON.stringify(raw)}`);
  return n;
}

/** `500ms`, `10s`, `2m`, `1h`, or a bare number of milliseconds. */
export function duration(raw: string, name: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw.trim());
  if (!m) throw new UsageError(`${name} must be a duration like 500ms, 10s, 2m, not ${JSON.stringify(raw)}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 'ms') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * unit);
}

/** `k=v` pairs into a map. */
export function pairs(list: readonly string[] | undefined, name: string): Record<string, string> | undefined {
  if (list === undefined || list.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const item of list) {
    const i = item.indexOf('=');
    if (i <= 0) throw new UsageError(`--${name} takes key=value, not ${JSON.stringify(item)}`);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}
