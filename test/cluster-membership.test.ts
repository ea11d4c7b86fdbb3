/**
 * Membership in a real cluster while writes continue: add a fourth node as a learner
 * (promoted once caught up), transfer leadership to it, remove an original node.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { http, list, register, waitFor, waitForLeader } from './helpers/http.js';

describe('membership changes under load', () => {
  let cluster: LocalCluster | undefined;
  afterAll(async () => {
    await cluster?.close();
  });

  it('adds a learner, promotes it, moves leadership to it and removes a node, losing no write', async () => {
    cluster = await LocalCluster.start({ size: 3, logLevel: 'warn' });
    const c = cluster;
    await waitForLeader(c.nodes.map((n) => n.url));
    const acked: string[] = [];
    let stop = false;
    let seq = 0;
    const writer = (async () => {
      while (!stop) {
        const id = `m${seq++}`;
        const targets = c.running().filter((n) => n.id !== 'n4');
        for (let attempt = 0; attempt < 40 && !stop; attempt++) {
          const node = targets[attempt % targets.length]!;
          try {
            const r = await register(
              node.url,
              'prod',
              'members',
              id,
              { address: '10.1.0.1', port: 1 + (seq % 60000) },
              { 'x-rollcall-client-id': 'member-writer', 'x-rollcall-seq': String(seq) },
            );
            if (r.status === 200) {
              acked.push(id);
              break;
            }
          } catch {
            /* node going away: try another */
          }
          await new Promise((r) => setTimeout(r, 25));
        }
      }
    })();

    await waitFor('some writes', () => acked.length > 20);
    // Adding a member that is already a voter (an automation retrying after a timeout) must
    // change nothing; it used to demote the voter to a learner.
    const n2 = c.node('n2');
    const again = await http('POST', `${c.node('n3').url}/v1/cluster/members`, {
      id: 'n2',
      peerAddress: `127.0.0.1:${n2.peerPort}`,
    });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(again.body).toMatchObject({ id: 'n2', role: 'voter', existing: true });
    const after = await http('GET', `${c.node('n1').url}/v1/cluster`);
    expect((after.body.members as { id: string; voter: boolean }[]).find((m) => m.id === 'n2')?.voter).toBe(true);
    const moved2 = await http('POST', `${c.node('n3').url}/v1/cluster/members`, {
      id: 'n2',
      peerAddress: '127.0.0.1:1',
    });
    expect(moved2.status).toBe(400);
    const n4 = await c.addNode();
    const add = await http('POST', `${c.node('n2').url}/v1/cluster/members`, {
      id: 'n4',
      peerAddress: `127.0.0.1:${n4.peerPort}`,
    });
    expect(add.status).toBe(201);
    await waitFor(
      'n4 to be promoted to voter',
      async () => {
        const st = await http('GET', `${c.node('n1').url}/v1/cluster`);
        const m = (st.body.members as { id: string; voter: boolean }[]).find((x) => x.id === 'n4');
        return m?.voter === true;
      },
      30_000,
    );

    const moved = await http('POST', `${c.node('n3').url}/v1/cluster/leader`, { to: 'n4' });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    await waitFor('n4 to lead', async () => (await waitForLeader(c.running().map((n) => n.url))) === 'n4', 20_000);

    const removed = await http('DELETE', `${c.node('n4').url}/v1/cluster/members/n1`);
    expect(removed.status, JSON.stringify(removed.body)).toBe(200);
    await waitFor(
      'n1 to leave the membership',
      async () => {
        const st = await http('GET', `${c.node('n4').url}/v1/cluster`);
        return !(st.body.members as { id: string }[]).some((m) => m.id === 'n1');
      },
      20_000,
    );
    await c.kill('n1');

    await waitFor('more writes after the changes', () => acked.length > 60, 30_000);
    stop = true;
    await writer;
    const live = ['n2', 'n3', 'n4'].map((id) => c.node(id).url);
    await waitFor(
      'every remaining member to hold every acknowledged write',
      async () => {
        const views = await Promise.all(live.map((u) => list(u, 'prod', 'members', '?consistency=serializable')));
        return views.every((v) => {
          const ids = new Set((v.body.instances as { id: string }[]).map((i) => i.id));
          return acked.every((a) => ids.has(a));
        });
      },
      30_000,
    );
  }, 180_000);
});
