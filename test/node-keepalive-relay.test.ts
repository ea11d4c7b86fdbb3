/**
 * A follower's held event loop delays the keepalives it relays: a client that sends its
 * keepalives to a follower in time saw its session expired by the leader when that follower
 * was held (a GC pause, a long synchronous decode) past the session's deadline, because the
 * keepalive waited unread in the follower's socket meanwhile. The leader now gives a session
 * whose relay is silent at its deadline credit for one more TTL, once per keepalive
 * (src/node/keepalive-relays.ts).
 *
 * All on virtual time (ManualClock): the leader's duty timer every 200 ms; a follower `n2`
 * answering heartbeats every 50 ms and forwarding its client's keepalives at once, except
 * while it is held, when both wait and go out together when it runs again.
 */
import { describe, expect, it } from 'vitest';
import type { RawNode, SoftState } from '../raft/index.js';
import { decode } from '../src/codec/index.js';
import { HealthTracker, PolicyResolver } from '../src/health/index.js';
import { silentLogger } from '../src/log/index.js';
import { KeepaliveRelays } from '../src/node/keepalive-relays.js';
import { LeaderDuties } from '../src/node/leader-duties.js';
import { LoopBlockMeter } from '../src/node/loop-block-meter.js';
import { ManualClock } from '../src/node/manual-clock.js';
import type { KeepaliveOutcome, LeaderCommand, Registry } from '../src/registry/index.js';
import { SessionTracker, STATE_MACHINE_VERSION } from '../src/registry/index.js';

const FOLLOWER = 'n2';

/** A leader in term 2 with sessions `live` and `dead` of `ttlMs`, and a follower `n2` that relays for them. */
function cluster(ttlMs: number) {
  const clock = new ManualClock();
  const soft: SoftState = { role: 'leader', leader: 'n1', term: 2 };
  const intents = new Map<string, number>();
  const raw = {
    softState: () => soft,
    proposeBatch: (batch: readonly Uint8Array[]) => {
      for (const data of batch) {
        const c = decode<LeaderCommand>(data);
        if (c.type === 'expiryIntent')
          for (const id of c.sessionIds) if (!intents.has(id)) intents.set(id, clock.now());
      }
      return { ok: true, value: { firstIndex: 10, term: 2 } };
    },
  } as unknown as RawNode;
  const sessions = ['live', 'dead'].map((id) => ({ id, ttlMs, suspectSince: null }));
  const registry = {
    appliedTerm: 2,
    clusterVersion: STATE_MACHINE_VERSION,
    sessions: () => sessions,
    getSession: (id: string) => sessions.find((s) => s.id === id),
    sessionInstances: (id: string) => [{ namespace: 'prod', service: id }],
    serviceSize: () => 1,
    getInstance: () => undefined,
  } as unknown as Registry;
  const log = silentLogger();
  const meter = new LoopBlockMeter(clock, log);
  meter.start();
  const link = { connected: true };
  const relays = new KeepaliveRelays({
    clock,
    isConnected: (peer) => peer === FOLLOWER && link.connected,
    loopBlockedMs: () => meter.blockedMs(),
    silenceMs: 250,
    catchUpMs: 1000,
  });
  const duties = new LeaderDuties({
    raw,
    registry,
    tracker: new SessionTracker(),
    health: new HealthTracker({ thresholds: new PolicyResolver(() => null).thresholds }),
    log,
    clock,
    soft: () => soft,
    kick: () => {},
    wakeWaiters: () => {},
    proposed: () => {},
    membersVersion: () => STATE_MACHINE_VERSION,
    unrecordedMemberAddresses: () => new Map(),
    loopBlockedMs: () => meter.blockedMs(),
    relays,
  });
  duties.update(); // takes up its duties at virtual time 0: every session has a full TTL
  clock.setInterval(() => duties.checkExpiry(), 200);

  // The follower: while held it neither answers heartbeats nor forwards what its clients send.
  const follower = { held: false, silentForever: false, queued: [] as string[] };
  const answers: { id: string; outcome: KeepaliveOutcome }[] = [];
  /** A message from the follower reaches the leader (PeerInbox.receive). */
  const fromFollower = (keepaliveFor?: string) => {
    relays.heard(FOLLOWER);
    if (keepaliveFor !== undefined)
      answers.push({ id: keepaliveFor, outcome: duties.keepalive(keepaliveFor, undefined, FOLLOWER) });
  };
  clock.setInterval(() => {
    if (!follower.held && !follower.silentForever) fromFollower();
  }, 50);
  /** A client's keepalive, sent to the follower. */
  const sendToFollower = (id: string) => {
    if (follower.held || follower.silentForever) follower.queued.push(id);
    else fromFollower(id);
  };
  const hold = () => {
    follower.held = true;
  };
  /** The follower runs again: its timers first (a message to the leader), then its sockets (the keepalives). */
  const release = () => {
    follower.held = false;
    fromFollower();
    for (const id of follower.queued.splice(0)) fromFollower(id);
  };
  /** Its process died: the connection drops (the transport says so), and what it held died with it. */
  const die = () => {
    follower.held = true;
    link.connected = false;
    relays.connectionDropped(FOLLOWER);
  };
  /** Restarted: a new connection, and it answers heartbeats again (its queue was lost). */
  const restarted = () => {
    follower.queued.length = 0;
    link.connected = true;
    release();
  };
  return { clock, duties, intents, answers, follower, link, sendToFollower, hold, release, die, restarted };
}

describe('keepalives relayed by a follower whose event loop is held', () => {
  it('a session kept alive through a follower held past its deadline is not expired', () => {
    const c = cluster(3000);
    const every = 1000; // TTL/3, as the SDK keeps alive
    c.clock.setInterval(() => c.sendToFollower('live'), every);
    c.clock.advance(5000);
    expect(c.answers.every((a) => a.outcome === 'ok')).toBe(true);
    // Held for 4 s: longer than the 2 s margin between the keepalives and the TTL.
    c.hold();
    c.clock.advance(4000);
    expect(c.intents.has('live')).toBe(false);
    c.release();
    expect(c.answers.slice(-4).map((a) => a.outcome)).toEqual(['ok', 'ok', 'ok', 'ok']);
    c.clock.advance(10_000);
    expect(c.intents.has('live')).toBe(false);
    expect(c.answers.every((a) => a.outcome === 'ok')).toBe(true);
  });

  it('credit comes back with each real keepalive: a follower held again and again keeps its live sessions', () => {
    const c = cluster(3000);
    c.clock.setInterval(() => c.sendToFollower('live'), 1000);
    for (let round = 0; round < 5; round++) {
      c.clock.advance(3000); // free: keepalives flow
      c.hold();
      c.clock.advance(4000); // held past the margin: credited
      c.release(); // what it held arrives, renewing the session and its credit
    }
    c.clock.advance(5000);
    expect(c.intents.has('live')).toBe(false);
    expect(c.answers.filter((a) => a.id === 'live').every((a) => a.outcome === 'ok')).toBe(true);
  });

  it('a session whose client stopped is still expired, at most one TTL late, once', () => {
    const c = cluster(3000);
    c.clock.advance(1000);
    c.sendToFollower('dead'); // its last keepalive: deadline 4,000
    c.clock.advance(500);
    c.hold(); // held, then silent for good (cut off, or hung): it never delivers anything again
    c.follower.silentForever = true;
    c.clock.advance(20_000);
    expect(c.intents.get('dead')).toBeGreaterThanOrEqual(7000);
    expect(c.intents.get('dead')).toBeLessThanOrEqual(7200);
  });

  it('a follower heard from after the deadline holds nothing: the session expires on time', () => {
    const c = cluster(3000);
    c.clock.advance(1000);
    c.sendToFollower('dead'); // deadline 4,000; the follower keeps answering heartbeats
    c.clock.advance(10_000);
    expect(c.intents.get('dead')).toBeGreaterThanOrEqual(4000);
    expect(c.intents.get('dead')).toBeLessThanOrEqual(4200);
  });

  it('a follower back from a silence just before the deadline counts as silent at it: its queue may still be on the way', () => {
    const c = cluster(3000);
    c.clock.advance(1000);
    c.sendToFollower('dead'); // deadline 4,000
    c.clock.advance(500);
    c.hold();
    c.clock.advance(2400);
    c.release(); // back at 3,900 with nothing queued for `dead`: the credit is spent on nothing
    c.clock.advance(10_000);
    expect(c.intents.get('dead')).toBeGreaterThanOrEqual(7000);
    expect(c.intents.get('dead')).toBeLessThanOrEqual(7200);
  });

  it('a follower whose connection dropped holds nothing either: the session expires on time', () => {
    const c = cluster(3000);
    c.clock.advance(1000);
    c.sendToFollower('dead');
    c.clock.advance(500);
    c.hold();
    c.link.connected = false; // its process died: what it held died with it
    c.clock.advance(10_000);
    expect(c.intents.get('dead')).toBeGreaterThanOrEqual(4000);
    expect(c.intents.get('dead')).toBeLessThanOrEqual(4200);
  });

  it('a follower that died and came back before the deadline holds nothing: the session expires on time', () => {
    const c = cluster(3000);
    c.clock.advance(1000);
    c.sendToFollower('dead'); // deadline 4,000
    c.clock.advance(500);
    c.die(); // at 1,500: its connection drops
    c.clock.advance(2000);
    c.restarted(); // back at 3,500, connected again: a silence that ended just before the deadline
    c.clock.advance(10_000);
    expect(c.intents.get('dead')).toBeGreaterThanOrEqual(4000);
    expect(c.intents.get('dead')).toBeLessThanOrEqual(4200);
  });

  it('the leader’s own held loop is not the follower’s silence: no credit on top of the leader’s grace', () => {
    const c = cluster(1000);
    c.clock.advance(900);
    c.sendToFollower('dead'); // deadline 1,900
    c.clock.advance(500);
    // The leader held for 5 s: the follower's heartbeats wait unread in its socket meanwhile.
    c.clock.block(5000);
    c.clock.advance(0);
    // The leader's own grace: a full TTL from the end of its block (6,400), nothing more.
    c.clock.advance(10_000);
    expect(c.intents.get('dead')).toBeGreaterThanOrEqual(7400);
    expect(c.intents.get('dead')).toBeLessThanOrEqual(7600);
  });
});
