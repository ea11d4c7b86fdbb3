/**
 * Cluster operations through the SDK: what the client asks the server for. The leader sees
 * every member's progress, so a transfer without a target is the server's choice (issue 16:
 * "the server decides; the client asks").
 */
import { afterEach, describe, expect, it } from 'vitest';
import { RollcallClient } from '../src/client/index.js';
import { seeded } from './client-helpers.js';
import { json, ScriptedHttpNode } from './scripted-http-node.js';

describe('client cluster operations', () => {
  let node: ScriptedHttpNode | undefined;
  let client: RollcallClient | undefined;
  afterEach(async () => {
    await client?.close();
    await node?.close();
    node = client = undefined;
  });

  async function start(): Promise<{ node: ScriptedHttpNode; client: RollcallClient }> {
    node = await ScriptedHttpNode.start('n1');
    node.leader = 'n1';
    node.handler = (req, res) => {
      if (req.method === 'POST' && req.url === '/v1/cluster/leader') {
        const asked = req.body === '' ? {} : (JSON.parse(req.body) as { to?: string });
        return json(res, 200, { index: 7, leader: asked.to ?? 'n3' });
      }
      // Membership status: a follower n2 further ahead than n3, which the server does not pick.
      return json(res, 200, {
        leader: 'n1',
        members: [
          { id: 'n1', voter: true },
          { id: 'n2', voter: true, appliedIndex: 9 },
          { id: 'n3', voter: true, appliedIndex: 5 },
        ],
      });
    };
    client = new RollcallClient({
      endpoints: [node.url],
      random: seeded(1),
      requestTimeoutMs: 3000,
      attemptTimeoutMs: 1000,
    });
    return { node, client };
  }

  it('transferLeader() without a target asks the server to choose, and reports its choice', async () => {
    const { node, client } = await start();
    const r = await client.transferLeader();
    expect(r.leader).toBe('n3');
    const asks = node.seen.filter((s) => s.url === '/v1/cluster/leader');
    expect(asks).toHaveLength(1);
    expect(JSON.parse(asks[0]!.body)).toEqual({});
    // It no longer reads the cluster status to pick a target itself.
    expect(node.seen.filter((s) => s.url.startsWith('/v1/cluster') && s.url !== '/v1/cluster/leader')).toHaveLength(0);
  });

  it('transferLeader(to) names the target', async () => {
    const { node, client } = await start();
    expect((await client.transferLeader('n2')).leader).toBe('n2');
    expect(JSON.parse(node.seen.find((s) => s.url === '/v1/cluster/leader')!.body)).toEqual({ to: 'n2' });
  });
});
