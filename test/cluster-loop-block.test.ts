/**
 * A node whose event loop is held for longer than the disk-stall limit and than a session's
 * TTL, while a slow write is in flight and a session is kept alive (issue 21: ~32 s of
 * synchronous work at a million instances). The block is the loop's fault alone: the node
 * must not report its disk as stalled (which stops its heartbeats), and must not expire the
 * session whose keepalives waited unread in its socket meanwhile. Before the fix it did
 * both: "disk stalled" once the loop ran again, and the duty timer, which runs before
 * sockets are read, proposed the expiry, so the queued keepalive was answered "expiring".
 *
 * A real node process (one member: the block itself would cost a leader of three its office
 * to an election, which is right), real LevelDB; the loop is held by the test fault
 * `blockEventLoopMs`, writes are slowed by `persistDelayMs` so one is in flight at the block.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { http, list, register, waitFor, waitForLeader } from './helpers/http.js';

const TTL_MS = 2000;
const KEEPALIVE_EVERY_MS = 400;
/** Past the stall limit (5 s) and the TTL. */
const BLOCK_MS = 6000;

describe('a held event loop', () => {
  let cluster: LocalCluster | undefined;
  afterAll(async () => {
    await cluster?.close();
  });

  it('is blamed neither on the disk nor on the sessions kept alive meanwhile', async () => {
    const logs: string[] = [];
    cluster = await LocalCluster.start({
      size: 1,
      logLevel: 'warn',
      env: { ROLLCALL_TEST_FAULTS: '1' },
      onLog: (_id, line) => logs.push(line),
    });
    const url = cluster.nodes[0]!.url;
    await waitForLeader([url]);

    const opened = await http('POST', `${url}/v1/sessions`, { ttlMs: TTL_MS }, { 'x-rollcall-session-id': 'held' });
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    const reg = await register(url, 'prod', 'held', 'i1', { address: '10.6.0.1', port: 1, sessionId: 'held' });
    expect(reg.status, JSON.stringify(reg.body)).toBe(200);

    let stop = false;
    const keepalives = { ok: 0, bad: [] as string[] };
    const keeper = (async () => {
      while (!stop) {
        const r = await http('PUT', `${url}/v1/sessions/held/keepalive`, undefined, {}, 30_000).catch(
          (err: unknown) => ({ status: 0, body: { err: String(err) } }),
        );
        if (r.status === 200 && r.body.expiring !== true) keepalives.ok++;
        else keepalives.bad.push(`${r.status} ${JSON.stringify(r.body)}`);
        // The owner's pace (it is the client's, not a wait for the node).
        await new Promise((resolve) => setTimeout(resolve, KEEPALIVE_EVERY_MS));
      }
    })();
    let written = 0;
    const writer = (async () => {
      for (let i = 0; !stop; i++) {
        // One in flight across the block may time out (its deadline passes meanwhile): the
        // writes are only there to keep the disk busy.
        const r = await register(url, 'prod', 'writes', `w${i}`, { address: '10.6.0.2', port: 1 }).catch(() => null);
        if (r?.status === 200) written++;
      }
    })();
    try {
      // Every synced write takes 300 ms: the Ready loop is nearly always waiting on one.
      expect((await http('PUT', `${url}/v1/test/faults`, { persistDelayMs: 300 })).status).toBe(200);
      const progress = async (what: string, writes: number, kas: number) => {
        const [w0, k0] = [written, keepalives.ok];
        // A refused keepalive ends the wait too: it fails below.
        await waitFor(
          what,
          () => keepalives.bad.length > 0 || (written >= w0 + writes && keepalives.ok >= k0 + kas),
          60_000,
        );
      };
      await progress('writes and keepalives before the block', 3, 3);
      const blocked = await http('PUT', `${url}/v1/test/faults`, { persistDelayMs: 300, blockEventLoopMs: BLOCK_MS });
      expect(blocked.status).toBe(200);
      await waitFor(
        'the node to say its loop was held',
        () => logs.some((l) => l.includes('event loop was held')),
        60_000,
      );
      // Two TTLs of keepalives and some writes after the block.
      await progress('writes and keepalives after the block', 3, Math.ceil((2 * TTL_MS) / KEEPALIVE_EVERY_MS));
    } finally {
      stop = true;
      await Promise.all([keeper, writer]);
    }
    expect(logs.filter((l) => l.includes('disk stalled'))).toEqual([]);
    expect(keepalives.bad.slice(0, 3)).toEqual([]);
    const instances = await list(url, 'prod', 'held');
    expect((instances.body.instances as { id: string }[]).map((i) => i.id)).toEqual(['i1']);
  }, 120_000);
});
