/**
 * A founding member that boots late, with real processes (docs/operations.md, "Replacing a
 * member whose data was lost"): n1 and n2 found, elect a leader and take writes while n3
 * has never started. Its peers cannot tell "never started" from "wiped" while the cluster
 * runs below version 6, and it cannot reach 6 without n3's report: n3 is refused (exit 12,
 * the reason said). Removed, the two raise the cluster to 6; added back, n3 is a member its
 * peers do not record as started, so it may now found (as etcd lets a member that never
 * published in): it catches up, serves a linearizable read and publishes itself, after
 * which a wiped n3 is refused again.
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
  it('is refused below version 6; once its peers can tell, it founds and catches up', async () => {
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
    const refused = await cluster.spawnNode(late).then(
      () => null,
      (err: unknown) => err as Error,
    );
    expect(refused, 'below version 6 a late founding member is refused').not.toBeNull();
    expect(refused!.message).toMatch(/\(code 12, signal null\)/);
    expect(refused!.message).toMatch(/cannot tell whether this member ever started \(cluster version 1, below 6\)/);
    expect(await readdir(late.dataDir).catch(() => [])).toEqual([]);

    // Removed, the two members raise the cluster to 6 (each reports this build); n3 is
    // added back as a learner, unrecorded.
    expect((await http('DELETE', `${cluster.node(leader).url}/v1/cluster/members/n3`)).status).toBe(200);
    await waitFor(
      'the cluster runs at version 6',
      async () => (await view(cluster.node(leader).url)).clusterVersion === 6,
    );
    const added = await http('POST', `${cluster.node(leader).url}/v1/cluster/members`, {
      id: 'n3',
      peerAddress: `127.0.0.1:${late.peerPort}`,
    });
    expect(added.status, JSON.stringify(added.body)).toBe(201);
    expect(await answerOf(leader, 'n3')).toMatchObject({ pastFounding: true, started: false, clusterVersion: 6 });
    // GET /v1/cluster shows the record: the raise recorded the two members there were.
    expect((await view(cluster.node(leader).url)).members.map((m) => [m.id, m.started])).toEqual([
      ['n1', true],
      ['n2', true],
      ['n3', false],
    ]);

    // Started as a founding member (no --join): no peer records it as started, so it founds.
    await cluster.spawnNode(late);
    await waitFor(
      'n3 is a voter',
      async () => (await view(cluster.node(leader).url)).members.find((m) => m.id === 'n3')?.voter === true,
      30_000,
    );
    await waitFor('n3 serves a linearizable read of every write', async () => {
      const r = await list(late.url, 'prod', 'orders');
      return r.status === 200 && ids(r.body).join() === 'o1,o2,o3';
    });
    await waitFor('n3 published itself', async () => (await answerOf(leader, 'n3'))?.started === true);
    expect((await view(late.url)).members.find((m) => m.id === 'n3')?.started).toBe(true);

    // Wiped now, it is refused: its peers record it as started.
    await cluster.kill('n3');
    await rm(late.dataDir, { recursive: true, force: true });
    const wiped = await cluster.spawnNode(late).then(
      () => null,
      (err: unknown) => err as Error,
    );
    expect(wiped?.message).toMatch(/\(code 12, signal null\)/);
    expect(wiped?.message).toMatch(/records this member as started/);
    const now = await waitForLeader(early.map((n) => n.url));
    expect(
      (await register(cluster.node(now).url, 'prod', 'orders', 'o4', { address: '10.0.0.1', port: 4 })).status,
    ).toBe(200);
  }, 150_000);
});
