/**
 * A slow disk on the leader must not cost its leadership (issue 15, item 5): while its
 * Ready loop waits on a log compaction that takes 2 s (injected through the test fault
 * hook), the leader's heartbeats still leave, so the followers never elect. Real 3-node
 * cluster, real LevelDB.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { http, register, waitFor, waitForLeader } from './helpers/http.js';

async function metric(url: string, name: string): Promise<number> {
  const r = await fetch(`${url}/metrics`);
  const line = (await r.text()).split('\n').find((l) => l.startsWith(`${name} `));
  if (line === undefined) throw new Error(`${url}/metrics has no ${name}`);
  return Number(line.slice(name.length + 1));
}

describe('a slow disk on the leader', () => {
  let cluster: LocalCluster | undefined;
  afterAll(async () => {
    await cluster?.close();
  });

  it('a 2-second compaction causes no election', async () => {
    cluster = await LocalCluster.start({ size: 3, logLevel: 'warn', env: { ROLLCALL_TEST_FAULTS: '1', ROLLCALL_COMPACT_EVERY: '200' } });
    const c = cluster;
    const urls = c.nodes.map((n) => n.url);
    const leader = await waitForLeader(urls);
    const l = c.node(leader);
    const terms = await Promise.all(urls.map((u) => metric(u, 'rollcall_term')));
    const r = await http('PUT', `${l.url}/v1/test/faults`, { compactDelayMs: 2000 });
    expect(r.status).toBe(200);

    // Enough writes for two compactions (one every 200 entries), each stalling the loop 2 s.
    const firstIndex = async () => (await metric(l.url, 'rollcall_last_index')) - (await metric(l.url, 'rollcall_log_entries')) + 1;
    const startFirst = await firstIndex();
    let written = 0;
    const writer = async (w: number) => {
      for (let i = 0; i < 60; i++) {
        const res = await register(l.url, 'prod', 'disk', `w${w}-${i}`, { address: '10.8.0.1', port: 1 + i });
        expect(res.status, JSON.stringify(res.body)).toBe(200);
        written++;
      }
    };
    await Promise.all(Array.from({ length: 8 }, (_, w) => writer(w)));
    expect(written).toBe(480);
    await waitFor('the leader to have compacted its log twice', async () => (await firstIndex()) > startFirst + 200, 30_000);

    // Nobody campaigned: the same leader, in the same term, on every node.
    expect(await waitForLeader(urls)).toBe(leader);
    expect(await Promise.all(urls.map((u) => metric(u, 'rollcall_term')))).toEqual(terms);
  });
});
