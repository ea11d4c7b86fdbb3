/**
 * A founding member that boots late, with real processes (docs/operations.md, "Replacing a
 * member whose data was lost"): n1 and n2 found, elect a leader and take writes while n3
 * has never started. The cluster stays below version 6 until n3 reports its build, so its
 * peers cannot tell "never started" from "wiped": that is no objection (refusing would keep
 * a member that boots a second late out for good). n3 founds, catches up, serves a
 * linearizable read, the cluster rises to 6 and n3 publishes itself, after which a wiped n3
 * is refused (exit 12) by its record.
 *
 * Needs the compiled CLI: `npx tsc -p tsconfig.json` first (npm test does it).
 */
import { readdir, rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { foundingClusterId } from '../src/storage/index.js';
import { ClusterIdentity, type FoundingState, probeFounding } from '../src/transport/index.js';
import { http, list, register, waitFor, waitForLeader } from './helpers/http.js';

const TOKEN = 'late-founder-test';
let cluster: LocalCluster;
const lines: { id: string; line: string }[] = [];

beforeAll(async () => {
  cluster = await LocalCluster.start({
    size: 3,
    deferred: ['n3'],
    logLevel: 'info',
    extraArgs: ['--initial-cluster-token', TOKEN],
    onLog: (id, line) => lines.push({ id, line }),
  });
}, 60_000);

afterAll(async () => {
  await cluster?.close();
});

const ids = (body: { instances?: { id: string }[] }) => (body.instances ?? []).map((i) => i.id).sort();
const view = async (url: string) =>
  (await http('GET', `${url}/v1/cluster`)).body as {
    clusterVersion: number;
    members: { id: string; voter: boolean; started: boolean }[];
  };

async function answerOf(peer: string, asker: string): Promise<FoundingState | null> {
  const result = await probeFounding({
    selfId: asker,
    peerId: peer,
    address: { host: '127.0.0.1', port: cluster.node(peer).peerPort },
    secret: 'local-cluster-secret',
    cluster: ClusterIdentity.of(foundingClusterId(['n1', 'n2', 'n3'], TOKEN)),
    secureContext: null,
    timeoutMs: 2_000,
  });
  return result.kind === 'answered' ? result.state : null;
}

describe('a founding member that boots late', () => {
  it('founds while its peers cannot tell, catches up, and is refused once wiped', async () => {
    const late = cluster.node('n3');
    const early = cluster.nodes.filter((n) => n !== late);
    const leader = await waitForLeader(early.map((n) => n.url));
    for (const i of [1, 2, 3])
      expect(
        (await register(cluster.node(leader).url, 'prod', 'orders', `o${i}`, { address: '10.0.0.1', port: i })).status,
      ).toBe(200);
    // n3 never reported a build: the cluster stays at version 1, and cannot say n3 never started.
    expect((await view(cluster.node(leader).url)).clusterVersion).toBe(1);
    expect(await answerOf(leader, 'n3')).toMatchObject({ pastFounding: true, started: false, clusterVersion: 1 });

    // Started as a founding member (no --join): its peers cannot tell, which is no objection.
    await cluster.spawnNode(late);
    expect(lines.some((l) => l.id === 'n3' && l.line.includes('cannot tell a member that never started'))).toBe(true);
    await waitFor('n3 serves a linearizable read of every write', async () => {
      const r = await list(late.url, 'prod', 'orders');
      return r.status === 200 && ids(r.body).join() === 'o1,o2,o3';
    });
    // Every member reported its build: the cluster rises to 6, which records them all.
    await waitFor(
      'the cluster runs at version 6',
      async () => (await view(cluster.node(leader).url)).clusterVersion === 6,
      30_000,
    );
    await waitFor('n3 recorded as started', async () => (await answerOf(leader, 'n3'))?.started === true);
    expect((await view(late.url)).members.map((m) => [m.id, m.started])).toEqual([
      ['n1', true],
      ['n2', true],
      ['n3', true],
    ]);

    // Wiped now, it is refused: its peers record it as started.
    await cluster.kill('n3');
    await rm(late.dataDir, { recursive: true, force: true });
    const wiped = await cluster.spawnNode(late).then(
      () => null,
      (err: unknown) => err as Error,
    );
    expect(wiped?.message).toMatch(/\(code 12, signal null\)/);
    expect(wiped?.message).toMatch(/records this member as started/);
    expect(await readdir(late.dataDir).catch(() => [])).toEqual([]);
    const now = await waitForLeader(early.map((n) => n.url));
    expect(
      (await register(cluster.node(now).url, 'prod', 'orders', 'o4', { address: '10.0.0.1', port: 4 })).status,
    ).toBe(200);
  }, 150_000);
});
