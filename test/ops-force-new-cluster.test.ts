/**
 * Disaster recovery end to end, with real processes (issue 20, "Disaster recovery";
 * docs/operations.md follows the same steps): a 3-node cluster takes writes; two nodes are
 * killed with -9 and their data deleted; the survivor restarts with --force-new-cluster
 * and becomes a one-member cluster with a new cluster id; two new members join with fresh
 * data directories; every write the survivor had committed is on all three, new writes
 * work, and an old member that comes back with its old data is refused.
 *
 * Needs the compiled CLI: `npx tsc -p tsconfig.json` first (npm test does it).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI_PATH, freePort, LocalCluster, type LocalNode } from '../scripts/local-cluster.js';
import { http, list, register, waitFor, waitForLeader } from './helpers/http.js';

let root = '';
let cluster: LocalCluster | null = null;
let stale: ChildProcess | null = null;

/** Runs `rollcall server` to its exit (for the flag's refusals, which happen before it serves). */
function serverExit(args: readonly string[]): Promise<{ code: number | null; stderr: string }> {
  const proc = spawn(process.execPath, [CLI_PATH, 'server', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve) => proc.once('exit', (code) => resolve({ code, stderr })));
}

afterAll(async () => {
  if (stale && stale.exitCode === null) stale.kill('SIGKILL');
  await cluster?.close();
  if (root) await rm(root, { recursive: true, force: true });
});

async function instanceIds(url: string, query = ''): Promise<string[]> {
  const r = await list(url, 'prod', 'orders', query);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return (r.body.instances as { id: string }[]).map((i) => i.id).sort();
}

async function addMember(via: string, n: LocalNode): Promise<void> {
  const r = await http(
    'POST',
    `${via}/v1/cluster/members`,
    { id: n.id, peerAddress: `127.0.0.1:${n.peerPort}` },
    {},
    30_000,
  );
  expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
  await waitFor(`${n.id} to become a voter`, async () => {
    const st = await http('GET', `${via}/v1/cluster`);
    return (st.body.members as { id: string; voter: boolean }[]).find((m) => m.id === n.id)?.voter === true;
  });
}

describe('rollcall server --force-new-cluster', () => {
  it('recovers a one-member cluster from a survivor, takes new members, keeps every committed write and fences the old members', async () => {
    root = await mkdtemp(join(tmpdir(), 'rollcall-dr-'));
    const logs: { id: string; line: string }[] = [];
    cluster = await LocalCluster.start({
      size: 3,
      logLevel: 'warn',
      dataRoot: join(root, 'cluster'),
      onLog: (id, line) => logs.push({ id, line }),
    });
    const c = cluster;
    const leader = await waitForLeader(c.nodes.map((n) => n.url));
    // The survivor is a follower: the one whose commit index lags the leader's.
    const survivor = c.nodes.find((n) => n.id !== leader)!;
    const lost = c.nodes.filter((n) => n.id !== survivor.id);

    const acked: string[] = [];
    for (let i = 0; i < 120; i += 20) {
      await Promise.all(
        Array.from({ length: 20 }, async (_, j) => {
          const id = `o-${i + j}`;
          const r = await register(c.node(leader).url, 'prod', 'orders', id, {
            address: '10.0.0.1',
            port: 1000 + i + j,
          });
          expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
          acked.push(id);
        }),
      );
    }
    acked.sort();
    // "Up to the survivor's commit": the survivor has applied every acknowledged write.
    await waitFor(
      'the survivor to apply every acknowledged write',
      async () => (await instanceIds(survivor.url, '?consistency=serializable')).length === acked.length,
    );

    // The disaster: a majority gone for good. One old member's data is kept aside to try
    // bringing it back later; the rest is deleted.
    for (const n of lost) await c.kill(n.id);
    const staleDir = join(root, 'stale-n');
    await cp(lost[0]!.dataDir, staleDir, { recursive: true });
    for (const n of lost) await rm(n.dataDir, { recursive: true, force: true });
    // The survivor cannot elect a leader without them: writes fail.
    const stuck = await register(survivor.url, 'prod', 'orders', 'during-outage', { address: '10.0.0.2', port: 1 });
    expect(stuck.status).toBeGreaterThanOrEqual(500);

    // Recovery, as in docs/operations.md.
    await c.kill(survivor.id);
    await c.spawnNode(survivor, ['--force-new-cluster']);
    await waitFor(
      'the survivor to lead alone',
      async () => (await http('GET', `${survivor.url}/v1/cluster`)).body.leader === survivor.id,
    );
    const alone = await http('GET', `${survivor.url}/v1/cluster`);
    expect((alone.body.members as { id: string }[]).map((m) => m.id)).toEqual([survivor.id]);
    const rewrite = logs.find(
      (l) => l.id === survivor.id && l.line.includes('--force-new-cluster: membership rewritten'),
    );
    expect(rewrite, 'the survivor logs the rewrite').toBeDefined();
    const newClusterId = (JSON.parse(rewrite!.line) as { clusterId: string }).clusterId;
    expect(newClusterId).toMatch(/^[0-9a-f]{16}$/);
    expect(await instanceIds(survivor.url)).toEqual(acked);

    // Two new members with fresh data directories and new ids.
    const n4 = await c.addNode();
    await addMember(survivor.url, n4);
    const n5 = await c.addNode();
    await addMember(n4.url, n5);
    const members = (await http('GET', `${survivor.url}/v1/cluster`)).body.members as { id: string; voter: boolean }[];
    expect(members.map((m) => [m.id, m.voter]).sort()).toEqual(
      [
        [survivor.id, true],
        [n4.id, true],
        [n5.id, true],
      ].sort(),
    );

    // New writes work (through a new member, forwarded to the leader) and reach everyone.
    const w = await register(n5.url, 'prod', 'orders', 'after-recovery', { address: '10.0.0.3', port: 1 });
    expect(w.status, JSON.stringify(w.body)).toBeLessThan(300);
    const want = [...acked, 'after-recovery'].sort();
    for (const n of [survivor, n4, n5]) expect(await instanceIds(n.url), n.id).toEqual(want);

    // A dead member brought back with its old data and its old id: the handshake refuses
    // it (another cluster id), it never hears of a leader, and the new cluster goes on.
    const lostId = lost[0]!.id;
    const staleLines: string[] = [];
    const staleHttp = await freePort();
    stale = spawn(
      process.execPath,
      [
        CLI_PATH,
        'server',
        '--id',
        lostId,
        '--data',
        staleDir,
        '--listen',
        `127.0.0.1:${staleHttp}`,
        '--peers',
        c.nodes
          .filter((n) => n.id === lostId || n.id === survivor.id || n.id === lost[1]!.id)
          .map((n) => `${n.id}=127.0.0.1:${n.peerPort}`)
          .join(','),
        '--cluster-secret',
        'local-cluster-secret',
        '--log-level',
        'warn',
        '--max-event-loop-lag-ms',
        '0',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    stale.stdout!.on('data', (b: Buffer) => staleLines.push(...b.toString().split('\n')));
    stale.stderr!.on('data', (b: Buffer) => staleLines.push(b.toString()));
    await waitFor('the old member to be refused as another cluster', () =>
      staleLines.some((l) => l.includes('CLUSTER_MISMATCH') && l.includes(`"peer":"${survivor.id}"`)),
    );
    const staleView = await http('GET', `http://127.0.0.1:${staleHttp}/v1/cluster`);
    expect(staleView.body.leader).toBeNull();
    const after = await http('GET', `${survivor.url}/v1/cluster`);
    expect((after.body.members as { id: string }[]).map((m) => m.id)).not.toContain(lostId);
    const w2 = await register(survivor.url, 'prod', 'orders', 'after-stale', { address: '10.0.0.4', port: 1 });
    expect(w2.status, JSON.stringify(w2.body)).toBeLessThan(300);
    stale.kill('SIGKILL');
  }, 120_000);

  it('refuses an empty data directory and --join, with exit code 2 and the reason', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rollcall-dr-empty-'));
    try {
      const base = [
        '--id',
        'n1',
        '--listen',
        `127.0.0.1:${await freePort()}`,
        '--peers',
        `n1=127.0.0.1:${await freePort()}`,
        '--cluster-secret',
        'local-cluster-secret',
        '--log-level',
        'error',
      ];
      const empty = await serverExit([...base, '--data', join(dir, 'n1'), '--force-new-cluster']);
      expect(empty.code, empty.stderr).toBe(2);
      expect(empty.stderr).toContain('holds no log');
      const joining = await serverExit([...base, '--data', join(dir, 'n1'), '--force-new-cluster', '--join']);
      expect(joining.code, joining.stderr).toBe(2);
      expect(joining.stderr).toContain('cannot be combined with --join');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
