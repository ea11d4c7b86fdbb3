/**
 * "Which token am I" and the DNS token, on a real 3-node cluster (separate processes, real
 * LevelDB, loopback TCP) started with --acl, a --token-file, the Consul API and DNS:
 *
 * - GET /v1/acl/token/self on the native API describes the calling token, never its secret:
 *   --token-file tokens (before and after bootstrap), the bootstrap admin token, read,
 *   register and namespace- and service-scoped replicated tokens, on a node other than the
 *   one that made them; a missing, unknown or revoked token is refused with 401.
 * - `rollcall acl token self` (--json and the table) and the Consul API's
 *   GET /v1/acl/token/self (Consul's ACLToken shape, SecretID `<hidden>`).
 * - DNS with access control on (asked with Debian's dig): without --dns-token-file no service
 *   name answers (and the node says so at start, naming the flag); with a scoped replicated
 *   token, names in its scope answer and the rest are NXDOMAIN; once the token is revoked,
 *   SERVFAIL; a --token-file token works as the DNS token too. No secret reaches a log.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH, freePort, LocalCluster } from '../scripts/local-cluster.js';
import { bootstrapWhenReady, http, register, waitFor } from './helpers/http.js';

const DIG = '/usr/bin/dig';
const run = promisify(execFile);
const FILE_ADMIN = 'file-admin-0123456789abcdef';
const FILE_PROD_READER = 'file-prod-reader-0123456789abcdef';

const bearer = (secret: string): Record<string, string> => ({ authorization: `Bearer ${secret}` });

/** dig's status and the data of its answer section. */
async function dig(port: number, name: string, type = 'A'): Promise<{ status: string; answers: string[] }> {
  const { stdout } = await run(DIG, ['@127.0.0.1', '-p', String(port), '+tries=1', '+time=3', name, type], {
    timeout: 15_000,
  });
  const status = /status: (\w+)/.exec(stdout)?.[1];
  if (status === undefined) throw new Error(`dig said:\n${stdout}`);
  const answers: string[] = [];
  let inAnswer = false;
  for (const line of stdout.split('\n')) {
    if (line.startsWith(';; ANSWER SECTION:')) inAnswer = true;
    else if (line.trim() === '' || line.startsWith(';')) inAnswer = false;
    else if (inAnswer) answers.push(line.split(/\s+/).slice(4).join(' '));
  }
  return { status, answers: answers.sort() };
}

/** Runs the real CLI; resolves with its exit code and output, whatever the code. */
async function cli(args: string[], token: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI_PATH, ...args], {
      env: { ...process.env, ROLLCALL_TOKEN: token },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('token self and the DNS token on a real --acl cluster', () => {
  let cluster: LocalCluster;
  let dir: string;
  let dnsPorts: number[];
  let consulPorts: number[];
  const logs: string[] = [];
  const secrets: string[] = [FILE_ADMIN, FILE_PROD_READER];
  const url = (id: string): string => cluster.node(id).url;
  const dnsPort = (id: string): number => dnsPorts[Number(id.slice(1)) - 1]!;
  const consulUrl = (id: string): string => `http://127.0.0.1:${consulPorts[Number(id.slice(1)) - 1]}`;
  const self = (id: string, secret?: string) =>
    http('GET', `${url(id)}/v1/acl/token/self`, undefined, secret === undefined ? {} : bearer(secret));
  let admin = '';

  async function createToken(via: string, body: Record<string, unknown>): Promise<{ id: string; secret: string }> {
    const r = await http('POST', `${url(via)}/v1/acl/tokens`, body, bearer(admin));
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    secrets.push(r.body.secret);
    return r.body;
  }

  /** Restarts `id` with a DNS token file holding `secret`. */
  async function restartWithDnsToken(id: string, secret: string): Promise<void> {
    const file = path.join(dir, `${id}-dns-token`);
    writeFileSync(file, `${secret}\n`, { mode: 0o600 });
    await cluster.stop(id);
    await cluster.spawnNode(cluster.node(id), ['--dns-token-file', file]);
  }

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'rollcall-token-self-'));
    const tokenFile = path.join(dir, 'tokens.json');
    writeFileSync(
      tokenFile,
      JSON.stringify([
        { token: FILE_ADMIN, role: 'admin', name: 'break-glass' },
        { token: FILE_PROD_READER, role: 'read', namespaces: ['prod'] },
      ]),
      { mode: 0o600 },
    );
    dnsPorts = [await freePort(), await freePort(), await freePort()];
    consulPorts = [await freePort(), await freePort(), await freePort()];
    cluster = await LocalCluster.start({
      size: 3,
      logLevel: 'info',
      extraArgs: ['--acl', '--token-file', tokenFile],
      nodeEnv: (id) => {
        const k = Number(id.slice(1)) - 1;
        return {
          ROLLCALL_DNS_LISTEN: `127.0.0.1:${dnsPorts[k]}`,
          ROLLCALL_CONSUL_LISTEN: `127.0.0.1:${consulPorts[k]}`,
        };
      },
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
  }, 90_000);
  afterAll(async () => {
    await cluster?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('--token-file tokens describe themselves before bootstrap: no id, no revision', async () => {
    const r = await self('n2', FILE_PROD_READER);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({ name: 'token#1', role: 'read', namespaces: ['prod'], source: 'token-file' });
    expect((await self('n3', FILE_ADMIN)).body).toEqual({ name: 'break-glass', role: 'admin', source: 'token-file' });
    // Without a token: 401 that says to bootstrap, as every route.
    const none = await self('n1');
    expect(none.status).toBe(401);
    expect(none.body.error.message).toMatch(/bootstrap/);
  });

  it('replicated tokens, made through n1, describe themselves on n2 and n3, never with a secret', async () => {
    // A new cluster raises its version to this build's once every member reported it; the
    // replicated tokens need it (409 CLUSTER_NOT_UPGRADED until then, longer on a busy machine).
    const boot = await bootstrapWhenReady(url('n1'));
    expect(boot.status, JSON.stringify(boot.body)).toBe(201);
    admin = boot.body.secret;
    secrets.push(admin);
    const me = await self('n3', admin);
    expect(me.status).toBe(200);
    expect(me.body).toEqual({
      id: boot.body.id,
      name: 'bootstrap',
      role: 'admin',
      createRevision: boot.body.createRevision,
      source: 'replicated',
    });
    const reader = await createToken('n1', { name: 'reader', role: 'read' });
    const registrar = await createToken('n1', { name: 'ci', role: 'register', namespaces: ['prod'] });
    const scoped = await createToken('n1', {
      name: 'orders-reader',
      role: 'read',
      namespaces: ['prod', 'dev'],
      servicePrefixes: ['ord'],
    });
    expect((await self('n2', reader.secret)).body).toMatchObject({ id: reader.id, role: 'read', source: 'replicated' });
    // A register token may not GET anything else, but may ask who it is.
    expect((await http('GET', `${url('n2')}/v1/cluster`, undefined, bearer(registrar.secret))).status).toBe(403);
    expect((await self('n2', registrar.secret)).body).toMatchObject({
      name: 'ci',
      role: 'register',
      namespaces: ['prod'],
    });
    const s = await self('n3', scoped.secret);
    expect(s.status).toBe(200);
    expect(s.body).toMatchObject({
      id: scoped.id,
      name: 'orders-reader',
      namespaces: ['dev', 'prod'],
      servicePrefixes: ['ord'],
      source: 'replicated',
    });
    expect(s.body.createRevision).toBeGreaterThan(me.body.createRevision);
    for (const secret of [admin, reader.secret, scoped.secret]) {
      const text = JSON.stringify((await self('n2', secret)).body);
      expect(text).not.toContain(secret);
      expect(text).not.toContain('secret');
    }
    // Unknown: 401, as on every route.
    const unknown = await self('n2', 'rc_not-a-token-at-all-000000000000');
    expect([unknown.status, unknown.body.error.code]).toEqual([401, 'UNAUTHENTICATED']);

    // Revoked through n2: refused on every node once the revoke is applied there.
    const revoke = await http('DELETE', `${url('n2')}/v1/acl/tokens/${scoped.id}`, undefined, bearer(admin));
    expect(revoke.status).toBe(200);
    expect((await self('n2', scoped.secret)).status).toBe(401);
    for (const id of ['n1', 'n3'])
      await waitFor(`${id} refuses the revoked token`, async () => (await self(id, scoped.secret)).status === 401);
  });

  it('rollcall acl token self: --json and the table, for a replicated and a --token-file token', async () => {
    const json = await cli(['acl', 'token', 'self', '--json', '--endpoints', url('n2')], admin);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ name: 'bootstrap', role: 'admin', source: 'replicated' });
    const table = await cli(['acl', 'token', 'self', '--endpoints', url('n3')], FILE_PROD_READER);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).toMatch(/ID\s+NAME\s+ROLE\s+NAMESPACES\s+SERVICE PREFIXES\s+CREATED\s+SOURCE/);
    expect(table.stdout).toMatch(/-\s+token#1\s+read\s+prod\s+\*\s+-\s+token-file/);
    const refused = await cli(['acl', 'token', 'self', '--endpoints', url('n1')], 'rc_not-a-token-at-all-000000000000');
    expect(refused.code).toBe(6);
    expect(refused.stderr).toMatch(/not valid/);
  });

  it('the Consul API answers GET /v1/acl/token/self as a Consul ACLToken, the secret hidden', async () => {
    const r = await http('GET', `${consulUrl('n2')}/v1/acl/token/self`, undefined, { 'x-consul-token': admin });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      AccessorID: expect.stringMatching(/^[0-9a-f-]{36}$/),
      SecretID: '<hidden>',
      Description: 'bootstrap',
      Policies: [{ ID: '00000000-0000-0000-0000-000000000001', Name: 'global-management' }],
      Local: false,
      Rollcall: { role: 'admin', source: 'replicated' },
    });
    expect(JSON.stringify(r.body)).not.toContain(admin);
    const file = await http('GET', `${consulUrl('n3')}/v1/acl/token/self?token=${FILE_PROD_READER}`);
    expect(file.body).toMatchObject({
      AccessorID: '',
      Description: 'token#1',
      Policies: [{ Name: 'rollcall-read' }],
      Local: true,
      CreateIndex: 0,
      Rollcall: { namespaces: ['prod'], source: 'token-file' },
    });
    const unknown = await http('GET', `${consulUrl('n1')}/v1/acl/token/self`, undefined, {
      'x-consul-token': 'rc_not-a-token-at-all-000000000000',
    });
    expect([unknown.status, unknown.body]).toEqual([403, 'ACL not found']);
    expect((await http('GET', `${consulUrl('n1')}/v1/acl/tokens`)).status).toBe(404);
  });

  describe.skipIf(!existsSync(DIG))('DNS reads with its token', () => {
    let dnsToken: { id: string; secret: string };

    it('without --dns-token-file no service name answers, and each node says so at start', async () => {
      for (const [ns, svc, id, address] of [
        ['prod', 'orders', 'o1', '10.9.0.1'],
        ['prod', 'payments', 'p1', '10.9.0.2'],
        ['dev', 'orders', 'd1', '10.9.0.3'],
      ] as const)
        expect((await register(url('n1'), ns, svc, id, { address, port: 80 }, bearer(admin))).status).toBe(200);
      // n3 has applied them (its native API lists them) and still answers nothing over DNS.
      await waitFor('n3 applied the registrations', async () => {
        const r = await http(
          'GET',
          `${url('n3')}/v1/namespaces/dev/services/orders/instances?consistency=serializable`,
          undefined,
          bearer(admin),
        );
        return r.body.instances?.length === 1;
      });
      expect(await dig(dnsPort('n3'), 'orders.service.prod.ns.consul')).toEqual({ status: 'NXDOMAIN', answers: [] });
      expect(await dig(dnsPort('n3'), 'orders.service.dev.ns.consul')).toEqual({ status: 'NXDOMAIN', answers: [] });
      for (const id of ['n1', 'n2', 'n3'])
        expect(
          logs.some((l) => l.startsWith(`${id} `) && l.includes('DNS has no token') && l.includes('--dns-token-file')),
        ).toBe(true);
    });

    it('a scoped replicated DNS token: its names answer, the rest are NXDOMAIN; revoked, SERVFAIL', async () => {
      dnsToken = await createToken('n1', {
        name: 'dns',
        role: 'read',
        namespaces: ['prod'],
        servicePrefixes: ['ord'],
      });
      await waitFor('n2 knows the DNS token', async () => (await self('n2', dnsToken.secret)).status === 200);
      await restartWithDnsToken('n2', dnsToken.secret);
      const port = dnsPort('n2');
      expect(await dig(port, 'orders.service.prod.ns.consul')).toEqual({ status: 'NOERROR', answers: ['10.9.0.1'] });
      // Names match in any case, the scope is checked on the service as registered.
      expect((await dig(port, 'ORDERS.service.PROD.ns.consul')).answers).toEqual(['10.9.0.1']);
      expect((await dig(port, 'orders.service.prod.ns.consul', 'SRV')).status).toBe('NOERROR');
      // Out of scope answers as a name that does not exist: another namespace, another service prefix.
      expect(await dig(port, 'orders.service.dev.ns.consul')).toEqual({ status: 'NXDOMAIN', answers: [] });
      expect(await dig(port, 'payments.service.prod.ns.consul')).toEqual({ status: 'NXDOMAIN', answers: [] });
      expect((await dig(port, 'nothing.service.prod.ns.consul')).status).toBe('NXDOMAIN');
      expect(logs.some((l) => l.startsWith('n2 ') && l.includes('DNS answers what its token may read'))).toBe(true);

      const revoke = await http('DELETE', `${url('n1')}/v1/acl/tokens/${dnsToken.id}`, undefined, bearer(admin));
      expect(revoke.status).toBe(200);
      await waitFor('n2 applied the revoke', async () => (await self('n2', dnsToken.secret)).status === 401);
      expect(await dig(port, 'orders.service.prod.ns.consul')).toEqual({ status: 'SERVFAIL', answers: [] });
      // Every service name, existing or not, so the answer tells nothing.
      expect((await dig(port, 'nothing.service.prod.ns.consul')).status).toBe('SERVFAIL');
      expect(logs.some((l) => l.startsWith('n2 ') && l.includes('the DNS token is not valid'))).toBe(true);
    });

    it('a --token-file token as the DNS token: its namespace answers, another does not', async () => {
      await restartWithDnsToken('n3', FILE_PROD_READER);
      const port = dnsPort('n3');
      expect(await dig(port, 'orders.service.prod.ns.consul')).toEqual({ status: 'NOERROR', answers: ['10.9.0.1'] });
      expect((await dig(port, 'payments.service.prod.ns.consul')).answers).toEqual(['10.9.0.2']);
      expect((await dig(port, 'orders.service.dev.ns.consul')).status).toBe('NXDOMAIN');
    });
  });

  it('a DNS token file the node cannot use, or one with no token checks to read it under, stops the node (exit 2)', async () => {
    const base = ['server', '--id', 'x1', '--data', path.join(dir, 'x1'), '--listen', '127.0.0.1:0'];
    const more = ['--peer-listen', '127.0.0.1:0', '--peers', 'x1=127.0.0.1:1', '--cluster-secret', 'local-secret'];
    const dnsFlags = ['--dns-listen', '127.0.0.1:0', '--dns-token-file'];
    const good = path.join(dir, 'x1-dns-token');
    writeFileSync(good, `${FILE_PROD_READER}\n`);
    const noChecks = await cli([...base, ...more, ...dnsFlags, good], '');
    expect(noChecks.code).toBe(2);
    expect(noChecks.stderr).toMatch(/--dns-token-file: needs --acl or --token-file/);
    const missing = await cli([...base, ...more, '--acl', ...dnsFlags, path.join(dir, 'nope')], '');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--dns-token-file: cannot read .*nope: ENOENT/);
    expect(`${noChecks.stderr}${missing.stderr}`).not.toContain(FILE_PROD_READER);
  });

  it('no secret appears in any node log', () => {
    expect(logs.length).toBeGreaterThan(0);
    for (const s of secrets) expect(logs.filter((l) => l.includes(s))).toEqual([]);
  });
});
