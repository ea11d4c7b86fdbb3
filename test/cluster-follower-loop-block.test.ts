/**
 * A follower whose event loop is held while a client keeps its session alive through it
 * (a client of the HTTP API without the SDK: it talks to that one node and waits for its
 * answers). The keepalives the client sends meanwhile wait unread in the follower's socket
 * and reach the leader only when the follower runs again, after the session's deadline.
 * Before the fix the leader expired the session at its deadline, and the queued keepalives
 * were answered `expiring` or 404. Now the leader, which hears nothing from the follower,
 * gives the sessions it relayed one more TTL (src/node/keepalive-relays.ts): the session
 * kept alive survives; one whose client stopped before the block is still expired.
 *
 * Three real node processes, real LevelDB; the follower's loop is held by the test fault
 * `blockEventLoopMs`, longer than the margin between the client's keepalives and the TTL.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { http, list, register, waitFor, waitForLeader } from './helpers/http.js';

const TTL_MS = 4000;
const KEEPALIVE_EVERY_MS = 1000;
/** Past the TTL's margin (TTL - keepalive period = 3 s), within one TTL more. */
const BLOCK_MS = 5000;

describe('a follower’s held event loop', () => {
  let cluster: LocalCluster | undefined;
  afterAll(async () => {
    await cluster?.close();
  });

  it('does not expire a session kept alive through it; a stopped session still expires', async () => {
    const logs: { id: string; line: string }[] = [];
    cluster = await LocalCluster.start({
      size: 3,
      logLevel: 'info',
      env: { ROLLCALL_TEST_FAULTS: '1' },
      onLog: (id, line) => logs.push({ id, line }),
    });
    const c = cluster;
    const leaderId = await waitForLeader(c.nodes.map((n) => n.url));
    const leader = c.nodes.find((n) => n.id === leaderId)!;
    const follower = c.nodes.find((n) => n.id !== leaderId)!;
    const url = follower.url;

    for (const [session, instance] of [
      ['kept', 'k1'],
      ['stopped', 's1'],
    ] as const) {
      const opened = await http('POST', `${url}/v1/sessions`, { ttlMs: TTL_MS }, { 'x-rollcall-session-id': session });
      expect(opened.status, JSON.stringify(opened.body)).toBe(201);
      const reg = await register(url, 'prod', session, instance, { address: '10.7.0.1', port: 1, sessionId: session });
      expect(reg.status, JSON.stringify(reg.body)).toBe(200);
    }
    const keepalive = (session: string) =>
      http('PUT', `${url}/v1/sessions/${session}/keepalive`, undefined, {}, 30_000).catch((err: unknown) => ({
        status: 0,
        body: { err: String(err) },
      }));

    let stop = false;
    const kept = { ok: 0, bad: [] as string[] };
    const keeper = (async () => {
      while (!stop) {
        const r = await keepalive('kept');
        if (r.status === 200 && r.body.expiring !== true) kept.ok++;
        else kept.bad.push(`${r.status} ${JSON.stringify(r.body)}`);
        // The client's pace (not a wait for the node).
        await new Promise((resolve) => setTimeout(resolve, KEEPALIVE_EVERY_MS));
      }
    })();
    try {
      await waitFor('keepalives through the follower', () => kept.bad.length > 0 || kept.ok >= 3, 30_000);
      // The stopped session's last keepalive, just before the block: its deadline falls inside it.
      const last = await keepalive('stopped');
      expect(last.status, JSON.stringify(last.body)).toBe(200);
      const blocked = await http('PUT', `${url}/v1/test/faults`, { blockEventLoopMs: BLOCK_MS });
      expect(blocked.status).toBe(200);
      await waitFor(
        'the follower to say its loop was held',
        () => logs.some((l) => l.id === follower.id && l.line.includes('event loop was held')),
        60_000,
      );
      const after = kept.ok;
      // A TTL and more of keepalives after the block (or a refused one, which fails below):
      // the keepalives queued in the block are answered first, and a leader that expired the
      // session at its deadline inside the block would refuse them or the next ones.
      await waitFor(
        'keepalives after the block',
        () => kept.bad.length > 0 || kept.ok >= after + TTL_MS / KEEPALIVE_EVERY_MS + 1,
        60_000,
      );
      // The session whose client stopped is expired all the same (one TTL late at most).
      await waitFor(
        'the stopped session to expire',
        async () => {
          const r = await list(leader.url, 'prod', 'stopped');
          return r.status === 404 || (r.status === 200 && r.body.instances.length === 0);
        },
        30_000,
      );
    } finally {
      stop = true;
      await keeper;
    }
    expect(kept.bad.slice(0, 3)).toEqual([]);
    const instances = await list(leader.url, 'prod', 'kept');
    expect((instances.body.instances as { id: string }[]).map((i) => i.id)).toEqual(['k1']);
    // The leader said why it waited.
    expect(logs.some((l) => l.id === leaderId && l.line.includes('a follower relaying keepalives is silent'))).toBe(
      true,
    );
  }, 180_000);
});
