/**
 * Real clusters (separate processes, LevelDB, loopback TCP): writes through a follower,
 * linearizable reads through another node, convergence; exactly-once retries.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { http, list, register, waitFor, waitForLeader } from './helpers/http.js';

for (const size of [3, 5]) {
  describe(`a ${size}-node cluster`, () => {
    let cluster: LocalCluster;
    let urls: string[];

    beforeAll(async () => {
      cluster = await LocalCluster.start({ size, logLevel: 'warn' });
      urls = cluster.nodes.map((n) => n.url);
    });
    afterAll(async () => {
      await cluster?.close();
    });

    it('accepts a write through a follower and serves it linearizably from another node', async () => {
      const leader = await waitForLeader(urls);
      const followers = cluster.nodes.filter((n) => n.id !== leader);
      const writer = followers[0]!;
      const reader = followers[1]!;
      const put = await register(writer.url, 'prod', 'orders', 'o1', {
        cluster: 'vip',
        address: '10.0.0.2',
        port: 9000,
        tags: ['a'],
        metadata: { zone: 'z1' },
      });
      expect(put.status).toBe(200);
      expect(put.headers.get('x-rollcall-node')).toBe(writer.id);
      expect(put.headers.get('x-rollcall-leader')).toBe(leader);
      expect(put.body.instance).toMatchObject({
        id: 'o1',
        address: '10.0.0.2',
        port: 9000,
        cluster: 'vip',
        version: 1,
      });
      const revision = put.body.revision as number;

      // Linearizable by default: the write is visible at once on any node.
      const got = await list(reader.url, 'prod', 'orders');
      expect(got.status).toBe(200);
      expect(got.body.revision).toBeGreaterThanOrEqual(revision);
      expect(got.body.instances.map((i: { id: string }) => i.id)).toEqual(['o1']);
      expect(Number(got.headers.get('x-rollcall-revision'))).toBeGreaterThanOrEqual(revision);

      const one = await http('GET', `${reader.url}/v1/namespaces/prod/services/orders/instances/o1`);
      expect(one.status).toBe(200);
      expect(one.body.instance.metadata).toEqual({ zone: 'z1' });
      const missing = await http('GET', `${reader.url}/v1/namespaces/prod/services/orders/instances/nope`);
      expect(missing.status).toBe(404);
      expect(missing.body.error.code).toBe('INSTANCE_NOT_FOUND');
    });

    it('converges: every node applies the same writes in the same order', async () => {
      const writes = Array.from({ length: 40 }, (_, i) =>
        register(urls[i % urls.length]!, 'prod', 'payments', `p${i}`, { address: `10.0.1.${i}`, port: 8000 + i }),
      );
      const results = await Promise.all(writes);
      for (const r of results) expect(r.status).toBe(200);
      const revisions = results.map((r) => r.body.revision as number);
      expect(new Set(revisions).size).toBe(40); // every change has its own revision
      await waitFor('all nodes to apply every write', async () => {
        const views = await Promise.all(urls.map((u) => list(u, 'prod', 'payments', '?consistency=serializable')));
        const snapshots = views.map((v) => JSON.stringify(v.body.instances));
        return views.every((v) => v.body.instances.length === 40) && snapshots.every((s) => s === snapshots[0]);
      });
    });

    it('applies a retried write with the same client id and sequence once', async () => {
      const headers = { 'x-rollcall-client-id': `client-${size}`, 'x-rollcall-seq': '1' };
      const first = await register(urls[0]!, 'prod', 'retry', 'r1', { address: '10.0.2.1', port: 1 }, headers);
      const again = await register(urls[1]!, 'prod', 'retry', 'r1', { address: '10.0.2.1', port: 1 }, headers);
      expect(first.status).toBe(200);
      expect(again.status).toBe(200);
      expect(again.body.revision).toBe(first.body.revision);
      const after = await http('GET', `${urls[2]!}/v1/namespaces/prod/services/retry/instances/r1`);
      expect(after.body.instance.version).toBe(1);
      // A new sequence number is a new write.
      const next = await register(
        urls[0]!,
        'prod',
        'retry',
        'r1',
        { address: '10.0.2.1', port: 2 },
        { ...headers, 'x-rollcall-seq': '2' },
      );
      expect(next.body.revision).toBeGreaterThan(first.body.revision);
      expect(next.body.instance.version).toBe(2);
    });

    it('answers a retried session open with the same, existing session', async () => {
      const headers = { 'x-rollcall-client-id': `sessions-${size}`, 'x-rollcall-seq': '1' };
      const first = await http('POST', `${urls[0]!}/v1/sessions`, { ttlMs: 10_000 }, headers);
      const again = await http('POST', `${urls[1]!}/v1/sessions`, { ttlMs: 10_000 }, headers);
      expect(first.status).toBe(201);
      expect(again.status).toBe(201);
      expect(again.body.id).toBe(first.body.id);
      expect((await http('PUT', `${urls[2]!}/v1/sessions/${first.body.id}/keepalive`)).status).toBe(200);
    });

    it('rejects bad input with a clear error and changes nothing', async () => {
      const before = (await list(urls[0]!, 'prod', 'orders')).body.revision as number;
      const bad = await register(urls[0]!, 'prod', 'orders', 'o2', { address: '10.0.0.3', port: 0 });
      expect(bad.status).toBe(400);
      expect(bad.body.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'port' });
      const after = (await list(urls[0]!, 'prod', 'orders')).body.revision as number;
      expect(after).toBe(before);
    });
  });
}
