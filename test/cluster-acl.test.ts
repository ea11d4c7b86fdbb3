/**
 * Replicated access tokens on a real 3-node cluster started with --acl (docs/security.md,
 * "Access control"): before bootstrap only the probes, the API description and the bootstrap
 * answer; bootstrap succeeds once; a token created through one node works at once on
 * another (the lookup waits for a read barrier on a miss); a revoke through one node is
 * refused everywhere once applied; the same after a restart and after a snapshot install;
 * no secret is in any file of the data directories or in the logs; audit lines name the
 * token, never the secret; failed authentication is rate-limited per address.
 */
import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH, LocalCluster } from '../scripts/local-cluster.js';
import { bootstrapWhenReady, http, waitFor } from './helpers/http.js';

let cluster: LocalCluster;
const logs: string[] = [];
const secrets: string[] = [];
const bearer = (secret: string): Record<string, string> => ({ authorization: `Bearer ${secret}` });
const url = (id: string): string => cluster.node(id).url;

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...(await filesUnder(p)));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

async function createToken(
  via: string,
  admin: string,
  body: Record<string, unknown>,
): Promise<{ id: string; secret: string }> {
  const r = await http('POST', `${url(via)}/v1/acl/tokens`, body, bearer(admin));
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  secrets.push(r.body.secret);
  return r.body;
}

/** Runs the CLI; resolves with its exit code and output, whatever the code. */
async function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI_PATH, ...args], {
      env: { ...process.env, ROLLCALL_TOKEN: '', ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const status = async (id: string, secret: string, route = '/v1/cluster'): Promise<number> =>
  (await http('GET', `${url(id)}${route}`, undefined, bearer(secret))).status;

beforeAll(async () => {
  cluster = await LocalCluster.start({
    size: 3,
    logLevel: 'info',
    extraArgs: ['--acl', '--auth-failure-limit', '5'],
    env: { ROLLCALL_COMPACT_EVERY: '20' },
    onLog: (id, line) => logs.push(`${id} ${line}`),
  });
  await waitFor('a leader every node agrees on', async () => {
    const views = await Promise.all(
      cluster.nodes.map((n) =>
        http('GET', `${n.url}/readyz`).then((r) => (r.status === 200 ? (r.body.leader as string | null) : null)),
      ),
    );
    return views[0] && views.every((v) => v === views[0]) ? views[0] : undefined;
  });
}, 60_000);
afterAll(async () => {
  await cluster?.close();
});

describe('replicated access tokens on a real cluster (--acl)', () => {
  let admin = '';

  it('before bootstrap: 401 that says to bootstrap, probes and the API description open', async () => {
    const r = await http('GET', `${url('n2')}/v1/cluster`);
    expect(r.status).toBe(401);
    expect(r.body.error.message).toMatch(/bootstrap/);
    expect(
      (await http('GET', `${url('n2')}/v1/namespaces/prod/services/a/instances`, undefined, bearer('rc_guess'))).status,
    ).toBe(401);
    expect((await http('GET', `${url('n2')}/readyz`)).status).toBe(200);
    expect((await http('GET', `${url('n2')}/healthz`)).status).toBe(200);
    expect((await http('GET', `${url('n2')}/openapi.json`)).status).toBe(200);
  });

  it('bootstrap on n1 once; a second, through n2, is 409', async () => {
    // A new cluster raises its version to this build's once every member reported it.
    const first = await bootstrapWhenReady(url('n1'));
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expect(first.body).toMatchObject({ role: 'admin', name: 'bootstrap' });
    admin = first.body.secret;
    secrets.push(admin);
    const second = await http('POST', `${url('n2')}/v1/acl/bootstrap`, {});
    expect(second.status).toBe(409);
    expect(second.body.error.code).toBe('ACL_BOOTSTRAPPED');
    // Now a request without a token is an ordinary 401.
    const r = await http('GET', `${url('n3')}/v1/cluster`);
    expect(r.status).toBe(401);
    expect(r.body.error.message).not.toMatch(/bootstrap/);
  });

  it('a token created on n1 works at once on n3; roles and scopes hold', async () => {
    for (let i = 0; i < 5; i++) {
      const t = await createToken('n1', admin, { name: `reader-${i}`, role: 'read' });
      expect(await status('n3', t.secret)).toBe(200);
    }
    const reg = await createToken('n1', admin, {
      name: 'pay-svc',
      role: 'register',
      namespaces: ['prod'],
      servicePrefixes: ['pay'],
    });
    const put = (ns: string, svc: string) =>
      http(
        'PUT',
        `${url('n2')}/v1/namespaces/${ns}/services/${svc}/instances/i1`,
        { address: '10.0.0.1', port: 80 },
        bearer(reg.secret),
      );
    expect((await put('prod', 'payments')).status).toBe(200);
    expect((await put('prod', 'orders')).status).toBe(403);
    expect((await put('test', 'payments')).status).toBe(403);
    expect(await status('n2', reg.secret)).toBe(403); // register cannot read
  });

  it('list shows tokens without secrets; revoke on n2 is refused on n1 and n3', async () => {
    const t = await createToken('n3', admin, { name: 'to-revoke', role: 'read' });
    const listed = await http('GET', `${url('n2')}/v1/acl/tokens`, undefined, bearer(admin));
    expect(listed.status).toBe(200);
    expect(listed.body.tokens.map((x: { id: string }) => x.id)).toContain(t.id);
    for (const s of secrets) expect(JSON.stringify(listed.body)).not.toContain(s);
    expect(await status('n1', t.secret)).toBe(200);
    const revoked = await http('DELETE', `${url('n2')}/v1/acl/tokens/${t.id}`, undefined, bearer(admin));
    expect(revoked.status).toBe(200);
    expect(await status('n2', t.secret)).toBe(401);
    for (const id of ['n1', 'n3'])
      await waitFor(`${id} to refuse the revoked token`, async () =>
        (await status(id, t.secret)) === 401 ? true : undefined,
      );
    expect((await http('DELETE', `${url('n1')}/v1/acl/tokens/${t.id}`, undefined, bearer(admin))).status).toBe(404);
  });

  it('rollcall acl: bootstrap is refused a second time; token create, list, revoke', async () => {
    const again = await cli(['acl', 'bootstrap', '--endpoints', url('n3'), '--json']);
    expect(again.code, again.stderr + again.stdout).not.toBe(0);
    expect(again.stdout + again.stderr).toMatch(/ACL_BOOTSTRAPPED/);
    const made = await cli(
      [
        'acl',
        'token',
        'create',
        '--name',
        'cli-made',
        '--role',
        'read',
        '--namespace',
        'prod',
        '--endpoints',
        url('n1'),
        '--json',
      ],
      { ROLLCALL_TOKEN: admin },
    );
    expect(made.code, made.stderr).toBe(0);
    const t = JSON.parse(made.stdout) as { id: string; secret: string; namespaces: string[] };
    secrets.push(t.secret);
    expect(t.namespaces).toEqual(['prod']);
    expect(await status('n2', t.secret, '/v1/namespaces/prod/services/payments/instances')).toBe(200);
    const listed = await cli(['acl', 'token', 'list', '--endpoints', url('n2'), '--token', admin]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(t.id);
    expect(listed.stdout).not.toContain(t.secret);
    const revoked = await cli(['acl', 'token', 'revoke', t.id, '--endpoints', url('n3'), '--token', admin]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(await status('n3', t.secret, '/v1/namespaces/prod/services/payments/instances')).toBe(401);
  });

  it('after a restart and after a snapshot install the same holds', async () => {
    const kept = await createToken('n1', admin, { name: 'kept', role: 'read' });
    const gone = await createToken('n1', admin, { name: 'gone', role: 'read' });
    await cluster.stop('n3');
    await cluster.restart('n3');
    await waitFor(
      'n3 ready',
      async () => ((await http('GET', `${url('n3')}/readyz`)).status === 200 ? true : undefined),
      30_000,
    );
    expect(await status('n3', kept.secret)).toBe(200);
    expect(await status('n3', admin)).toBe(200);

    // n2 misses enough writes that the leader's log is compacted past it: it must install a snapshot.
    await cluster.stop('n2');
    const late = await createToken('n1', admin, { name: 'late', role: 'read' });
    expect((await http('DELETE', `${url('n1')}/v1/acl/tokens/${gone.id}`, undefined, bearer(admin))).status).toBe(200);
    for (let i = 0; i < 60; i++) {
      const r = await http(
        'PUT',
        `${url('n1')}/v1/namespaces/prod/services/filler/instances/f${i}`,
        { address: '10.0.0.2', port: 1000 + i },
        bearer(admin),
      );
      expect(r.status).toBe(200);
    }
    const installedBefore = logs.filter(
      (l) => l.startsWith('n2 ') && l.includes('installed a snapshot from the leader'),
    ).length;
    await cluster.restart('n2');
    await waitFor(
      'n2 to install a snapshot',
      async () =>
        logs.filter((l) => l.startsWith('n2 ') && l.includes('installed a snapshot from the leader')).length >
        installedBefore
          ? true
          : undefined,
      30_000,
    );
    expect(await status('n2', late.secret)).toBe(200);
    expect(await status('n2', kept.secret)).toBe(200);
    expect(await status('n2', gone.secret)).toBe(401);
  }, 90_000);

  it('no secret is in any file of the data directories, nor in the logs; audit lines name tokens', async () => {
    // Let compaction and memtables settle into files: a graceful stop flushes LevelDB.
    await cluster.stop('n1');
    const root = path.dirname(cluster.node('n1').dataDir);
    const files = await filesUnder(root);
    expect(files.length).toBeGreaterThan(3);
    for (const f of files) {
      const bytes = await readFile(f);
      for (const s of secrets) expect(bytes.includes(Buffer.from(s, 'utf8')), `${f} holds a token secret`).toBe(false);
    }
    for (const line of logs) for (const s of secrets) expect(line).not.toContain(s);
    const audit = logs.filter((l) => l.includes('"part":"audit"'));
    expect(
      audit.some(
        (l) =>
          l.includes('"route":"/v1/acl/tokens"') && l.includes('"principal":"bootstrap"') && l.includes('"status":201'),
      ),
    ).toBe(true);
    expect(audit.some((l) => l.includes('"result":"refused"') && l.includes('"remote"'))).toBe(true);
    await cluster.restart('n1');
    await waitFor(
      'n1 ready',
      async () => ((await http('GET', `${url('n1')}/readyz`)).status === 200 ? true : undefined),
      30_000,
    );
  }, 60_000);

  it('failed authentication is rate-limited per address (--auth-failure-limit)', async () => {
    const seen: number[] = [];
    for (let i = 0; i < 8; i++) seen.push(await status('n3', `rc_wrong-${i}`));
    expect(seen.slice(0, 5)).toEqual([401, 401, 401, 401, 401]);
    expect(seen.slice(5)).toEqual([429, 429, 429]);
    const r = await http('GET', `${url('n3')}/v1/cluster`, undefined, bearer(admin));
    expect(r.status).toBe(429);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(await status('n1', admin)).toBe(200); // per node, per address
  });
});
