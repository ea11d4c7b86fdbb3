/**
 * Failover as a client of a follower sees it: a write forwarded to a leader that then
 * dies or stops answering is not left to hang until its deadline (5 s, 504 TIMEOUT). With
 * exactly-once ids the follower re-sends it to the next leader itself; without them it
 * answers 503 PROPOSAL_DROPPED at once, so the client can decide.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { http, list, register, waitFor, waitForLeader } from './helpers/http.js';

describe('failover through a follower', () => {
  let cluster: LocalCluster | undefined;
  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
  });

  async function leaderAndFollowers(c: LocalCluster) {
    const leader = await waitForLeader(c.nodes.map((n) => n.url));
    const followers = c.nodes.filter((n) => n.id !== leader);
    // Every node must have the leader connected before the fault, or the write waits for that instead.
    await Promise.all(
      followers.map((f) =>
        waitFor(
          `${f.id} applies a write`,
          async () => (await register(f.url, 'prod', 'warmup', f.id, { address: '10.0.0.1', port: 1 })).status === 200,
        ),
      ),
    );
    return { leader, followers };
  }

  it('a write forwarded to a leader that stops answering goes to its successor (exactly-once ids), or fails at once (without)', async () => {
    cluster = await LocalCluster.start({ size: 3, logLevel: 'warn' });
    const c = cluster;
    const { leader, followers } = await leaderAndFollowers(c);
    const [f1, f2] = followers as [(typeof followers)[0], (typeof followers)[0]];
    c.pause(leader);
    const withIds = register(
      f1.url,
      'prod',
      'failover',
      'with-ids',
      { address: '10.1.0.1', port: 80 },
      { 'x-rollcall-client-id': 'failover-test', 'x-rollcall-seq': '1' },
    );
    const withoutIds = register(f2.url, 'prod', 'failover', 'without-ids', { address: '10.1.0.2', port: 80 });
    const [a, b] = await Promise.all([withIds, withoutIds]);
    // Before forwarded requests followed the leader, both waited out the deadline: 504 TIMEOUT.
    expect(a.status, JSON.stringify(a.body)).toBe(200);
    expect(a.body.instance.id).toBe('with-ids');
    expect([200, 503], JSON.stringify(b.body)).toContain(b.status);
    if (b.status === 503) expect(b.body, JSON.stringify(b.body)).toMatchObject({ error: { code: 'PROPOSAL_DROPPED' } });
    c.resume(leader);
    // The re-sent write applied once: the same ids again are answered from the dedup table.
    const again = await register(
      f1.url,
      'prod',
      'failover',
      'with-ids',
      { address: '10.1.0.1', port: 80 },
      { 'x-rollcall-client-id': 'failover-test', 'x-rollcall-seq': '1' },
    );
    expect(again.status).toBe(200);
    expect(again.body.revision).toBe(a.body.revision);
    const view = await list(f1.url, 'prod', 'failover');
    expect(view.status).toBe(200);
    expect((view.body.instances as { id: string }[]).map((i) => i.id)).toContain('with-ids');
  }, 60_000);

  it('after kill -9 of the leader, writes through the followers succeed without the client retrying', async () => {
    cluster = await LocalCluster.start({ size: 3, logLevel: 'warn' });
    const c = cluster;
    const { leader, followers } = await leaderAndFollowers(c);
    await c.kill(leader);
    const answers = await Promise.all(
      followers.map((f, i) =>
        register(
          f.url,
          'prod',
          'failover',
          `after-kill-${i}`,
          { address: '10.2.0.1', port: 80 },
          { 'x-rollcall-client-id': `after-kill-${i}`, 'x-rollcall-seq': '1' },
        ),
      ),
    );
    for (const r of answers) expect(r.status, JSON.stringify(r.body)).toBe(200);
    const next = await waitForLeader(followers.map((f) => f.url));
    expect(next).not.toBe(leader);
  }, 60_000);

  it('POST /v1/cluster/leader without a target hands leadership to another voter', async () => {
    cluster = await LocalCluster.start({ size: 3, logLevel: 'warn' });
    const c = cluster;
    const before = await waitForLeader(c.nodes.map((n) => n.url));
    const via = c.nodes.find((n) => n.id !== before)!;
    const moved = await http('POST', `${via.url}/v1/cluster/leader`);
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    expect(moved.body.leader).not.toBe(before);
    expect(c.nodes.map((n) => n.id)).toContain(moved.body.leader);
    expect(await waitForLeader(c.nodes.map((n) => n.url))).toBe(moved.body.leader);
  }, 60_000);
});
