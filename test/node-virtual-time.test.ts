/**
 * Node logic on virtual time (ManualClock, src/node/manual-clock.ts): the leader's duty
 * timer, session expiry, the cluster-version proposal's back-off, the time a removed node
 * lingers and a leadership transfer's wait, all driven by moving a clock instead of
 * sleeping. Each test would take seconds of wall time; they take none, and land on the
 * same virtual millisecond every run.
 */
import { describe, expect, it } from 'vitest';
import type { ConfState, RawNode, SoftState } from '../raft/index.js';
import { decode } from '../src/codec/index.js';
import { HealthTracker, PolicyResolver } from '../src/health/index.js';
import { silentLogger } from '../src/log/index.js';
import type { NodeError } from '../src/node/errors.js';
import { KeepaliveRelays } from '../src/node/keepalive-relays.js';
import { LeaderDuties } from '../src/node/leader-duties.js';
import { ManualClock } from '../src/node/manual-clock.js';
import { MemberStatus } from '../src/node/member-status.js';
import { Membership } from '../src/node/membership.js';
import { PeerBook } from '../src/node/peer-book.js';
import { PendingProposals } from '../src/node/proposals.js';
import type { LeaderCommand, Registry } from '../src/registry/index.js';
import { SessionTracker, STATE_MACHINE_VERSION } from '../src/registry/index.js';

/** Moves `clock` on by `ms` in `step`s, letting promise continuations run between steps. */
async function advance(clock: ManualClock, ms: number, step = 10): Promise<void> {
  for (let left = ms; left > 0; left -= step) {
    clock.advance(Math.min(step, left));
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

describe('ManualClock', () => {
  it('runs timers in time order, intervals until cancelled, and never a cancelled one', () => {
    const clock = new ManualClock();
    const ran: string[] = [];
    clock.setTimeout(() => ran.push(`b@${clock.now()}`), 20);
    clock.setTimeout(() => ran.push(`a@${clock.now()}`), 10);
    const cancelled = clock.setTimeout(() => ran.push('never'), 15);
    const every = clock.setInterval(() => ran.push(`tick@${clock.now()}`), 8);
    cancelled.cancel();
    clock.advance(17);
    every.cancel();
    clock.advance(100);
    expect(ran).toEqual(['tick@8', 'a@10', 'tick@16', 'b@20']);
    expect(clock.now()).toBe(117);
    expect(clock.wallNow() - clock.now()).toBe(Date.UTC(2026, 0, 1));
  });
});

/** A leader in term 2 with one session of `ttlMs`, its duty timer on `clock` every 200 ms (as the node's). */
function leader(opts: { clusterVersion: number; membersVersion: number; ttlMs?: number }) {
  const clock = new ManualClock();
  const soft: SoftState = { role: 'leader', leader: 'n1', term: 2 };
  const proposed: LeaderCommand[] = [];
  const times: { type: LeaderCommand['type']; at: number }[] = [];
  const session = { id: 's1', ttlMs: opts.ttlMs ?? 1000, suspectSince: null };
  const raw = {
    softState: () => soft,
    proposeBatch: (batch: readonly Uint8Array[]) => {
      for (const data of batch) {
        const c = decode<LeaderCommand>(data);
        proposed.push(c);
        times.push({ type: c.type, at: clock.now() });
      }
      return { ok: true, value: { firstIndex: 10, term: 2 } };
    },
  } as unknown as RawNode;
  const registry = {
    appliedTerm: 2,
    clusterVersion: opts.clusterVersion,
    sessions: () => [session],
    getSession: (id: string) => (id === session.id ? session : undefined),
    sessionInstances: () => [],
    serviceSize: () => 0,
    getInstance: () => undefined,
  } as unknown as Registry;
  const duties = new LeaderDuties({
    raw,
    registry,
    tracker: new SessionTracker(),
    health: new HealthTracker({ thresholds: new PolicyResolver(() => null).thresholds }),
    log: silentLogger(),
    clock,
    soft: () => soft,
    kick: () => {},
    wakeWaiters: () => {},
    proposed: () => {},
    membersVersion: () => opts.membersVersion,
    unrecordedMemberAddresses: () => new Map(),
    loopBlockedMs: () => 0,
    relays: new KeepaliveRelays({
      clock,
      isConnected: () => true,
      loopBlockedMs: () => 0,
      silenceMs: 250,
      catchUpMs: 1000,
    }),
  });
  duties.update(); // caught up with its own term: takes up its duties at virtual time 0
  clock.setInterval(() => {
    duties.checkExpiry();
    duties.checkClusterVersion();
  }, 200);
  /** When (virtual ms) each command of this type was proposed. */
  const at = (type: LeaderCommand['type']): number[] => times.filter((t) => t.type === type).map((t) => t.at);
  return { clock, duties, proposed, at };
}

describe('LeaderDuties on virtual time', () => {
  it('never expires a session kept alive, and proposes its expiry one TTL after the last keepalive', () => {
    const l = leader({ clusterVersion: STATE_MACHINE_VERSION, membersVersion: STATE_MACHINE_VERSION });
    // Keepalives every 400 ms for 10 s: a TTL of 1000 ms is never reached.
    for (let t = 0; t < 10_000; t += 400) {
      l.clock.advance(400);
      expect(l.duties.keepalive('s1')).toBe('ok');
    }
    expect(l.proposed).toEqual([]);
    const lastKeepalive = l.clock.now();
    l.clock.advance(999);
    expect(l.proposed).toEqual([]);
    l.clock.advance(201); // the next duty tick after the deadline
    // Two-phase expiry (cluster version 2 and later): an intent first, deleting only once it commits.
    expect(l.proposed).toMatchObject([{ type: 'expiryIntent', term: 2, sessionIds: ['s1'] }]);
    const proposedAt = l.at('expiryIntent')[0]!;
    expect(proposedAt - lastKeepalive).toBeGreaterThanOrEqual(1000);
    expect(proposedAt - lastKeepalive).toBeLessThanOrEqual(1000 + 200);
  });

  it('a new leader grants every session a full TTL before expiring it', () => {
    const l = leader({ clusterVersion: STATE_MACHINE_VERSION, membersVersion: STATE_MACHINE_VERSION, ttlMs: 5000 });
    l.clock.advance(4999);
    expect(l.at('expiryIntent')).toEqual([]);
    l.clock.advance(201);
    expect(l.at('expiryIntent')).toEqual([5000]);
  });

  it('proposes raising the cluster version on a duty tick, and again only every 2 s until applied', () => {
    const l = leader({ clusterVersion: 1, membersVersion: STATE_MACHINE_VERSION, ttlMs: 60_000 });
    l.clock.advance(5000);
    expect(l.at('setClusterVersion')).toEqual([200, 2200, 4200]);
    expect(l.proposed.filter((c) => c.type === 'setClusterVersion')).toMatchObject([
      { version: STATE_MACHINE_VERSION },
      { version: STATE_MACHINE_VERSION },
      { version: STATE_MACHINE_VERSION },
    ]);
  });
});

/** Membership of a three-voter cluster led by n1, on `clock`. */
function membership(clock: ManualClock) {
  const conf: ConfState = { voters: ['n1', 'n2', 'n3'], learners: [] };
  const state = { soft: { role: 'leader', leader: 'n1', term: 2 } as SoftState, transfers: [] as string[] };
  const raw = {
    transferLeadership: (to: string) => {
      state.transfers.push(to);
      return { ok: true, value: undefined };
    },
    status: () => ({ hardState: { term: 2, vote: 'n1', commit: 42 }, conf, progress: [], lastIndex: 42 }),
  } as unknown as RawNode;
  const m = new Membership({
    id: 'n1',
    raw,
    proposals: new PendingProposals(clock),
    log: silentLogger(),
    clock,
    book: new PeerBook('n1', new Map(), new Map(), new Map(), conf),
    setPeers: () => {},
    soft: () => state.soft,
    conf: () => conf,
    kick: () => {},
  });
  return { m, state };
}

describe('Membership on virtual time', () => {
  it('a transfer answers once leadership has moved, looking every 20 ms of the clock', async () => {
    const clock = new ManualClock();
    const { m, state } = membership(clock);
    let answer: unknown = null;
    void m.run({ type: 'transfer', to: 'n2' }, 5000).then((r) => (answer = r));
    await advance(clock, 300);
    expect(state.transfers).toEqual(['n2']);
    expect(answer).toBeNull();
    state.soft = { role: 'follower', leader: 'n2', term: 3 };
    await advance(clock, 20);
    expect(answer).toEqual({ index: 42, leader: 'n2' });
  });

  it('a transfer that never happens fails with TIMEOUT at its deadline, not before', async () => {
    const clock = new ManualClock();
    const { m } = membership(clock);
    let failed: NodeError | null = null;
    void m.run({ type: 'transfer', to: 'n3' }, 1000).catch((err: NodeError) => (failed = err));
    await advance(clock, 990);
    expect(failed).toBeNull();
    await advance(clock, 40);
    expect(failed).toMatchObject({ code: 'TIMEOUT' });
  });

  it('a removed node lingers for the given time before it retires', () => {
    const clock = new ManualClock();
    const { m } = membership(clock);
    clock.advance(1234);
    m.onApplied({ type: 'removeNode', node: 'n1' }, 50);
    expect(m.retired(1000)).toBe(false);
    clock.advance(1000);
    expect(m.retired(1000)).toBe(false);
    clock.advance(1);
    expect(m.retired(1000)).toBe(true);
  });
});

describe('MemberStatus on virtual time', () => {
  function members() {
    const clock = new ManualClock();
    const conf: ConfState = { voters: ['n1', 'n2', 'n3'], learners: [] };
    const raw = {
      status: () => ({
        softState: { role: 'leader', leader: 'n1', term: 2 },
        hardState: { term: 2, vote: 'n1', commit: 7 },
        conf,
      }),
    } as unknown as RawNode;
    const sent: { to: string; at: number }[] = [];
    const status = new MemberStatus({
      id: 'n1',
      raw,
      clock,
      buildVersion: 3,
      advertiseHttp: null,
      appliedIndex: () => 7,
      slowestRecentWriteMs: () => 0,
      send: (to) => void sent.push({ to, at: clock.now() }),
    });
    return { clock, status, sent };
  }

  it('tells every other member about itself every 500 ms until closed', () => {
    const { clock, status, sent } = members();
    status.start();
    clock.advance(1500);
    status.close();
    clock.advance(5000);
    expect(sent).toEqual([500, 500, 1000, 1000, 1500, 1500].map((at, i) => ({ to: i % 2 ? 'n3' : 'n2', at })));
  });

  it("counts a member's reported version for 3 s, then as the base version until it reports again", () => {
    const { clock, status } = members();
    const report = { role: 'follower', term: 2, commitIndex: 7, appliedIndex: 7, http: null, stateMachineVersion: 3 };
    expect(status.supportedVersion()).toBe(1); // never heard from n2 or n3
    status.onReport('n2', report);
    status.onReport('n3', { ...report, stateMachineVersion: 2 });
    expect(status.supportedVersion()).toBe(2);
    clock.advance(2000);
    status.onReport('n3', report);
    expect(status.supportedVersion()).toBe(3);
    clock.advance(1000);
    expect(status.supportedVersion()).toBe(3); // n2's report is 3000 ms old: still fresh
    clock.advance(1);
    expect(status.supportedVersion()).toBe(1); // n2 silent too long: it may have restarted on an older build
  });
});
