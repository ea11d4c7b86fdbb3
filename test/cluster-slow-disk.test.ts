/**
 * A slow disk on the leader must not cost its leadership (issue 15, item 5): while its
 * Ready loop waits on slow fsyncs, and while a log compaction takes 2 s (injected through
 * the test fault hook; it now runs beside the loop: test/cluster-compaction.test.ts), the
 * leader's heartbeats still leave, so the followers never elect. Real 3-node cluster, real
 * LevelDB.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { http, metric, register, waitFor, waitForLeader } from './helpers/http.js';

describe('a slow disk on the leader', () => {
  let cluster: LocalCluster | undefined;
  afterAll(async () => {
    await cluster?.close();
  });

  it('slow fsyncs on the leader, then on a follower: no acknowledged write lost, at most one election, the slow node named', async () => {
    const logs: string[] = [];
    const c = await LocalCluster.start({
      size: 3,
      logLevel: 'warn',
      env: { ROLLCALL_TEST_FAULTS: '1' },
      onLog: (id, line) => logs.push(`${id} ${line}`),
    });
    try {
      const urls = c.nodes.map((n) => n.url);
      const leader = await waitForLeader(urls);
      const follower = c.nodes.find((n) => n.id !== leader)!;
      const termAt = async () => Math.max(...(await Promise.all(urls.map((u) => metric(u, 'rollcall_term')))));
      const startTerm = await termAt();

      // Writers with exactly-once ids through every node, recording what was acknowledged.
      const acked: string[] = [];
      let stop = false;
      const writer = async (w: number) => {
        for (let seq = 1; !stop; seq++) {
          const id = `w${w}-${seq}`;
          for (let attempt = 0; !stop; attempt++) {
            const url = urls[(w + attempt) % urls.length]!;
            const res = await register(
              url,
              'prod',
              'fsync',
              id,
              { address: '10.8.0.2', port: 1 },
              { 'x-rollcall-client-id': `fsync-${w}`, 'x-rollcall-seq': String(seq) },
            ).catch(() => null);
            if (res?.status === 200) {
              acked.push(id);
              break;
            }
          }
        }
      };
      const writers = Array.from({ length: 4 }, (_, w) => writer(w));
      const progress = async (n: number, what: string) => {
        const from = acked.length;
        await waitFor(what, () => acked.length >= from + n, 30_000);
      };
      await progress(20, 'writes before the fault');
      await http('PUT', `${c.node(leader).url}/v1/test/faults`, { persistDelayMs: 1000 });
      await progress(8, "writes while the leader's fsync takes 1 s");
      await http('PUT', `${c.node(leader).url}/v1/test/faults`, {});
      await http('PUT', `${follower.url}/v1/test/faults`, { persistDelayMs: 2000 });
      await progress(20, "writes while a follower's fsync takes 2 s");
      // The cluster status shows which member's disk is slow, from any node.
      await waitFor('the slow follower shown in /v1/cluster', async () => {
        const st = await http('GET', `${c.node(leader).url}/v1/cluster`);
        const members = st.body.members as { id: string; slowestWriteMs: number | null }[];
        return (members.find((m) => m.id === follower.id)?.slowestWriteMs ?? 0) >= 1500;
      });
      await http('PUT', `${follower.url}/v1/test/faults`, {});
      await progress(20, 'writes after both disks recovered');
      stop = true;
      await Promise.all(writers);

      expect((await termAt()) - startTerm).toBeLessThanOrEqual(1);
      // Every acknowledged write is there, on every node.
      for (const url of urls) {
        const r = await http('GET', `${url}/v1/namespaces/prod/services/fsync/instances`);
        const have = new Set((r.body.instances as { id: string }[]).map((i) => i.id));
        expect(
          acked.filter((id) => !have.has(id)),
          url,
        ).toEqual([]);
      }
      // Each slow node said so, naming its data directory.
      for (const id of [leader, follower.id]) {
        expect(
          logs.some((l) => l.startsWith(`${id} `) && l.includes('slow disk')),
          `${id} logged its slow disk`,
        ).toBe(true);
      }
    } finally {
      await c.close();
    }
  });

  it('a leader whose disk hangs loses office to one that can write, and writes go on', async () => {
    const c = await LocalCluster.start({ size: 3, logLevel: 'warn', env: { ROLLCALL_TEST_FAULTS: '1' } });
    try {
      const urls = c.nodes.map((n) => n.url);
      const leader = await waitForLeader(urls);
      const others = c.nodes.filter((n) => n.id !== leader);
      // Every synced write on the leader now takes 15 s: a hung disk.
      await http('PUT', `${c.node(leader).url}/v1/test/faults`, { persistDelayMs: 15_000 });
      const first = register(others[0]!.url, 'prod', 'hang', 'h0', { address: '10.8.0.3', port: 1 }).catch(() => null);
      // After the stall limit (5 s) the old leader stops its heartbeats; a follower takes over.
      const next = await waitFor(
        'a new leader',
        async () => {
          const views = await Promise.all(
            others.map((n) =>
              http('GET', `${n.url}/v1/cluster`, undefined, {}, 2000).then((r) => r.body.leader as string | null),
            ),
          );
          return views[0] !== null && views[0] !== leader && views.every((v) => v === views[0]) ? views[0] : undefined;
        },
        30_000,
      );
      expect(next).not.toBe(leader);
      const r = await register(others[1]!.url, 'prod', 'hang', 'h1', { address: '10.8.0.3', port: 2 });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      await first;
    } finally {
      await c.close();
    }
  });

  it('a 2-second compaction causes no election', async () => {
    cluster = await LocalCluster.start({
      size: 3,
      logLevel: 'warn',
      env: { ROLLCALL_TEST_FAULTS: '1', ROLLCALL_COMPACT_EVERY: '200' },
    });
    const c = cluster;
    const urls = c.nodes.map((n) => n.url);
    const leader = await waitForLeader(urls);
    const l = c.node(leader);
    const terms = await Promise.all(urls.map((u) => metric(u, 'rollcall_term')));
    const r = await http('PUT', `${l.url}/v1/test/faults`, { compactDelayMs: 2000 });
    expect(r.status).toBe(200);

    // Enough writes for two compactions (one every 200 entries), each taking 2 s.
    const firstIndex = async () =>
      (await metric(l.url, 'rollcall_last_index')) - (await metric(l.url, 'rollcall_log_entries')) + 1;
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
    await waitFor(
      'the leader to have compacted its log twice',
      async () => (await firstIndex()) > startFirst + 200,
      30_000,
    );

    // Nobody campaigned: the same leader, in the same term, on every node.
    expect(await waitForLeader(urls)).toBe(leader);
    expect(await Promise.all(urls.map((u) => metric(u, 'rollcall_term')))).toEqual(terms);
  });
});
