/**
 * A wall-clock step must never expire a live session, nor keep a dead one (issue 22, item
 * 2). Each node of a real 3-node cluster runs under libfaketime (Debian's `faketime`,
 * installed by .ci/run) with its own offset file, monotonic time left real; the test steps
 * the leader's and then a follower's wall clock forward and backward by minutes while
 * keepalives continue, then stops one session's keepalives while the leader's clock jumps
 * back, and checks that it still expires within about one TTL.
 *
 * Each session owns one instance in a service of its own: services under three instances
 * are never held by expiry protection, so an expiry here is visible at once.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { http, list, register, waitFor, waitForLeader } from './helpers/http.js';

const TTL = 3000;
const KEEPALIVE_EVERY = 400;

/** Debian puts libfaketime under the multiarch directory. */
function findFaketime(): string {
  for (const dir of readdirSync('/usr/lib', { withFileTypes: true })) {
    if (!dir.isDirectory()) continue;
    const lib = path.join('/usr/lib', dir.name, 'faketime', 'libfaketime.so.1');
    if (existsSync(lib)) return lib;
  }
  throw new Error(
    "libfaketime not found: install Debian's faketime package (apt-get install -y faketime; .ci/run does)",
  );
}

interface Keepalives {
  readonly answers: { ok: number; notFound: number; expiring: number; other: number };
  stop(): Promise<void>;
}

/** Keepalives for one session round-robin over every node, counting each kind of answer. */
function keepAlive(urls: readonly string[], sessionId: string): Keepalives {
  const answers = { ok: 0, notFound: 0, expiring: 0, other: 0 };
  let stopped = false;
  let i = 0;
  const done = (async () => {
    while (!stopped) {
      const url = urls[i++ % urls.length]!;
      try {
        const r = await http('PUT', `${url}/v1/sessions/${sessionId}/keepalive`, undefined, {}, 3000);
        if (r.status === 404) answers.notFound++;
        else if (r.status === 200 && r.body.expiring === true) answers.expiring++;
        else if (r.status === 200) answers.ok++;
        else answers.other++;
      } catch {
        answers.other++;
      }
      await new Promise((r) => setTimeout(r, KEEPALIVE_EVERY));
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

describe('wall-clock steps', () => {
  let cluster: LocalCluster | undefined;
  const dir = mkdtempSync(path.join(tmpdir(), 'rollcall-clock-'));
  const offsetFile = (id: string) => path.join(dir, `${id}.faketime`);
  /** Sets a node's wall clock to real time + `seconds` (libfaketime re-reads the file on every call). */
  const stepClock = (id: string, seconds: number) =>
    writeFileSync(offsetFile(id), `${seconds >= 0 ? '+' : ''}${seconds}s\n`);

  afterAll(async () => {
    await cluster?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("stepping the leader's or a follower's clock by minutes expires no live session and keeps no dead one", async () => {
    const lib = findFaketime();
    for (const id of ['n1', 'n2', 'n3']) stepClock(id, 0);
    cluster = await LocalCluster.start({
      size: 3,
      logLevel: 'warn',
      nodeEnv: (id) => ({
        LD_PRELOAD: lib,
        FAKETIME_TIMESTAMP_FILE: offsetFile(id),
        FAKETIME_NO_CACHE: '1',
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
      }),
    });
    const c = cluster;
    const urls = c.nodes.map((n) => n.url);
    const leader = await waitForLeader(urls);
    const follower = c.nodes.find((n) => n.id !== leader)!.id;

    const sessions = ['a', 'b', 'c', 'd'].map((s) => `clock-${s}`);
    for (const [i, id] of sessions.entries()) {
      const url = urls[i % urls.length]!;
      const opened = await http('POST', `${url}/v1/sessions`, { ttlMs: TTL }, { 'x-rollcall-session-id': id });
      expect(opened.status, JSON.stringify(opened.body)).toBe(201);
      const reg = await register(url, 'prod', `svc-${id}`, 'i1', { address: '10.7.0.1', port: 1, sessionId: id });
      expect(reg.status, JSON.stringify(reg.body)).toBe(200);
    }
    const kas = new Map(sessions.map((id) => [id, keepAlive(urls, id)]));
    try {
      /** Waits until every running keepalive loop has had `n` more answers of any kind, failing at once on a 404. */
      const keepaliveRounds = async (n: number, what: string) => {
        const start = new Map([...kas].map(([id, k]) => [id, k.answers.ok + k.answers.other + k.answers.expiring]));
        await waitFor(
          what,
          () => {
            for (const [id, k] of kas) {
              if (k.answers.notFound > 0 || k.answers.expiring > 0)
                throw new Error(
                  `${what}: a keepalive for ${id} said the session is gone or going: ${JSON.stringify(k.answers)}`,
                );
            }
            return [...kas].every(
              ([id, k]) => k.answers.ok + k.answers.other + k.answers.expiring - start.get(id)! >= n,
            );
          },
          60_000,
        );
      };
      // A TTL and a quarter of keepalives after each step: a deadline read on the stepped
      // wall clock fires within one TTL of the step (every deadline set before it has passed
      // by then), and the leader's expiry check runs every 200 ms.
      const rounds = Math.ceil((1.25 * TTL) / KEEPALIVE_EVERY);
      await keepaliveRounds(2, 'keepalives before any step');
      stepClock(leader, 600);
      await keepaliveRounds(rounds, "keepalives after the leader's clock jumped 10 minutes ahead");
      stepClock(leader, -600);
      await keepaliveRounds(rounds, "keepalives after the leader's clock jumped 20 minutes back");
      stepClock(follower, 900);
      await keepaliveRounds(rounds, "keepalives after a follower's clock jumped 15 minutes ahead");
      stepClock(follower, -900);
      await keepaliveRounds(rounds, "keepalives after a follower's clock jumped 30 minutes back");

      // The last session's owner stops; at that moment the leader's clock jumps back again.
      const last = sessions[sessions.length - 1]!;
      await kas.get(last)!.stop();
      kas.delete(last);
      const stoppedAt = performance.now();
      stepClock(leader, -1800);
      await waitFor(
        `${last}'s instance to expire`,
        async () => (await list(urls[0]!, 'prod', `svc-${last}`)).body.instances?.length === 0,
        TTL + 10_000,
      );
      // Its TTL, the leader's expiry check (200 ms), two commits and the list's own round
      // trip; a deadline kept on the wall clock would have held it for another 30 minutes.
      expect(performance.now() - stoppedAt).toBeLessThan(TTL + 2500);

      await keepaliveRounds(2, 'keepalives at the end');
      for (const id of sessions.slice(0, -1)) {
        const r = await list(urls[1]!, 'prod', `svc-${id}`);
        expect(
          r.body.instances.map((i: { id: string }) => i.id),
          id,
        ).toEqual(['i1']);
        expect(kas.get(id)!.answers.notFound).toBe(0);
      }
      expect(await waitForLeader(urls)).toBe(leader);
    } finally {
      await Promise.all([...kas.values()].map((k) => k.stop()));
    }
  }, 120_000);
});
