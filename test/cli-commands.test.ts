/**
 * The `rollcall` user commands against a real 3-node cluster: human and --json output,
 * exit codes, --help on every command, foreground registration, watch, sessions, cluster
 * operations and health.
 *
 * `cli(...)` runs the real binary (exit codes, signals, stdout of a separate process);
 * `run(...)` runs the same command code in this process with captured output, which is
 * ~10x cheaper than a Node start-up, for the many checks of output and codes.
 *
 * Needs the compiled CLI: `npx tsc -p tsconfig.json` first (npm test does it).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH, LocalCluster } from '../scripts/local-cluster.js';
import { findCommand, runCommand } from '../src/cli/commands/index.js';
import { waitFor, waitForLeader } from './helpers/http.js';
import { json as reply, ScriptedHttpNode } from './scripted-http-node.js';

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

let cluster: LocalCluster;
let endpoints: string;
const children = new Set<ChildProcess>();

function start(
  args: readonly string[],
  env: Record<string, string> = {},
): { proc: ChildProcess; done: Promise<Run>; stdout: () => string } {
  const proc = spawn(process.execPath, [CLI_PATH, ...args], {
    env: { ...process.env, ROLLCALL_ENDPOINTS: endpoints, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(proc);
  let stdout = '';
  let stderr = '';
  proc.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<Run>((resolve) =>
    proc.once('exit', (code) => {
      children.delete(proc);
      resolve({ code, stdout, stderr });
    }),
  );
  return { proc, done, stdout: () => stdout };
}

/** The real binary. */
const cli = (...args: string[]) => start(args).done;

/** The same command, in this process, against the cluster (unless --endpoints is given). */
async function run(...args: string[]): Promise<Run> {
  const [name, ...rest] = args;
  let stdout = '';
  let stderr = '';
  const io = { out: (t: string) => void (stdout += t), err: (t: string) => void (stderr += t) };
  const argv = rest.includes('--endpoints') ? rest : [...rest, '--endpoints', endpoints];
  const code = await runCommand(findCommand(name!)!, argv, io);
  return { code, stdout, stderr };
}
const json = (r: Run) => JSON.parse(r.stdout) as any;

beforeAll(async () => {
  cluster = await LocalCluster.start({ size: 3, logLevel: 'warn' });
  endpoints = cluster.nodes.map((n) => n.url).join(',');
  await waitForLeader(cluster.nodes.map((n) => n.url));
});

afterAll(async () => {
  for (const c of children) c.kill('SIGKILL');
  await cluster?.close();
});

describe('rollcall --help', () => {
  it('prints usage and examples for every command, exit 0', async () => {
    const commands = ['register', 'deregister', 'get', 'list', 'watch', 'session', 'cluster', 'health'];
    const runs = await Promise.all(commands.map((c) => run(c, '--help')));
    runs.forEach((r, i) => {
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(`Usage: rollcall ${commands[i]}`);
      expect(r.stdout).toContain('Examples:');
      expect(r.stdout).toContain('--endpoints');
    });
    const top = await cli('--help');
    expect(top.code).toBe(0);
    for (const c of commands) expect(top.stdout).toContain(`  ${c} `);
    expect(top.stdout).toContain('Exit codes:');
  });
});

describe('instances', () => {
  it('register, list, get and deregister, in tables and in JSON', async () => {
    const reg = await cli(
      'register',
      '--namespace',
      'prod',
      '--service',
      'orders',
      '--id',
      'o1',
      '--address',
      '10.0.0.2',
      '--port',
      '9000',
    );
    expect(reg.code).toBe(0);
    expect(reg.stdout).toMatch(
      /^registered prod\/orders\/o1 at 10\.0\.0\.2:9000 \(cluster default, persistent, revision \d+\)$/m,
    );
    const reg2 = await run(
      'register',
      '-n',
      'prod',
      '-s',
      'orders',
      '--id',
      'o2',
      '--address',
      '10.0.0.3',
      '--port',
      '9001',
      '--cluster',
      'vip',
      '--tag',
      'canary',
      '--meta',
      'version=1.4.2',
      '--weight',
      '50',
      '--json',
    );
    expect(reg2.code).toBe(0);
    expect(json(reg2).instance).toMatchObject({
      id: 'o2',
      cluster: 'vip',
      tags: ['canary'],
      metadata: { version: '1.4.2' },
      weight: 50,
    });

    const table = await run('list', '--namespace', 'prod', '--service', 'orders');
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+CLUSTER\s+ADDRESS\s+WEIGHT\s+HEALTH\s+KIND\s+TAGS\s+REVISION$/);
    expect(lines[1]).toMatch(/^o1\s+default\s+10\.0\.0\.2:9000\s+100\s+healthy\s+persistent\s+-\s+\d+$/);
    expect(lines[2]).toMatch(/^o2\s+vip\s+10\.0\.0\.3:9001\s+50\s+healthy\s+persistent\s+canary\s+\d+$/);
    expect(lines[3]).toMatch(/^2 instances of prod\/orders at revision \d+$/);
    const listed = await run('list', '-n', 'prod', '-s', 'orders', '--cluster', 'vip', '--json');
    expect(json(listed).instances.map((i: { id: string }) => i.id)).toEqual(['o2']);
    expect(json(listed).revision).toBeGreaterThan(0);

    const got = await run('get', '-n', 'prod', '-s', 'orders', '--id', 'o2');
    expect(got.code).toBe(0);
    expect(got.stdout).toMatch(/^address\s+10\.0\.0\.3:9001$/m);
    expect(got.stdout).toMatch(/^metadata\s+version=1\.4\.2$/m);
    expect(
      json(await run('get', '-n', 'prod', '-s', 'orders', '--id', 'o1', '--json', '--serializable')).instance.port,
    ).toBe(9000);

    const missing = await cli('get', '-n', 'prod', '-s', 'orders', '--id', 'nope');
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('no instance prod/orders/nope');
    const missingJson = await run('get', '-n', 'prod', '-s', 'orders', '--id', 'nope', '--json');
    expect(missingJson.code).toBe(3);
    expect(json(missingJson).instance).toBeNull();

    const del = await run('deregister', '-n', 'prod', '-s', 'orders', '--id', 'o1');
    expect(del.code).toBe(0);
    expect(del.stdout).toMatch(/^deregistered prod\/orders\/o1 \(revision \d+\)$/m);
    const again = await run('deregister', '-n', 'prod', '-s', 'orders', '--id', 'o1', '--json');
    expect(again.code).toBe(0);
    expect(json(again).deleted).toBe(false);
  });

  it('exits 2 on usage errors, 5 when the server refuses, 4 when no node answers', async () => {
    const [noFlag, badPort, badTtl, refused, down, downJson] = await Promise.all([
      cli('get', '-n', 'prod', '-s', 'orders'),
      run('register', '-n', 'prod', '-s', 'orders', '--id', 'x', '--address', 'a', '--port', '99999'),
      run('register', '-n', 'prod', '-s', 'orders', '--id', 'x', '--address', 'a', '--port', '1', '--ttl', 'soon'),
      run('register', '-n', 'prod', '-s', 'orders', '--id', 'x', '--address', 'a', '--port', '1', '--weight', '10001'),
      start(['list', '-n', 'prod', '-s', 'orders', '--timeout', '1s'], { ROLLCALL_ENDPOINTS: 'http://127.0.0.1:1' })
        .done,
      run('list', '-n', 'prod', '-s', 'orders', '--timeout', '1s', '--json', '--endpoints', 'http://127.0.0.1:1'),
    ]);
    expect(noFlag).toMatchObject({ code: 2, stderr: expect.stringContaining('--id is required') });
    expect(badPort).toMatchObject({ code: 2, stderr: expect.stringContaining('--port must be an integer 1..65535') });
    expect(badTtl.code).toBe(2);
    expect(refused.code).toBe(2); // caught before it is sent
    expect(down).toMatchObject({ code: 4, stderr: expect.stringContaining('no node could serve') });
    expect(JSON.parse(downJson.stderr).error.code).toBe('UNAVAILABLE');
    const rejected = await run(
      'register',
      '-n',
      'prod',
      '-s',
      'orders',
      '--id',
      'x',
      '--address',
      'a',
      '--port',
      '1',
      '--meta',
      `k=${'v'.repeat(5000)}`,
      '--json',
    );
    expect(rejected.code).toBe(5);
    expect(JSON.parse(rejected.stderr).error).toMatchObject({ status: 400 });
  });

  it('exits 6 on 401/403 and 7 when a write may or may not have applied', async () => {
    const fake = await ScriptedHttpNode.start('f1');
    try {
      fake.handler = (req, res) =>
        req.headers.authorization === 'Bearer good'
          ? reply(res, 403, { error: { code: 'FORBIDDEN', message: 'token reader may not register' } })
          : reply(res, 401, { error: { code: 'UNAUTHORIZED', message: 'missing or unknown bearer token' } });
      const noToken = await run('list', '-n', 'prod', '-s', 'orders', '--endpoints', fake.url);
      expect(noToken).toMatchObject({ code: 6, stderr: expect.stringContaining('missing or unknown bearer token') });
      const wrongRole = await run(
        'deregister',
        '-n',
        'prod',
        '-s',
        'orders',
        '--id',
        'o1',
        '--token',
        'good',
        '--json',
        '--endpoints',
        fake.url,
      );
      expect(wrongRole.code).toBe(6);
      expect(JSON.parse(wrongRole.stderr).error).toMatchObject({ code: 'FORBIDDEN', status: 403 });
      fake.handler = (_req, res) => reply(res, 504, { error: { code: 'TIMEOUT', message: 'not committed in time' } });
      const unknown = await run(
        'deregister',
        '-n',
        'prod',
        '-s',
        'orders',
        '--id',
        'o1',
        '--timeout',
        '300ms',
        '--json',
        '--endpoints',
        fake.url,
      );
      expect(unknown.code).toBe(7);
      expect(JSON.parse(unknown.stderr).error).toMatchObject({ code: 'TIMEOUT', outcomeUnknown: true });
    } finally {
      await fake.close();
    }
  });

  it('register --ttl keeps the instance alive in the foreground and deregisters on SIGTERM', async () => {
    const fg = start([
      'register',
      '-n',
      'prod',
      '-s',
      'fg',
      '--id',
      'f1',
      '--address',
      '10.0.0.5',
      '--port',
      '80',
      '--ttl',
      '2s',
    ]);
    await waitFor('the registration', () => fg.stdout().includes('keeping it alive'));
    expect(fg.stdout()).toMatch(
      /registered prod\/fg\/f1 at 10\.0\.0\.5:80 \(cluster default, session s-[0-9a-f]+, ttl 2000ms, revision \d+\)/,
    );
    // Still there after more than one TTL: the keepalives work.
    const registeredAt = Date.now();
    await waitFor(
      'the instance to outlive its TTL',
      async () =>
        Date.now() > registeredAt + 2500 && (await run('get', '-n', 'prod', '-s', 'fg', '--id', 'f1')).code === 0,
    );
    fg.proc.kill('SIGTERM');
    const r = await fg.done;
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('deregistered prod/fg/f1');
    expect((await run('get', '-n', 'prod', '-s', 'fg', '--id', 'f1')).code).toBe(3);
  });

  it('watch prints changes, in lines or JSON lines, and stops after --count', async () => {
    const w = start(['watch', '-n', 'prod', '-s', 'wsvc', '--initial', '--count', '3', '--json']);
    await waitFor('the initial state', () => w.stdout().includes('"reset"'));
    await run('register', '-n', 'prod', '-s', 'wsvc', '--id', 'w1', '--address', '10.0.0.7', '--port', '80');
    await run('deregister', '-n', 'prod', '-s', 'wsvc', '--id', 'w1');
    const r = await w.done;
    expect(r.code).toBe(0);
    const events = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; revision: number });
    expect(events.map((e) => e.type)).toEqual(['reset', 'put', 'delete']);
    expect(events[1]!.revision).toBeLessThan(events[2]!.revision);

    const human = await cli(
      'watch',
      '-n',
      'prod',
      '-s',
      'wsvc',
      '--from-revision',
      String(events[1]!.revision),
      '--count',
      '2',
    );
    expect(human.code).toBe(0);
    const lines = human.stdout.trim().split('\n');
    expect(lines[0]).toMatch(
      new RegExp(
        `^\\s*${events[1]!.revision}  create  prod/wsvc/w1  10\\.0\\.0\\.7:80  cluster=default health=healthy$`,
      ),
    );
    expect(lines[1]).toMatch(/^\s*\d+ {2}delete {2}prod\/wsvc\/w1/);
  });

  it('session open, register under it, keepalive, close', async () => {
    const open = await run('session', 'open', '--ttl', '30s');
    expect(open.code).toBe(0);
    const id = open.stdout.trim();
    expect(id).toMatch(/^s-[0-9a-f]+$/);
    const reg = await run(
      'register',
      '-n',
      'prod',
      '-s',
      'sess',
      '--id',
      'x1',
      '--address',
      'a',
      '--port',
      '1',
      '--session',
      id,
    );
    expect(reg.stdout).toContain(`session ${id}`);
    expect((await run('session', 'keepalive', id)).stdout).toContain('kept alive');
    const closed = await run('session', 'close', id, '--json');
    expect(closed.code).toBe(0);
    expect(json(closed).deleted).toBe(1);
    const gone = await run('session', 'keepalive', id);
    expect(gone.code).toBe(3);
    expect((await run('session', 'bogus')).code).toBe(2);
  });
});

describe('cluster', () => {
  it('status, health, transfer, and health when a node is down', async () => {
    const st = await run('cluster', 'status');
    expect(st.code).toBe(0);
    const lines = st.stdout.trimEnd().split('\n');
    // The id `rollcall server` derived when it founded the cluster (docs/operations.md, "Cluster ids").
    expect(lines[0]).toMatch(/^leader n\d, term \d+, revision \d+, cluster id [0-9a-f]{16} \(as seen by n\d\)$/);
    expect(lines[1]).toMatch(/^ID\s+ROLE\s+VOTE\s+TERM\s+COMMIT\s+APPLIED\s+LAG\s+CONNECTED\s+CONTACT\s+HTTP$/);
    expect(lines.filter((l) => /^n\d\*/.test(l))).toHaveLength(1);
    const status = json(await run('cluster', 'status', '--json'));
    expect(status.members).toHaveLength(3);

    const healthy = await run('health');
    expect(healthy.code).toBe(0);
    expect(healthy.stdout.trim().split('\n').at(-1)).toBe('healthy');

    const leader: string = status.leader;
    const to = cluster.nodes.find((n) => n.id !== leader)!.id;
    const moved = await run('cluster', 'transfer', '--to', to);
    expect(moved).toMatchObject({ code: 0, stdout: `leadership transferred to ${to}\n` });
    await waitFor('the new leader', async () => json(await run('cluster', 'status', '--json')).leader === to);

    const victim = cluster.nodes.find((n) => n.id !== to)!;
    await cluster.kill(victim.id);
    const degraded = await cli('health', '--json');
    expect(degraded.code).toBe(8);
    const report = json(degraded);
    expect(report.status).toBe('degraded');
    expect(report.nodes.find((n: { url: string }) => n.url === victim.url).ok).toBe(false);
    const human = await run('health');
    expect(human.code).toBe(8);
    expect(human.stdout).toContain('DOWN');
    await cluster.restart(victim.id);
  });

  it('remove and add a member', async () => {
    const leader = await waitForLeader(cluster.running().map((n) => n.url));
    const victim = cluster.nodes.find((n) => n.id !== leader)!;
    await cluster.kill(victim.id);
    const removed = await run('cluster', 'remove', victim.id, '--json');
    expect(removed.code).toBe(0);
    expect(json(removed)).toMatchObject({ id: victim.id, removed: true });
    await waitFor('two members', async () => json(await run('cluster', 'status', '--json')).members.length === 2);

    // It comes back as a new, empty node that joins.
    await rm(victim.dataDir, { recursive: true, force: true });
    await cluster.spawnNode(victim, ['--join']);
    const added = await run('cluster', 'add', '--id', victim.id, '--peer-address', `127.0.0.1:${victim.peerPort}`);
    expect(added).toMatchObject({ code: 0, stdout: expect.stringContaining(`added ${victim.id}`) });
    await waitFor(
      'the new member to become a voter',
      async () =>
        json(await run('cluster', 'status', '--json')).members.some(
          (m: { id: string; voter: boolean }) => m.id === victim.id && m.voter,
        ),
      20_000,
    );
  });
});
