/**
 * The DNS token file on a real node process (`rollcall server`, real LevelDB, real UDP):
 *
 * - SIGHUP reads --dns-token-file again: after the file is rewritten with another token, the
 *   next question reads with it (which names answer switches); a file that is empty, holds a
 *   token no check accepts, or one with role register keeps the token in force, with an error
 *   line naming the file and never the secret.
 * - A DNS token that can never read stops the node at start (exit 2, the flag named, as every
 *   configuration error): not in the --token-file without --acl, a register entry of the file,
 *   or with --acl a secret of no form a replicated token has. A replicated token's secret the
 *   node does not know (it may not be replicated here yet) starts it, with one warning.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH, freePort, LocalCluster } from '../scripts/local-cluster.js';
import { newTokenSecret } from '../src/server/acl.js';
import { dataOf, queryUdp } from './helpers/dns.js';
import { register, waitFor } from './helpers/http.js';

const run = promisify(execFile);
const ADMIN = 'reload-admin-0123456789abcdef';
const PROD_READER = 'reload-prod-reader-0123456789abcdef';
const DEV_READER = 'reload-dev-reader-0123456789abcdef';
const REGISTRAR = 'reload-registrar-0123456789abcdef';
const UNKNOWN = 'reload-unknown-0123456789abcdef';
const SECRETS = [ADMIN, PROD_READER, DEV_READER, REGISTRAR, UNKNOWN];

/** dns-packet decodes the response code, though its types leave it out. */
async function ask(port: number, name: string): Promise<{ rcode: string; data: string[] }> {
  const p = (await queryUdp(port, name, 'A', { timeoutMs: 5_000 })) as Awaited<ReturnType<typeof queryUdp>> & {
    rcode: string;
  };
  return { rcode: p.rcode, data: dataOf<string>(p.answers, 'A').sort() };
}

/** Runs `rollcall server` to its end (a refusal at start); its exit code and stderr. */
async function serverRefusal(args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    const { stderr } = await run(process.execPath, [CLI_PATH, 'server', ...args], { timeout: 30_000 });
    return { code: 0, stderr };
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
}

let dir: string;
let tokenFile: string;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'rollcall-dns-token-reload-'));
  tokenFile = path.join(dir, 'tokens.json');
  writeFileSync(
    tokenFile,
    JSON.stringify([
      { token: ADMIN, role: 'admin', name: 'admin' },
      { token: PROD_READER, role: 'read', namespaces: ['prod'], name: 'prod-reader' },
      { token: DEV_READER, role: 'read', namespaces: ['dev'], name: 'dev-reader' },
      { token: REGISTRAR, role: 'register', name: 'registrar' },
    ]),
    { mode: 0o600 },
  );
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('SIGHUP reloads --dns-token-file on a running node', () => {
  let cluster: LocalCluster;
  let dnsPort: number;
  let dnsFile: string;
  const logs: string[] = [];
  const writeDnsToken = (text: string): void => writeFileSync(dnsFile, text, { mode: 0o600 });
  const hangUp = (): void => {
    const pid = cluster.node('n1').proc?.pid;
    if (pid === undefined) throw new Error('n1 is not running');
    process.kill(pid, 'SIGHUP');
  };
  /** SIGHUP, then until the node logs a new line containing `text`. */
  const reloadUntilLogged = async (text: string): Promise<string> => {
    const seen = logs.length;
    hangUp();
    return waitFor(`the node logs ${text}`, () => logs.slice(seen).find((l) => l.includes(text)));
  };

  beforeAll(async () => {
    dnsFile = path.join(dir, 'dns-token');
    writeDnsToken(`${PROD_READER}\n`);
    dnsPort = await freePort();
    cluster = await LocalCluster.start({
      size: 1,
      logLevel: 'info',
      extraArgs: ['--token-file', tokenFile, '--dns-token-file', dnsFile],
      nodeEnv: () => ({ ROLLCALL_DNS_LISTEN: `127.0.0.1:${dnsPort}` }),
      onLog: (_id, line) => logs.push(line),
    });
    const url = cluster.node('n1').url;
    const admin = { authorization: `Bearer ${ADMIN}` };
    await waitFor('the node takes writes', async () => {
      const r = await register(url, 'prod', 'orders', 'p1', { address: '10.7.0.1', port: 80 }, admin);
      return r.status === 200 ? true : undefined;
    });
    expect((await register(url, 'dev', 'orders', 'd1', { address: '10.7.0.2', port: 80 }, admin)).status).toBe(200);
  }, 90_000);
  afterAll(async () => {
    await cluster?.close();
  });

  it('a rewritten file switches which names answer once the node gets SIGHUP', async () => {
    expect(await ask(dnsPort, 'orders.service.prod.ns.consul')).toEqual({ rcode: 'NOERROR', data: ['10.7.0.1'] });
    expect(await ask(dnsPort, 'orders.service.dev.ns.consul')).toEqual({ rcode: 'NXDOMAIN', data: [] });

    writeDnsToken(`${DEV_READER}\n`);
    // Not before the signal: the file is read at start and on SIGHUP only.
    expect((await ask(dnsPort, 'orders.service.prod.ns.consul')).rcode).toBe('NOERROR');
    const line = await reloadUntilLogged('DNS token reloaded');
    expect(JSON.parse(line)).toMatchObject({ level: 30, part: 'dns', file: dnsFile });
    expect(await ask(dnsPort, 'orders.service.dev.ns.consul')).toEqual({ rcode: 'NOERROR', data: ['10.7.0.2'] });
    expect(await ask(dnsPort, 'orders.service.prod.ns.consul')).toEqual({ rcode: 'NXDOMAIN', data: [] });
    expect(logs.some((l) => l.includes('DNS answers what its token may read') && l.includes('dev-reader'))).toBe(true);
  });

  it.each([
    ['empty', '', 'must hold one token secret'],
    ['holding a token no check accepts', `${UNKNOWN}\n`, 'holds none of the --token-file tokens'],
    ['holding a register token', `${REGISTRAR}\n`, 'has role register'],
  ])('a file %s keeps the token in force, with an error naming the file', async (_what, text, problem) => {
    writeDnsToken(text);
    const line = await reloadUntilLogged('DNS token reload refused');
    expect(JSON.parse(line)).toMatchObject({ level: 50, part: 'dns', flag: '--dns-token-file', file: dnsFile });
    expect(line).toContain(problem);
    expect(await ask(dnsPort, 'orders.service.dev.ns.consul')).toEqual({ rcode: 'NOERROR', data: ['10.7.0.2'] });
    expect((await ask(dnsPort, 'orders.service.prod.ns.consul')).rcode).toBe('NXDOMAIN');
  });

  it('the node goes on serving, and no secret reaches its log', async () => {
    writeDnsToken(`${PROD_READER}\n`);
    await reloadUntilLogged('DNS token reloaded');
    expect((await ask(dnsPort, 'orders.service.prod.ns.consul')).data).toEqual(['10.7.0.1']);
    expect(cluster.node('n1').proc?.exitCode).toBe(null);
    for (const s of SECRETS) expect(logs.filter((l) => l.includes(s))).toEqual([]);
  });
});

describe('a DNS token that can never read stops the node at start', () => {
  const base = (id: string): string[] => [
    '--id',
    id,
    '--data',
    path.join(dir, id),
    '--listen',
    '127.0.0.1:0',
    '--peer-listen',
    '127.0.0.1:0',
    '--peers',
    `${id}=127.0.0.1:1`,
    '--cluster-secret',
    'local-secret',
    '--dns-listen',
    '127.0.0.1:0',
  ];
  const dnsTokenFile = (name: string, secret: string): string => {
    const file = path.join(dir, name);
    writeFileSync(file, `${secret}\n`, { mode: 0o600 });
    return file;
  };

  it.each([
    [
      'no --acl, and not in the --token-file',
      ['--token-file', 'TOKENS'],
      UNKNOWN,
      /--dns-token-file: .* holds none of the --token-file tokens, and without --acl there is no other token/,
    ],
    [
      'a register entry of the --token-file (with --acl too)',
      ['--acl', '--token-file', 'TOKENS'],
      REGISTRAR,
      /--dns-token-file: .* the token registrar in --token-file has role register, which may not read/,
    ],
    [
      '--acl, and no replicated token could have this secret',
      ['--acl'],
      UNKNOWN,
      /--dns-token-file: .* nor a replicated token secret \(rc_ and 43 characters/,
    ],
    ['no token checks at all', [], PROD_READER, /--dns-token-file: needs --acl or --token-file/],
  ])('%s: exit 2, the flag named, the secret not', async (_case, checks, secret, message) => {
    const file = dnsTokenFile(`never-${secret.slice(7, 12)}-${checks.length}`, secret);
    const args = [...base('x1'), ...checks.map((a) => (a === 'TOKENS' ? tokenFile : a)), '--dns-token-file', file];
    const { code, stderr } = await serverRefusal(args);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    for (const s of SECRETS) expect(stderr).not.toContain(s);
  });

  it('--acl and a replicated secret this node does not know: it starts, warns once, and answers SERVFAIL', async () => {
    const secret = newTokenSecret().secret;
    const dnsPort = await freePort();
    const logs: string[] = [];
    const cluster = await LocalCluster.start({
      size: 1,
      logLevel: 'info',
      extraArgs: ['--acl', '--dns-token-file', dnsTokenFile('not-yet-replicated', secret)],
      nodeEnv: () => ({ ROLLCALL_DNS_LISTEN: `127.0.0.1:${dnsPort}` }),
      onLog: (_id, line) => logs.push(line),
    });
    try {
      const warned = (): string[] => logs.filter((l) => l.includes('the DNS token is not valid on this node'));
      // Said at start, before any question.
      await waitFor('the warning at start', () => warned().length === 1);
      for (const name of ['orders.service.consul', 'web.service.prod.ns.consul'])
        expect((await ask(dnsPort, name)).rcode).toBe('SERVFAIL');
      expect(warned()).toHaveLength(1);
      expect(JSON.parse(warned()[0]!)).toMatchObject({ level: 40, part: 'dns', flag: '--dns-token-file' });
      expect(logs.filter((l) => l.includes(secret))).toEqual([]);
    } finally {
      await cluster.close();
    }
  }, 90_000);
});
