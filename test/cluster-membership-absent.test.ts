/**
 * Adding a member that never starts (found by the HTTP fuzzer): the learner must not be
 * promoted to voter before it has acknowledged anything, or a one-node cluster has two
 * voters, no quorum, and no leader to take the removal.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { http, register, waitFor, waitForLeader } from './helpers/http.js';

describe('a member that never starts', () => {
  let cluster: LocalCluster | undefined;
  afterAll(async () => {
    await cluster?.close();
  });

  it('stays a learner; the cluster keeps its leader, takes writes, and can remove it', async () => {
    cluster = await LocalCluster.start({ size: 1, logLevel: 'warn' });
    const url = cluster.nodes[0]!.url;
    expect(await waitForLeader([url])).toBe('n1');
    const add = await http('POST', `${url}/v1/cluster/members`, { id: 'ghost', peerAddress: '127.0.0.1:9' });
    expect(add.status, JSON.stringify(add.body)).toBe(201);
    // Several duty-timer rounds (200 ms) and heartbeat rounds pass.
    let writes = 0;
    await waitFor('writes through the rounds', async () => {
      const r = await register(url, 'prod', 'ghost', `g${writes}`, { address: '10.4.0.1', port: 1 });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return ++writes >= 10;
    });
    const st = await http('GET', `${url}/v1/cluster`);
    expect(st.body.leader).toBe('n1');
    expect((st.body.members as { id: string; voter: boolean }[]).find((m) => m.id === 'ghost')?.voter).toBe(false);
    const removed = await http('DELETE', `${url}/v1/cluster/members/ghost`);
    expect(removed.status, JSON.stringify(removed.body)).toBe(200);
  });
});
