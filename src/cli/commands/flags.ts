/**
 * What every user command shares: global flags, the client, output (tables or JSON), and
 * exit codes. See docs/cli.md.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ApiError, ClientClosedError, NoInstanceError, RollcallClient, RollcallError, TimeoutError, UnavailableError, UnsupportedError } from '../../client/index.js';

/** Exit codes scripts can rely on. Documented in docs/cli.md and `rollcall --help`. */
export const EXIT = {
  OK: 0,
  /** An unexpected failure (a bug, an I/O error). */
  ERROR: 1,
  /** Bad flags or arguments. */
  USAGE: 2,
  /** The instance, session or member does not exist. */
  NOT_FOUND: 3,
  /** No node could answer in time (all down, unreachable, or no leader). */
  UNAVAILABLE: 4,
  /** The server refused the request (invalid input, conflict, version mismatch, a route it lacks). */
  REJECTED: 5,
  /** Missing or wrong token (401), or the token may not do this (403). */
  DENIED: 6,
  /** A write timed out and may or may not have been applied. */
  UNKNOWN_OUTCOME: 7,
  /** `health`: the cluster works but is degraded (a node down or disconnected). */
  DEGRADED: 8,
} as const;

export const EXIT_CODES_HELP = `Exit codes:
  0  success                       5  rejected by the server (invalid input, conflict)
  1  unexpected error              6  missing or bad token (401), or not allowed (403)
  2  usage error (bad flags)       7  a write timed out: it may or may not have applied
  3  not found                     8  health: degraded (a node down or disconnected)
  4  unavailable (no node answered, or no leader)`;

export const GLOBAL_HELP = `Global options:
  --endpoints URL,...   nodes to talk to (or ROLLCALL_ENDPOINTS); default
                        http://127.0.0.1:8101,http://127.0.0.1:8102,http://127.0.0.1:8103
  --token TOKEN         bearer token (or ROLLCALL_TOKEN)
  --json                machine-readable output (one JSON document, or JSON lines for watch)
  --timeout DURATION    deadline per request, retries included (default 10s)
  -h, --help            this help`;

export const DEFAULT_ENDPOINTS = 'http://127.0.0.1:8101,http://127.0.0.1:8102,http://127.0.0.1:8103';

export class UsageError extends Error {}

export interface Io {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: Io = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
};

const GLOBAL_OPTIONS = {
  endpoints: { type: 'string' },
  token: { type: 'string' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface Globals {
  readonly endpoints: string;
  readonly token: string | undefined;
  readonly json: boolean;
  readonly timeoutMs: number;
  readonly help: boolean;
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
    parsed = parseArgs({ args: [...argv], options: { ...GLOBAL_OPTIONS, ...options }, strict: true, allowPositionals: positionals });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const v = parsed.values as Record<string, unknown>;
  const globals: Globals = {
    endpoints: (v.endpoints as string | undefined) ?? process.env.ROLLCALL_ENDPOINTS ?? DEFAULT_ENDPOINTS,
    token: (v.token as string | undefined) ?? process.env.ROLLCALL_TOKEN ?? undefined,
    json: v.json === true,
    timeoutMs: v.timeout === undefined ? 10_000 : duration(v.timeout as string, '--timeout'),
    help: v.help === true,
  };
  return { values: parsed.values as OptionValues<O>, positionals: parsed.positionals, globals };
}

export function makeClient(g: Globals): RollcallClient {
  return new RollcallClient({
    endpoints: g.endpoints,
    ...(g.token === undefined ? {} : { token: g.token }),
    requestTimeoutMs: g.timeoutMs,
    attemptTimeoutMs: Math.min(2500, g.timeoutMs),
    discoverTimeoutMs: Math.min(3000, g.timeoutMs),
  });
}

export function required(values: Record<string, unknown>, name: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v.length === 0) throw new UsageError(`--${name} is required`);
  return v;
}

export function integer(raw: string | undefined, name: string, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^-?\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer ${min}..${max}, not ${JSON.stringify(raw)}`);
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

/** A plain text table: columns padded to their widest cell, two spaces apart. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}

/**
 * Reads a JSON object from `file` (`-`: standard input) for a `set` command. The server
 * checks the document itself; this only refuses what cannot be `what` at all (UsageError).
 */
export async function readJsonDocument(file: string, what: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = file === '-' ? await readStdin() : await readFile(file, 'utf8');
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${file} is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new UsageError(`${file} must hold a JSON object (${what})`);
  return doc as Record<string, unknown>;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function jsonOut(io: Io, value: unknown): void {
  io.out(`${JSON.stringify(value, null, 2)}\n`);
}

/** Maps an SDK error to an exit code and prints it (as JSON on stderr with --json). */
export function reportError(io: Io, err: unknown, json: boolean): number {
  let code: number = EXIT.ERROR;
  let body: Record<string, unknown>;
  if (err instanceof UsageError) {
    code = EXIT.USAGE;
    body = { code: 'USAGE', message: err.message };
  } else if (err instanceof ApiError) {
    code = err.status === 401 || err.status === 403 ? EXIT.DENIED : err.status === 404 ? EXIT.NOT_FOUND : EXIT.REJECTED;
    body = { ...err.details, code: err.code, message: err.message, status: err.status };
  } else if (err instanceof TimeoutError) {
    code = err.outcomeUnknown ? EXIT.UNKNOWN_OUTCOME : EXIT.UNAVAILABLE;
    body = { code: err.code, message: err.message, outcomeUnknown: err.outcomeUnknown };
  } else if (err instanceof UnavailableError) {
    code = EXIT.UNAVAILABLE;
    body = { code: err.code, message: err.message };
  } else if (err instanceof UnsupportedError) {
    code = EXIT.REJECTED;
    body = { code: err.code, message: err.message };
  } else if (err instanceof NoInstanceError) {
    code = EXIT.NOT_FOUND;
    body = { code: err.code, message: err.message };
  } else if (err instanceof ClientClosedError) {
    code = EXIT.OK;
    return code;
  } else if (err instanceof RollcallError) {
    body = { code: err.code, message: err.message };
  } else {
    body = { code: 'ERROR', message: err instanceof Error ? (err.stack ?? err.message) : String(err) };
  }
  if (json) io.err(`${JSON.stringify({ error: body })}\n`);
  else io.err(`rollcall: ${String(body.message)}${code === EXIT.USAGE ? ' (see --help)' : ''}\n`);
  return code;
}

/** Resolves on the first SIGINT or SIGTERM (and stops listening). */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly help: string;
  run(argv: readonly string[], io: Io): Promise<number>;
}

/** Runs `body` with a client from the global flags, closes it, and maps errors to exit codes. */
export async function withClient(io: Io, g: Globals, body: (client: RollcallClient) => Promise<number>): Promise<number> {
  const client = makeClient(g);
  try {
    return await body(client);
  } catch (err) {
    return reportError(io, err, g.json);
  } finally {
    await client.close();
  }
}

export function ago(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  return `${Math.round(ms / 60_000)}m`;
}
