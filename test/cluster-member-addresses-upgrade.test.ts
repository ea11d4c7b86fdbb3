/**
 * The replicated member-address record after an upgrade from cluster version 1, with real
 * processes (docs/operations.md, "Upgrades"; src/node/peer-book.ts). At version 1 conf
 * changes wrote no record, and the raise to 2 starts it empty, so the members of a cluster
 * that began at 1 had no entry: a member that joined later learned no address for them
 * from the record and could not reach them. From version 5 the leader fills the record in
 * with the addresses it dials them at. Here: three nodes, one on a v1 build
 * (ROLLCALL_TEST_STATE_MACHINE_VERSION=1, test only), upgraded; every node's record then
 * names all three (and the replicas stay identical); a fourth member that joins with only
 * itself and the leader in `--peers` follows a leader it was never told of.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { decode } from '../src/codec/index.js';
import { MEMBER_ADDRESSES_KEY } from '../src/node/state-store.js';
import { decodeBackup } from '../src/ops/backup-format.js';
import { STATE_MACHINE_VERSION as NEW } from '../src/registry/index.js';
import { http, list, register, waitFor, waitForLeader } from './helpers/http.js';

describe('member-address record after an upgrade from cluster version 1', () => {
  let cluster: LocalCluster;
  const oldBuild = new Set<string>(['n3']);
  /** The joining member n4 is told of itself and of this member only. */
  let introducer = 'n1';

  beforeAll(async () => {
    cluster = await LocalCluster.start({
      size: 3,
      logLevel: 'warn',
      nodeEnv: (id) => (oldBuild.has(id) ? { ROLLCALL_TEST_STATE_MACHINE_VERSION: '1' } : {}),
      peers: (id, flag) =>
        id === 'n4' ? `n4=${cluster.peerAddress('n4')},${introducer}=${cluster.peerAddress(introducer)}` : flag,
    });
    await waitForLeader(cluster.nodes.map((n) => n.url));
  }, 60_000);
  afterAll(async () => {
    await cluster?.close();
  });

  /** The record as node `id` holds it, read from a backup it serves (GET /v1/snapshot). */
  const record = async (id: string): Promise<Record<string, string> | null> => {
    const res = await fetch(`${cluster.node(id).url}/v1/snapshot?consistency=serializable`);
    expect(res.status).toBe(200);
    const backup = decodeBackup(new Uint8Array(await res.arrayBuffer()), `${id} backup`);
    const key = Buffer.from(MEMBER_ADDRESSES_KEY, 'utf8');
    const pair = backup.pairs.find(([k]) => Buffer.compare(Buffer.from(k), key) === 0);
    return pair === undefined ? null : decode<Record<string, string>>(pair[1]);
  };
  const clusterVersion = async (id: string) =>
    (await http('GET', `${cluster.node(id).url}/v1/cluster`)).body.clusterVersion as number;

  it('fills in the members of a cluster that began at version 1, and a later member reaches them all', async () => {
    await waitFor('every member reports its build', async () => {
      const v = (await http('GET', `${cluster.node('n1').url}/v1/cluster`)).body;
      return (v.members as { stateMachineVersion: number | null }[]).every((m) => m.stateMachineVersion !== null);
    });
    expect(await clusterVersion('n1')).toBe(1);
    // At version 1 no record is written at all.
    expect(await record('n1')).toBeNull();

    // Upgrade n3: the leader raises the cluster (the raise starts the record empty), then fills it.
    expect(await cluster.stop('n3')).toBe(0);
    oldBuild.delete('n3');
    await cluster.restart('n3');
    const expected = Object.fromEntries(['n1', 'n2', 'n3'].map((id) => [id, cluster.peerAddress(id)]));
    for (const id of ['n1', 'n2', 'n3']) {
      await waitFor(`${id} at cluster version ${NEW} with every member in its record`, async () => {
        if ((await clusterVersion(id)) !== NEW) return false;
        const r = await record(id);
        return r !== null && JSON.stringify(r) === JSON.stringify(expected);
      });
    }
    // The replicas are identical, the record included (it is in the hash).
    const leader = await waitForLeader(cluster.nodes.map((n) => n.url));
    const check = await http('POST', `${cluster.node(leader).url}/v1/cluster/check`);
    expect(check.status).toBe(200);
    expect((check.body.members as { verdict: string }[]).map((m) => m.verdict)).toEqual(['ok', 'ok', 'ok']);

    // A new member told only of itself and the leader learns the others from the record...
    introducer = leader;
    const n4 = await cluster.addNode();
    const added = await http('POST', `${cluster.node(leader).url}/v1/cluster/members`, {
      id: 'n4',
      peerAddress: cluster.peerAddress('n4'),
    });
    expect(added.status, JSON.stringify(added.body)).toBeLessThan(300);
    await waitFor('n4 becomes a voter', async () => {
      const v = (await http('GET', `${cluster.node(leader).url}/v1/cluster`)).body;
      return (v.members as { id: string; voter: boolean }[]).some((m) => m.id === 'n4' && m.voter);
    });
    // ...so it follows a leader its --peers never named: leadership moves away from the introducer.
    const other = ['n1', 'n2', 'n3'].find((id) => id !== leader)!;
    const moved = await http('POST', `${cluster.node(leader).url}/v1/cluster/leader`, { to: other });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    const w = await register(cluster.node(other).url, 'prod', 'orders', 'after-transfer', {
      address: '10.0.0.9',
      port: 9,
    });
    expect(w.status, JSON.stringify(w.body)).toBeLessThan(300);
    await waitFor('n4 applies a write of the new leader', async () => {
      const r = await list(n4.url, 'prod', 'orders', '?consistency=serializable');
      return r.status === 200 && (r.body.instances as { id: string }[]).some((i) => i.id === 'after-transfer');
    });
    expect(await record('n4')).toEqual({ ...expected, n4: cluster.peerAddress('n4') });
  }, 90_000);
});
