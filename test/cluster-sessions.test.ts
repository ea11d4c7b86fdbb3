/**
 * Sessions in a real cluster: keepalives through a follower keep an instance across a
 * leader crash; stopped keepalives expire it; when most of a service stops at once the
 * instances turn suspect instead of vanishing, and recover when keepalives resume.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { http, list, register, waitFor, waitForLeader } from './helpers/http.js';

const TTL = 4000;

/** Sends keepalives for `sessionId` to whichever of `urls()` answers, until stopped. */
function keepAlive(
  urls: () => string[],
  sessionId: string,
  everyMs = 400,
): { stop: () => void; failures: () => number } {
  let stopped = false;
  let failures = 0;
  let i = 0;
  const loop = async () => {
    while (!stopped) {
      const targets = urls();
      const url = targets[i++ % targets.length];
      if (url) {
        try {
          const r = await http('PUT', `${url}/v1/sessions/${sessionId}/keepalive`, undefined, {}, 2000);
          if (r.status === 404) failures++;
        } catch {
          /* node down: next one */
        }
      }
      await new Promise((r) => setTimeout(r, everyMs));
    }
  };
  void loop();
  return { stop: () => (stopped = true), failures: () => failures };
}

async function openSession(url: string): Promise<string> {
  const r = await http('POST', `${url}/v1/sessions`, { ttlMs: TTL });
  expect(r.status).toBe(201);
  return r.body.id as string;
}

describe('sessions and expiry', () => {
  let cluster: LocalCluster;
  let urls: string[];

  beforeAll(async () => {
    cluster = await LocalCluster.start({ size: 3, logLevel: 'warn' });
    urls = cluster.nodes.map((n) => n.url);
    await waitForLeader(urls);
  });
  afterAll(async () => {
    await cluster?.close();
  });

  it('keeps an instance alive through a follower across a kill -9 of the leader, then expires it when keepalives stop', async () => {
    const leader = await waitForLeader(urls);
    const follower = cluster.nodes.find((n) => n.id !== leader)!;
    const session = await openSession(follower.url);
    const r = await register(follower.url, 'prod', 'eph', 'e1', { address: '10.5.0.1', port: 1, sessionId: session });
    expect(r.status).toBe(200);
    expect(r.body.instance.ephemeral).toBe(true);
    const ka = keepAlive(() => [follower.url], session);
    try {
      await cluster.kill(leader);
      const live = cluster.running().map((n) => n.url);
      const newLeader = await waitFor(
        'a new leader',
        async () => {
          const l = await waitForLeader(live);
          return l !== leader ? l : undefined;
        },
        20_000,
      );
      expect(cluster.running().map((n) => n.id)).toContain(newLeader);
      // Several TTLs pass under the new leader: the instance must still be there.
      const start = Date.now();
      await waitFor('2 TTLs to pass', () => Date.now() - start > 2 * TTL, 15_000, 100);
      const still = await list(follower.url, 'prod', 'eph');
      expect(still.body.instances.map((i: { id: string }) => i.id)).toEqual(['e1']);
      expect(ka.failures()).toBe(0);
    } finally {
      ka.stop();
      await cluster.restart(leader);
    }
    await waitFor(
      'the instance to expire after keepalives stop',
      async () => {
        const l = await list(urls[0]!, 'prod', 'eph');
        return l.status === 200 && l.body.instances.length === 0;
      },
      20_000,
    );
    const gone = await http('PUT', `${urls[1]!}/v1/sessions/${session}/keepalive`);
    expect(gone.status).toBe(404);
  }, 120_000);

  // This case and the next run at once: each waits out TTLs on a service of its own, and
  // expiry protection is per service (a service under three instances is never held).
  it.concurrent('marks most of a service suspect instead of deleting it when their keepalives stop at once, and recovers them', async () => {
    const ids = ['s1', 's2', 's3', 's4', 's5'];
    const sessions = new Map<string, string>();
    for (const id of ids) {
      const s = await openSession(urls[0]!);
      sessions.set(id, s);
      const r = await register(urls[0]!, 'prod', 'guarded', id, { address: '10.4.0.1', port: 1, sessionId: s });
      expect(r.status).toBe(200);
    }
    const keepers = new Map(
      ids.map((id) => [id, keepAlive(() => cluster.running().map((n) => n.url), sessions.get(id)!)]),
    );
    // Four of five stop at once: far above the 40 % protection threshold.
    for (const id of ids.slice(1)) keepers.get(id)!.stop();
    const suspect = await waitFor(
      'the silent instances to turn suspect',
      async () => {
        const l = await list(urls[1]!, 'prod', 'guarded');
        const byId = new Map((l.body.instances as { id: string; health: string }[]).map((i) => [i.id, i.health]));
        return ids.slice(1).every((id) => byId.get(id) === 'suspect') ? byId : undefined;
      },
      20_000,
    );
    expect(suspect.size).toBe(5); // nothing was deleted
    expect(suspect.get('s1')).toBe('healthy');
    // Protection is the leader's: it holds the deadlines.
    const leaderId = await waitForLeader(urls);
    const status = await http('GET', `${cluster.node(leaderId).url}/v1/cluster`);
    expect(JSON.stringify(status.body.protection)).toContain('guarded');
    // Keepalives resume: they come back healthy.
    for (const id of ids.slice(1))
      keepers.set(
        id,
        keepAlive(() => cluster.running().map((n) => n.url), sessions.get(id)!),
      );
    await waitFor(
      'the instances to be healthy again',
      async () => {
        const l = await list(urls[2]!, 'prod', 'guarded');
        return (
          (l.body.instances as { health: string }[]).length === 5 &&
          (l.body.instances as { health: string }[]).every((i) => i.health === 'healthy')
        );
      },
      20_000,
    );
    for (const k of keepers.values()) k.stop();
  }, 120_000);

  it.concurrent('expires the single instance of a service normally', async () => {
    const s = await openSession(urls[0]!);
    await register(urls[0]!, 'prod', 'lonely', 'only', { address: '10.3.0.1', port: 1, sessionId: s });
    await waitFor(
      'the lone instance to expire',
      async () => {
        const l = await list(urls[0]!, 'prod', 'lonely');
        return l.body.instances.length === 0;
      },
      20_000,
    );
  }, 60_000);
});
