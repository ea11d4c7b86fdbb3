/**
 * Expiry across a change of leader (issue 15, items 2 and 6), in real 3-node clusters with
 * the transport's fault hook:
 *
 * - an expiry that its leader decided on a stale view (the keepalives did not reach it) and
 *   could not commit before it died deletes nothing once its successor commits the entry,
 *   while the owner keeps the session alive through the other nodes;
 * - a freshly elected leader that has not yet applied its predecessor's entries never
 *   answers "no such session" for a session that is in those entries.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { http, list, metric, register, waitFor, waitForLeader } from './helpers/http.js';

const TTL = 2000;

async function setFaults(url: string, faults: Record<string, unknown>): Promise<void> {
  const r = await http('PUT', `${url}/v1/test/faults`, faults);
  expect(r.status).toBe(200);
}

/** A leader other than `old` that every node in `urls` agrees on. */
async function waitForNewLeader(urls: readonly string[], old: string): Promise<string> {
  return waitFor(`a leader other than ${old}`, async () => {
    const leader = await waitForLeader(urls).catch(() => undefined);
    return leader !== old ? leader : undefined;
  });
}

/** Keepalives for `sessionId` round-robin over `urls()`, counting how each was answered. */
function keepAlive(urls: () => string[], sessionId: string, everyMs: number) {
  const answers = { ok: 0, notFound: 0, other: 0 };
  let stopped = false;
  let i = 0;
  const done = (async () => {
    while (!stopped) {
      const targets = urls();
      const url = targets[i++ % targets.length];
      if (url !== undefined) {
        try {
          const r = await http('PUT', `${url}/v1/sessions/${sessionId}/keepalive`, undefined, {}, 3000);
          if (r.status === 200 && r.body.expiring !== true) answers.ok++;
          else if (r.status === 404) answers.notFound++;
          else answers.other++;
        } catch {
          answers.other++; // a node down or too slow: the next one
        }
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    answers,
    stop: async () => {
      stopped = true;
      await done;
    },
  };
}

describe('expiry across a change of leader', () => {
  let cluster: LocalCluster | undefined;
  const logs: string[] = [];

  afterEach(async () => {
    await cluster?.close();
    cluster = undefined;
    logs.length = 0;
  });

  async function start(): Promise<{ urls: string[]; leader: string }> {
    cluster = await LocalCluster.start({
      size: 3,
      env: { ROLLCALL_TEST_FAULTS: '1' },
      logLevel: 'info',
      onLog: (id, line) => logs.push(`${id} ${line}`),
    });
    const urls = cluster.nodes.map((n) => n.url);
    return { urls, leader: await waitForLeader(urls) };
  }

  it('an expiry its leader could not commit deletes nothing after failover while keepalives continue', async () => {
    const { leader } = await start();
    const c = cluster!;
    const l = c.node(leader);
    const followers = c.nodes.filter((n) => n.id !== leader);
    const session = `s-${Date.now()}`;
    const opened = await http(
      'POST',
      `${followers[0]!.url}/v1/sessions`,
      { ttlMs: TTL },
      { 'x-rollcall-session-id': session },
    );
    expect(opened.status).toBe(201);
    const reg = await register(followers[0]!.url, 'prod', 'pay', 'p1', {
      address: '10.9.0.1',
      port: 1,
      sessionId: session,
    });
    expect(reg.status, JSON.stringify(reg.body)).toBe(200);

    // The owner keeps the session alive through the followers only, as a client on their
    // side of a network fault would.
    const ka = keepAlive(() => followers.filter((n) => n.proc !== null).map((n) => n.url), session, 200);
    try {
      await waitFor('a keepalive answered', () => ka.answers.ok > 0);
      // The leader hears neither the forwarded keepalives nor the followers' append
      // acknowledgements (heartbeats still keep it in office): it expires the session on its
      // stale view, and its proposal reaches both followers but cannot commit.
      await setFaults(l.url, { dropFrom: followers.map((n) => n.id), kinds: ['keepalive', 'raft:appendResponse'] });
      await waitFor(
        'the leader to decide the expiry',
        () =>
          logs.some(
            (line) => line.startsWith(`${leader} `) && line.includes('expiring sessions whose keepalives stopped'),
          ),
        15_000,
      );
      const leaderLast = await metric(l.url, 'rollcall_last_index');
      for (const f of followers)
        await waitFor(
          `${f.id} to hold the expiry entry`,
          async () => (await metric(f.url, 'rollcall_last_index')) >= leaderLast,
        );
      expect(await metric(l.url, 'rollcall_commit_index')).toBeLessThan(leaderLast);

      await c.kill(leader);
      const live = followers.map((n) => n.url);
      const next = await waitForNewLeader(live, leader);
      // The new leader commits the old leader's entries with its own no-op...
      await waitFor(
        'the new leader to apply past the old expiry entry',
        async () => (await metric(c.node(next).url, 'rollcall_applied_index')) > leaderLast,
      );
      // ...and then holds the session for longer than its TTL on keepalives alone.
      const okBefore = ka.answers.ok;
      // 15 answers, 200 ms apart at the least: longer than 1.5 TTLs.
      await waitFor(
        'keepalives answered for more than a TTL',
        () => {
          if (ka.answers.notFound > 0) throw new Error('a keepalive was answered 404: the session was expired');
          return ka.answers.ok - okBefore >= 15;
        },
        30_000,
      );

      const r = await list(c.node(next).url, 'prod', 'pay');
      expect(r.status).toBe(200);
      expect(r.body.instances.map((i: { id: string }) => i.id)).toEqual(['p1']);
      expect(ka.answers.notFound).toBe(0);
    } finally {
      await ka.stop();
    }
  });

  it("a new leader still applying its predecessor's entries never answers a keepalive with 404", async () => {
    type Node = LocalCluster['nodes'][number];
    /**
     * The setup needs one leader throughout; on a loaded machine a follower may campaign in
     * the middle of it (a new term makes the uncommitted opening moot). That is the machine,
     * not the property: start over on a fresh cluster, up to three times.
     */
    const setUp = async (): Promise<{
      leader: string;
      y: Node;
      z: Node;
      session: string;
      leaderLast: number;
      opening: Promise<unknown>;
    } | null> => {
      const { leader } = await start();
      const c = cluster!;
      const l = c.node(leader);
      const [y, z] = c.nodes.filter((n) => n.id !== leader) as [Node, Node];
      const term = await metric(l.url, 'rollcall_term');
      const session = `s-${Date.now()}`;
      // The leader cannot commit: every follower's acknowledgement is lost, so the session's
      // opening reaches both followers' logs uncommitted (the client's request times out).
      await setFaults(l.url, { dropFrom: [y.id, z.id], kinds: ['raft:appendResponse'] });
      const opening = http(
        'POST',
        `${l.url}/v1/sessions`,
        { ttlMs: 60_000 },
        { 'x-rollcall-session-id': session },
        4000,
      ).catch(() => null);
      const leaderLast = await waitFor("the opening in the leader's log", async () => {
        const last = await metric(l.url, 'rollcall_last_index');
        return last > (await metric(l.url, 'rollcall_commit_index')) ? last : undefined;
      });
      const held = await waitFor('both followers to hold the opening', async () => {
        if ((await metric(l.url, 'rollcall_term')) !== term) return 'disturbed';
        for (const f of [y, z]) if ((await metric(f.url, 'rollcall_last_index')) < leaderLast) return undefined;
        return 'held';
      });
      if (held === 'disturbed') {
        await opening;
        await cluster?.close();
        cluster = undefined;
        return null;
      }
      return { leader, y, z, session, leaderLast, opening };
    };
    let setup = await setUp();
    for (let attempt = 1; setup === null && attempt < 3; attempt++) setup = await setUp();
    expect(setup, 'an election interrupted the setup three times').not.toBeNull();
    const { leader, y, z, session, leaderLast, opening } = setup!;
    const c = cluster!;
    // Whoever wins next cannot commit its no-op either, for now: the window in which a new
    // leader has not applied what it inherited stays open as long as the test needs.
    await setFaults(y.url, { dropFrom: [z.id], kinds: ['raft:appendResponse'] });
    await setFaults(z.url, { dropFrom: [y.id], kinds: ['raft:appendResponse'] });
    await c.kill(leader);
    await opening;
    const next = await waitForNewLeader([y.url, z.url], leader);
    const nextUrl = c.node(next).url;
    expect(await metric(nextUrl, 'rollcall_applied_index')).toBeLessThan(leaderLast);

    // A keepalive now must not say the session does not exist: it exists in the log the new
    // leader is about to commit. (Before the fix: 404 at once.)
    const early = await http('PUT', `${nextUrl}/v1/sessions/${session}/keepalive`, undefined, {}, 10_000);
    expect(early.status).not.toBe(404);
    expect(early.status).toBe(503);

    // Healed, the new leader commits and applies what it inherited; the keepalive succeeds.
    const pending = http('PUT', `${nextUrl}/v1/sessions/${session}/keepalive`, undefined, {}, 10_000);
    await setFaults(y.url, {});
    await setFaults(z.url, {});
    const late = await pending;
    expect(late.status).toBe(200);
    expect(late.body.ok).toBe(true);
  });
});
