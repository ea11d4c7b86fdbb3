/**
 * A datacenter rebuilt from empty data under the same name, with real processes (issue 18):
 * dc-b (one node) lives a while — restarted twice, so its Raft term is 3, and written to —
 * then its data directory is wiped and it starts again as a new cluster on a new address
 * (term back at 1, revision back near 0), with the same --federation-join. Every node of
 * dc-a must show dc-b's new member and revision, and `?dc=dc-b` must reach it, without any
 * change in dc-b's own view to help. Before the fix the old description (term 3) looked
 * newer and stayed everywhere: dc-b's member at its old, dead address.
 *
 * Then the rebuilt dc-b, given a history of its own (term 3 again), is refounded with an
 * all-new member id. No member of the new cluster ever ran in the old one, so only the
 * cluster id tells its members that the old description is a leftover: `rollcall server`
 * derives one from the founding member ids (docs/operations.md, "Cluster ids"). Before
 * founding ids neither cluster had one, and the old description (the later term) stayed
 * everywhere (the limit docs/federation.md listed). GET /v1/federation shows each
 * datacenter's cluster id as its members gossip it.
 */
import { rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { federationArgs } from './helpers/federation.js';
import { http, register, waitFor, waitForLeader } from './helpers/http.js';

const SECRET = 'federation-test-secret';
const ROUND_MS = 300;

const dcArgs = (dc: string, join: string[] = []) => federationArgs(dc, join, { secret: SECRET, roundMs: ROUND_MS });

interface Federation {
  datacenters: {
    name: string;
    status: string;
    revision: number;
    clusterId?: string | null;
    members: { id: string; address: string }[];
  }[];
}
const dcB = async (url: string) =>
  (await http<Federation>('GET', `${url}/v1/federation`, undefined, {}, 2000)).body.datacenters.find(
    (d) => d.name === 'dc-b',
  );

let a: LocalCluster;
let b: LocalCluster;
let rebuilt: LocalCluster | null = null;
let refounded: LocalCluster | null = null;
const logs: string[] = [];

/** Until every node of dc-a sees dc-b as `check` wants it; the views and recent logs on a timeout. */
async function everyNodeOfA(check: (d: Awaited<ReturnType<typeof dcB>>) => boolean, what: string): Promise<void> {
  let seen = '';
  await waitFor(
    what,
    async () => {
      const views = await Promise.all(a.nodes.map((n) => dcB(n.url)));
      seen = JSON.stringify(views);
      return views.every(check);
    },
    30_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last seen: ${seen}\n${logs.slice(-40).join('\n')}`);
  });
}

/** Two restarts of dc-b's one node: a new election each, so its term is 3 or more. */
async function giveHistory(dc: LocalCluster): Promise<number> {
  for (let i = 0; i < 2; i++) {
    await dc.stop('n1');
    await dc.restart('n1');
    await waitForLeader([dc.nodes[0]!.url], 30_000);
  }
  const term = (await http<{ term: number }>('GET', `${dc.nodes[0]!.url}/v1/cluster`)).body.term;
  expect(term).toBeGreaterThanOrEqual(3);
  return term;
}

beforeAll(async () => {
  const onLog = (dc: string) => (id: string, line: string) => logs.push(`${dc}/${id} ${line}`);
  a = await LocalCluster.start({ size: 2, extraArgs: dcArgs('dc-a'), onLog: onLog('dc-a'), logLevel: 'info' });
  await waitForLeader(
    a.nodes.map((n) => n.url),
    60_000,
  );
  b = await LocalCluster.start({
    size: 1,
    extraArgs: dcArgs('dc-b', [a.nodes[0]!.url]),
    onLog: onLog('dc-b'),
    logLevel: 'info',
  });
  await waitForLeader([b.nodes[0]!.url], 60_000);
}, 150_000);

afterAll(async () => {
  await Promise.all([a?.close(), b?.close(), rebuilt?.close(), refounded?.close()]);
});

describe('a datacenter rebuilt from empty data under the same name', () => {
  it('every node of the others sees its new member and revision, and ?dc= reaches it', async () => {
    const old = b.nodes[0]!;
    // A history: two restarts (a new election each, so a higher term) and some writes.
    await giveHistory(b);
    for (let i = 0; i < 5; i++)
      expect((await register(old.url, 'prod', 'orders', `o${i}`, { address: '10.0.0.1', port: 9000 })).status).toBe(
        200,
      );
    const oldRevision = (await http<{ revision: number }>('GET', `${old.url}/v1/cluster`)).body.revision;
    await everyNodeOfA(
      (d) => d?.status === 'alive' && d.revision >= oldRevision && d.members[0]?.address === old.url,
      'dc-a sees dc-b as it is',
    );

    // Wiped: every node of dc-b gone with its data, and a new cluster under the same name.
    await b.kill('n1');
    await rm(old.dataDir, { recursive: true, force: true });
    rebuilt = await LocalCluster.start({
      size: 1,
      extraArgs: dcArgs('dc-b', [a.nodes[0]!.url]),
      onLog: (id, line) => logs.push(`dc-b'/${id} ${line}`),
      logLevel: 'info',
    });
    const fresh = rebuilt.nodes[0]!;
    await waitForLeader([fresh.url], 60_000);
    const freshRevision = (await http<{ revision: number }>('GET', `${fresh.url}/v1/cluster`)).body.revision;
    expect(freshRevision).toBeLessThan(oldRevision);
    await everyNodeOfA(
      (d) =>
        d?.status === 'alive' &&
        d.members.length === 1 &&
        d.members[0]!.address === fresh.url &&
        d.revision < oldRevision,
      'dc-a sees the rebuilt dc-b: its new address and its own revision',
    );
    // Forwarding follows: the new cluster answers, with its own (empty) registry.
    const remote = await http<{ instances: unknown[] }>(
      'GET',
      `${a.nodes[1]!.url}/v1/namespaces/prod/services/orders/instances?dc=dc-b`,
    );
    expect(remote.status).toBe(200);
    expect(remote.headers.get('x-rollcall-datacenter')).toBe('dc-b');
    expect(remote.body.instances).toEqual([]);
  }, 150_000);

  it('refounded with an all-new member id, it is recognised by its new cluster id', async () => {
    const dc = rebuilt!;
    const old = dc.nodes[0]!;
    await giveHistory(dc);
    const oldClusterId = (await http<{ clusterId?: string | null }>('GET', `${old.url}/v1/cluster`)).body.clusterId;
    await everyNodeOfA((d) => d?.status === 'alive' && d.members[0]?.address === old.url, 'dc-a sees dc-b as it is');

    // Wiped and founded again as member b1 (not n1): nothing of the new cluster ever ran in
    // the old one. It joins the federation once it leads: its own view then stays as it is,
    // so nothing but the leftover rule can make it stamp above the old description.
    await dc.kill('n1');
    await rm(old.dataDir, { recursive: true, force: true });
    refounded = await LocalCluster.start({
      size: 1,
      // LocalCluster names its nodes n1, n2, ...: the later --id wins, and --peers names b1 alike.
      extraArgs: [...dcArgs('dc-b'), '--id', 'b1'],
      peers: (_id, flag) => flag.replace(/^n1=/, 'b1='),
      onLog: (id, line) => logs.push(`dc-b''/${id} ${line}`),
      logLevel: 'info',
    });
    const fresh = refounded.nodes[0]!;
    await waitForLeader([fresh.url], 60_000);
    expect((await http('POST', `${fresh.url}/v1/federation/join`, { url: a.nodes[0]!.url })).status).toBe(202);
    await everyNodeOfA(
      (d) =>
        d?.status === 'alive' &&
        d.members.length === 1 &&
        d.members[0]!.id === 'b1' &&
        d.members[0]!.address === fresh.url,
      'dc-a sees the refounded dc-b: its new member at its new address',
    );
    // The id every node of dc-a shows is the one the new cluster's member derived.
    const newClusterId = (await http<{ clusterId?: string | null }>('GET', `${fresh.url}/v1/cluster`)).body.clusterId;
    expect(newClusterId).toMatch(/^[0-9a-f]{16}$/);
    expect(oldClusterId).toMatch(/^[0-9a-f]{16}$/);
    expect(newClusterId).not.toBe(oldClusterId);
    await everyNodeOfA((d) => d?.clusterId === newClusterId, 'dc-a shows the new cluster id');
    const remote = await http('GET', `${a.nodes[0]!.url}/v1/namespaces/prod/services/orders/instances?dc=dc-b`);
    expect(remote.status).toBe(200);
  }, 150_000);
});
