/**
 * Bearer-token auth on a real 3-node cluster started with --token-file: each role against
 * each area of the API, through leader and followers (watches and forwarded writes
 * included); no token ever reaches a node's log, even at debug level; a bad token file
 * stops the node with an error that names the file and not its contents.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH, freePort, LocalCluster, type LocalNode } from '../scripts/local-cluster.js';
import { http, waitFor } from './helpers/http.js';

const TOKENS = {
  read: 'rd-7c1f0e9a44b24d0c8f3e5a61',
  register: 'rg-0b8d2c7e19f54a3e9d6c4b12',
  registerTest: 'rt-3d9a6e1b07c84f52a1e8b6d4',
  admin: 'ad-5e3a9f1c82d74b6e0a4c7d93',
};
const BAD = 'xx-9f8e7d6c5b4a39281706f5e4';
const SECRETS = [...Object.values(TOKENS), BAD];

let dir: string;
let cluster: LocalCluster;
let leader: LocalNode;
let follower: LocalNode;
const logs: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'rollcall-auth-'));
  const file = path.join(dir, 'tokens.json');
  await writeFile(
    file,
    JSON.stringify([
      { token: TOKENS.read, role: 'read', name: 'dashboards' },
      { token: TOKENS.register, role: 'register', namespaces: ['prod'], name: 'orders-service' },
      { token: TOKENS.registerTest, role: 'register', namespaces: ['test'], name: 'test-runner' },
      { token: TOKENS.admin, role: 'admin', name: 'ops' },
    ]),
  );
  cluster = await LocalCluster.start({
    size: 3,
    logLevel: 'debug',
    extraArgs: ['--token-file', file],
    onLog: (id, line) => logs.push(`${id} ${line}`),
  });
  // /readyz is open without a token and names the leader.
  const id = await waitFor('a leader every node agrees on', async () => {
    const views = await Promise.all(
      cluster.nodes.map((n) => http('GET', `${n.url}/readyz`).then((r) => r.body.leader as string | null)),
    );
    return views[0] && views.every((v) => v === views[0]) ? views[0] : undefined;
  });
  leader = cluster.node(id);
  follower = cluster.nodes.find((n) => n.id !== id)!;
});
afterAll(async () => {
  await cluster?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const as = (who: keyof typeof TOKENS | 'bad' | 'none'): Record<string, string> =>
  who === 'none' ? {} : { authorization: `Bearer ${who === 'bad' ? BAD : TOKENS[who]}` };

describe('bearer tokens on a real cluster', () => {
  it('let each role do what it may, through leader and followers', async () => {
    const instance = (ns: string) => `/v1/namespaces/${ns}/services/orders/instances/o1`;
    const body = { address: '10.0.0.1', port: 80 };
    const cases: [
      string,
      'GET' | 'PUT' | 'POST' | 'PATCH' | 'DELETE',
      string,
      unknown,
      keyof typeof TOKENS | 'bad' | 'none',
      number,
    ][] = [
      ['probe without a token', 'GET', '/readyz', undefined, 'none', 200],
      ['read without a token', 'GET', '/v1/cluster', undefined, 'none', 401],
      ['read with a bad token', 'GET', '/v1/cluster', undefined, 'bad', 401],
      ['read', 'GET', '/v1/cluster', undefined, 'read', 200],
      ['metrics', 'GET', '/metrics', undefined, 'read', 200],
      ['register cannot read', 'GET', instance('prod'), undefined, 'register', 403],
      ['read cannot register', 'PUT', instance('prod'), body, 'read', 403],
      ['register in its namespace (forwarded)', 'PUT', instance('prod'), body, 'register', 200],
      ['register outside its namespace', 'PUT', instance('test'), body, 'register', 403],
      ['admin registers anywhere', 'PUT', instance('test'), body, 'admin', 200],
      ['read reads', 'GET', instance('prod'), undefined, 'read', 200],
      ['register opens a session', 'POST', '/v1/sessions', { ttlMs: 5000 }, 'register', 201],
      ['read cannot open a session', 'POST', '/v1/sessions', { ttlMs: 5000 }, 'read', 403],
      ['register cannot PATCH', 'PATCH', instance('prod'), { weight: 1 }, 'register', 403],
      ['admin PATCHes', 'PATCH', instance('prod'), { weight: 1 }, 'admin', 200],
      ['register cannot set access rules', 'PUT', '/v1/access-rules', {}, 'register', 403],
      ['admin sets access rules', 'PUT', '/v1/access-rules', {}, 'admin', 200],
      ['register deregisters in its namespace', 'DELETE', instance('prod'), undefined, 'register', 200],
    ];
    for (const node of [leader, follower]) {
      for (const [what, method, url, payload, who, status] of cases) {
        const headers = { ...as(who), ...(method === 'PATCH' ? { 'if-match': '1' } : {}) };
        if (method === 'PUT' && url.endsWith('/o1') && who !== 'read')
          await http('DELETE', `${leader.url}${url}`, undefined, as('admin'));
        const res = await http(method, `${node.url}${url}`, payload, headers);
        expect([node.id, what, res.status], JSON.stringify(res.body)).toEqual([node.id, what, status]);
        if (status === 401) {
          expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="rollcall"/);
          expect(res.body.error.code).toBe('UNAUTHENTICATED');
        }
        if (status === 403)
          expect(res.body.error).toMatchObject({
            code: 'FORBIDDEN',
            message: expect.stringMatching(/^token (dashboards|orders-service|ops) /),
          });
      }
    }
  });

  it('keeps a namespace-limited token off the sessions of other namespaces, through leader and followers', async () => {
    // A session of prod (it holds an instance in prod), opened and used by the prod token.
    const sid = 'orders-session-1';
    expect(
      (
        await http(
          'POST',
          `${follower.url}/v1/sessions`,
          { ttlMs: 60_000 },
          { ...as('register'), 'x-rollcall-session-id': sid },
        )
      ).status,
    ).toBe(201);
    const reg = await http(
      'PUT',
      `${follower.url}/v1/namespaces/prod/services/orders/instances/e1`,
      { address: '10.0.0.7', port: 80, sessionId: sid },
      as('register'),
    );
    expect(reg.status).toBe(200);
    const report = { report: { successRatio: 0.1 } };
    const cases: [string, 'PUT' | 'DELETE', string, unknown, keyof typeof TOKENS, number][] = [
      ['another namespace keeps it alive', 'PUT', `/v1/sessions/${sid}/keepalive`, undefined, 'registerTest', 403],
      ['another namespace reports for it', 'PUT', `/v1/sessions/${sid}/keepalive`, report, 'registerTest', 403],
      [
        'another namespace attaches to it',
        'PUT',
        '/v1/namespaces/test/services/orders/instances/t1',
        { address: '10.0.0.8', port: 80, sessionId: sid },
        'registerTest',
        403,
      ],
      ['another namespace closes it', 'DELETE', `/v1/sessions/${sid}`, undefined, 'registerTest', 403],
      ['its namespace keeps it alive', 'PUT', `/v1/sessions/${sid}/keepalive`, undefined, 'register', 200],
      [
        'its namespace reports for it',
        'PUT',
        `/v1/sessions/${sid}/keepalive`,
        { report: { successRatio: 1 } },
        'register',
        200,
      ],
    ];
    for (const node of [leader, follower]) {
      for (const [what, method, url, payload, who, status] of cases) {
        const res = await http(method, `${node.url}${url}`, payload, as(who));
        expect([node.id, what, res.status], JSON.stringify(res.body)).toEqual([node.id, what, status]);
        if (status === 403)
          expect(res.body.error).toMatchObject({
            code: 'FORBIDDEN',
            message: expect.stringMatching(/^token test-runner is limited to namespaces test; session /),
          });
      }
    }
    // Nothing the refused requests asked for happened: the session and its instance are there.
    const inst = await http(
      'GET',
      `${leader.url}/v1/namespaces/prod/services/orders/instances/e1`,
      undefined,
      as('read'),
    );
    expect(inst.body.instance.sessionId).toBe(sid);
    expect(
      (await http('GET', `${leader.url}/v1/namespaces/test/services/orders/instances/t1`, undefined, as('read')))
        .status,
    ).toBe(404);
    expect((await http('DELETE', `${follower.url}/v1/sessions/${sid}`, undefined, as('register'))).body).toMatchObject({
      deleted: 1,
    });
  });

  it('opens a watch on a follower for a read token only', async () => {
    const open = (who: keyof typeof TOKENS | 'none') =>
      fetch(`${follower.url}/v1/watch?namespace=prod`, { headers: as(who), signal: AbortSignal.timeout(5000) });
    const ok = await open('read');
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toMatch(/^text\/event-stream/);
    await ok.body?.cancel();
    expect((await open('register')).status).toBe(403);
    expect((await open('none')).status).toBe(401);
  });

  it('never writes a token to the log, even at debug level', async () => {
    // A refused request is logged (at debug), by token name only.
    await waitFor('the refusals in the log', () => logs.some((l) => l.includes('request refused')));
    expect(logs.some((l) => l.includes('"principal":"orders-service"'))).toBe(true);
    expect(logs.join('\n')).toContain('bearer-token auth is on');
    for (const secret of SECRETS) {
      const leaked = logs.filter((l) => l.includes(secret) || l.includes(secret.slice(3, 15)));
      expect(leaked, `log lines with ${secret.slice(0, 3)}…`).toEqual([]);
    }
  });

  it('refuses to start with a bad token file, naming the file but not its contents', async () => {
    const bad = path.join(dir, 'bad.json');
    await writeFile(bad, `[{"token": "${TOKENS.admin}", "role": "root"`);
    const port = await freePort();
    const proc = spawn(
      process.execPath,
      [
        CLI_PATH,
        'server',
        '--id',
        'n1',
        '--data',
        path.join(dir, 'n1'),
        '--listen',
        `127.0.0.1:${port}`,
        '--peers',
        `n1=127.0.0.1:${await freePort()}`,
        '--cluster-secret',
        'local-cluster-secret',
        '--token-file',
        bad,
      ],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    proc.stdout.on('data', (c: Buffer) => (out += c.toString()));
    proc.stderr.on('data', (c: Buffer) => (out += c.toString()));
    const code = await new Promise<number | null>((r) => proc.once('exit', r));
    expect(code).toBe(2);
    expect(out).toContain(`--token-file: ${bad} is not valid JSON`);
    expect(out).not.toContain(TOKENS.admin);
  });
});
