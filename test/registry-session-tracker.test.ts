import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Command, Due, SessionTrackerOptions } from '../src/registry/index.js';
import { commandsFor, SessionTracker } from '../src/registry/index.js';
import { inst, Log, seed } from './registry-helpers.js';

const TTL = 10_000;
const WINDOW = 60_000;

/**
 * A cluster of `nodes` trackers over one applied registry, fed the way the node layer feeds
 * them: the current leader's tracker gets keepalives and due(); every tracker, leader or not,
 * gets recordExpired for what each applied expire deleted.
 */
async function leader(options: SessionTrackerOptions = {}, nodes = 1) {
  const log = await Log.open();
  const trackers = Array.from({ length: nodes }, () => new SessionTracker({ windowMs: WINDOW, ...options }));
  let current = trackers[0]!;
  /** Applies a command and, on every node, records the instances an expire deleted. */
  const apply = (cmd: Command, now: number) => {
    const { events } = log.apply(cmd);
    const deleted = events.filter((e) => e.type === 'delete' && e.cause === 'expire').map((e) => e.instance);
    for (const t of trackers) t.recordExpired(deleted, now);
  };
  return {
    log,
    trackers,
    apply,
    /** The leader's tracker. */
    get tracker() {
      return current;
    },
    /** Opens a session at `now` and registers `ids` in `service` on it. */
    open(sessionId: string, now: number, ids: string[], service = 'orders') {
      log.apply({ type: 'openSession', sessionId, ttlMs: TTL, now });
      current.onSessionOpened(sessionId, TTL, now);
      for (const id of ids) log.apply({ ...inst(id, { sessionId }), service } as Parameters<typeof log.apply>[0]);
    },
    /** Asks what is due, proposes and applies it, like the node's expiry timer. */
    tick(now: number): Due {
      const due = current.due(now, log.registry);
      for (const cmd of commandsFor(due, log.term, now)) apply(cmd, now);
      for (const id of due.expire) current.onSessionClosed(id);
      return due;
    },
    /** Node `to` wins the next term at `now`; the old leader steps down. */
    failover(to: number, now: number) {
      current.stepDown();
      current = trackers[to]!;
      log.term++;
      current.becomeLeader(now, log.registry.sessions());
    },
    ids(service = 'orders') {
      return log.registry.listInstances('prod', service).instances.map((i) => `${i.id}:${i.health}`);
    },
  };
}

const nothing: Due = { expire: [], suspect: [], clearSuspect: [] };

describe('session tracker: expiry', () => {
  it('expires a session a full TTL after its last keepalive, with its instances', async () => {
    const l = await leader();
    l.open('s1', 0, ['a']);
    expect(l.tick(9_999)).toEqual(nothing);
    expect(l.tracker.keepalive('s1', 5_000)).toBe('ok');
    expect(l.tick(14_999)).toEqual(nothing);
    expect(l.tick(15_000)).toEqual({ ...nothing, expire: ['s1'] });
    expect(l.ids()).toEqual([]);
    expect(l.log.registry.getSession('s1')).toBeUndefined();
    expect(l.tracker.keepalive('s1', 15_001)).toBe('unknown');
  });

  it('a new leader grants every session a full TTL from when it took over', async () => {
    const l = await leader();
    l.open('s1', 0, ['a']);
    l.open('s2', 0, ['b']);
    const next = new SessionTracker();
    next.becomeLeader(50_000, l.log.registry.sessions());
    expect(next.due(59_999, l.log.registry)).toEqual(nothing);
    expect(next.nextDeadline(50_000)).toBe(60_000);
    expect(next.due(60_000, l.log.registry)).toEqual({ ...nothing, expire: ['s1', 's2'] });
  });

  it('does not propose the same expiry twice while it is in flight, and refuses keepalives meanwhile', async () => {
    const l = await leader({ reproposeMs: 5_000 });
    l.open('s1', 0, ['a']);
    expect(l.tracker.due(10_000, l.log.registry).expire).toEqual(['s1']);
    expect(l.tracker.due(10_001, l.log.registry)).toEqual(nothing);
    expect(l.tracker.keepalive('s1', 10_002)).toBe('expiring');
    expect(l.tracker.due(15_000, l.log.registry).expire).toEqual(['s1']); // the proposal was lost: again
  });

  it('a service with one instance (or below the minimum) that stops heartbeating is expired normally', async () => {
    const l = await leader();
    l.open('s1', 0, ['a'], 'solo');
    l.open('s2', 0, ['b'], 'pair');
    l.open('s3', 0, ['c'], 'pair');
    expect(l.tick(10_000)).toEqual({ ...nothing, expire: ['s1', 's2', 's3'] });
    expect(l.tracker.protection()).toEqual([]);
  });

  it('expires below the threshold: 1 of 5 gone is a normal loss', async () => {
    const l = await leader();
    for (const n of [1, 2, 3, 4, 5]) l.open(`s${n}`, 0, [`i${n}`]);
    for (const n of [2, 3, 4, 5]) l.tracker.keepalive(`s${n}`, 9_000);
    expect(l.tick(10_000)).toEqual({ ...nothing, expire: ['s1'] });
  });
});

describe('session tracker: protection', () => {
  /** 10 instances on 10 sessions; `lost` stop heartbeating at t=0, the rest keep alive every 5 s until `until`. */
  async function fleet(lost: number, until: number) {
    const l = await leader();
    for (let n = 0; n < 10; n++) l.open(`s${n}`, 0, [`i${n}`]);
    const alive = new Set(Array.from({ length: 10 - lost }, (_, k) => `s${k + lost}`));
    const beat = (now: number) => {
      for (const s of alive) l.tracker.keepalive(s, now);
    };
    for (let t = 5_000; t <= until; t += 5_000) beat(t);
    return Object.assign(l, { alive, beat });
  }

  it('marks suspect instead of deleting when more than the fraction of a service would expire at once', async () => {
    const l = await fleet(5, 10_000);
    const due = l.tick(10_000);
    expect(due).toEqual({ ...nothing, suspect: ['s0', 's1', 's2', 's3', 's4'] });
    expect(l.ids()).toEqual([
      ...[0, 1, 2, 3, 4].map((n) => `i${n}:suspect`),
      ...[5, 6, 7, 8, 9].map((n) => `i${n}:healthy`),
    ]);
    expect(l.log.registry.getSession('s0')?.suspectSince).toBe(10_000);
    expect(l.tracker.protection()).toEqual([
      { namespace: 'prod', service: 'orders', enteredAt: 10_000, settledSince: null, held: [] },
    ]);
    // held, not re-proposed, while the fault lasts
    l.beat(15_000);
    expect(l.tick(15_000)).toEqual(nothing);
    expect(l.tracker.protection()[0]?.held).toEqual(['s0', 's1', 's2', 's3', 's4']);
  });

  it('credit (a keepalive a silent relay may hold) is refused while a suspect mark is proposed', async () => {
    const l = await fleet(5, 10_000);
    // The marks proposed, not yet applied: a credit now would outlive them and clear them.
    expect(l.tracker.due(10_000, l.log.registry).suspect).toEqual(['s0', 's1', 's2', 's3', 's4']);
    expect(l.tracker.credit('s0', 10_000)).toBe(false);
    expect(l.tracker.deadlineOf('s0')).toBeLessThanOrEqual(10_000);
  });

  it('a keepalive clears suspect', async () => {
    const l = await fleet(5, 10_000);
    l.tick(10_000);
    expect(l.tracker.keepalive('s0', 12_000)).toBe('ok');
    expect(l.tick(12_000)).toEqual({ ...nothing, clearSuspect: ['s0'] });
    expect(l.ids()[0]).toBe('i0:healthy');
    expect(l.log.registry.getSession('s0')?.suspectSince).toBeNull();
  });

  it('expires the held ones once the rest recovered and they did not, after a settled window', async () => {
    const l = await fleet(5, 10_000);
    l.tick(10_000);
    for (const s of ['s0', 's1', 's2']) {
      l.tracker.keepalive(s, 20_000);
      l.alive.add(s);
    }
    l.beat(20_000);
    expect(l.tick(20_000)).toEqual({ ...nothing, clearSuspect: ['s0', 's1', 's2'] });
    // s3, s4 = 2 of 10 failing: no longer tripped, so the mode settled at 20 s and holds them one more window
    expect(l.tracker.protection()[0]).toMatchObject({ settledSince: 20_000, held: ['s3', 's4'] });
    for (let t = 25_000; t < 20_000 + WINDOW; t += 5_000) {
      l.beat(t);
      expect(l.tick(t)).toEqual(nothing);
    }
    l.beat(20_000 + WINDOW);
    expect(l.tick(20_000 + WINDOW)).toEqual({ ...nothing, expire: ['s3', 's4'] });
    expect(l.ids()).toHaveLength(8);
    l.beat(90_000);
    l.tick(90_000);
    expect(l.tracker.protection()).toEqual([]);
  });

  it('deadlines follow the monotonic clock: a wall-clock step neither expires a live session nor keeps a dead one', async () => {
    const l = await leader();
    l.open('s1', 0, ['a']);
    // The wall clock (third argument) jumped 10 minutes ahead, then 20 back: only the
    // monotonic time decides, and the session is due exactly at its TTL.
    expect(l.tracker.due(TTL - 1, l.log.registry, TTL - 1 + 600_000)).toEqual(nothing);
    expect(l.tracker.due(TTL, l.log.registry, TTL - 600_000)).toEqual({ ...nothing, expire: ['s1'] });
  });

  it('a wall clock stepped past the maximum hold does not release a held service at once', async () => {
    const l = await fleet(6, 10_000);
    expect(l.tick(10_000).suspect).toHaveLength(6);
    l.beat(15_000);
    l.tick(15_000);
    // The wall clock jumps 16 minutes ahead (past maxHold, 15 min, from suspectSince).
    const ahead = 16 * 60_000;
    l.beat(20_000);
    expect(l.tracker.due(20_000, l.log.registry, 20_000 + ahead).expire).toEqual([]);
    // Only once this leader has itself seen them held for a window (60 s, monotonic) does
    // the maximum hold, read on the replicated wall-clock time, let them go.
    l.beat(74_000);
    expect(l.tracker.due(74_000, l.log.registry, 74_000 + ahead).expire).toEqual([]);
    l.beat(76_000);
    expect(l.tracker.due(76_000, l.log.registry, 76_000 + ahead).expire).toEqual(['s0', 's1', 's2', 's3', 's4', 's5']);
  });

  it('expires held sessions after the maximum hold even while the service is still tripped', async () => {
    const maxHoldMs = 15 * 60_000;
    const l = await fleet(6, 10_000);
    expect(l.tick(10_000).suspect).toHaveLength(6);
    for (let t = 15_000; t < 10_000 + maxHoldMs; t += 60_000) {
      l.beat(t);
      expect(l.tick(t)).toEqual(nothing);
    }
    l.beat(10_000 + maxHoldMs);
    expect(l.tick(10_000 + maxHoldMs)).toEqual({ ...nothing, expire: ['s0', 's1', 's2', 's3', 's4', 's5'] });
    expect(l.ids()).toHaveLength(4);
  });

  it('counts expiries within the window: a second wave is held even though it alone is small', async () => {
    const l = await leader();
    for (let n = 0; n < 10; n++) l.open(`s${n}`, n < 2 ? 0 : 1_000, [`i${n}`]);
    for (let n = 5; n < 10; n++) l.tracker.keepalive(`s${n}`, 9_000);
    expect(l.tick(10_000)).toEqual({ ...nothing, expire: ['s0', 's1'] }); // 2 of 10
    // s2..s4 lapse a second later: 2 recent + 3 = 5 of 10 within the window
    expect(l.tick(11_000)).toEqual({ ...nothing, suspect: ['s2', 's3', 's4'] });
  });

  it('a new leader neither clears suspects without a keepalive nor expires them within its grant', async () => {
    const l = await fleet(5, 10_000);
    l.tick(10_000);
    const next = new SessionTracker({ windowMs: WINDOW });
    next.becomeLeader(30_000, l.log.registry.sessions());
    expect(next.due(35_000, l.log.registry)).toEqual(nothing);
    next.keepalive('s0', 36_000);
    expect(next.due(36_000, l.log.registry)).toEqual({ ...nothing, clearSuspect: ['s0'] });
    // when the grant runs out, s1..s4 are held again: 4 of 10 is not above the fraction, so the
    // service settles now and they get one more window before they expire
    for (let n = 5; n < 10; n++) next.keepalive(`s${n}`, 39_000);
    expect(next.due(40_000, l.log.registry)).toEqual(nothing);
    expect(next.protection()[0]).toMatchObject({ settledSince: 40_000, held: ['s1', 's2', 's3', 's4'] });
    for (let t = 45_000; t <= 40_000 + WINDOW; t += 5_000)
      for (const n of [0, 5, 6, 7, 8, 9]) next.keepalive(`s${n}`, t);
    expect(next.due(40_000 + WINDOW, l.log.registry).expire).toEqual(['s1', 's2', 's3', 's4']);
  });

  it('a session with instances in several services is held if any of them is protected', async () => {
    const l = await leader();
    for (let n = 0; n < 4; n++) l.open(`s${n}`, 0, [`i${n}`]);
    l.log.apply({ ...inst('x', { sessionId: 's0' }), service: 'solo' } as Parameters<typeof l.log.apply>[0]);
    for (const n of [2, 3]) l.tracker.keepalive(`s${n}`, 9_000);
    expect(l.tick(10_000)).toEqual({ ...nothing, suspect: ['s0', 's1'] });
    expect(l.ids('solo')).toEqual(['x:suspect']);
  });
});

describe('session tracker: the window of recent expiries', () => {
  /**
   * 10 instances on 10 sessions of 'orders' on a cluster of `nodes`; s0..s3 stop at 0 and the
   * leader expires them at 10 s: 4 of 10, exactly the most one window may lose (0.4).
   */
  async function wave(nodes: number) {
    const l = await leader({}, nodes);
    for (let n = 0; n < 10; n++) l.open(`s${n}`, 0, [`i${n}`]);
    for (let n = 4; n < 10; n++) l.tracker.keepalive(`s${n}`, 9_000);
    expect(l.tick(10_000)).toEqual({ ...nothing, expire: ['s0', 's1', 's2', 's3'] });
    return l;
  }

  // Regression: becomeLeader/stepDown cleared the window, so a leader elected in the middle of a
  // wave saw only the 6 survivors and expired a 5th instance of 10 within one window.
  it.each([
    ['another node, which saw the wave as a follower', 1],
    ['the same node, leading again', 0],
  ])(
    'a failover in the middle of an expiry wave does not reset the protection window (new leader: %s)',
    async (_, next) => {
      const l = await wave(2);
      l.failover(next, 12_000); // full TTL for everyone: deadlines at 22 s
      for (let n = 5; n < 10; n++) l.tracker.keepalive(`s${n}`, 20_000);
      // s4 lapses: 4 expired within the window + 1 = 5 of 10 > 0.4
      expect(l.tick(22_000)).toEqual({ ...nothing, suspect: ['s4'] });
      expect(l.ids()).toEqual(['i4:suspect', ...[5, 6, 7, 8, 9].map((n) => `i${n}:healthy`)]);
      expect(l.tracker.protection()).toEqual([
        { namespace: 'prod', service: 'orders', enteredAt: 22_000, settledSince: null, held: [] },
      ]);
    },
  );

  it.each([
    [59_999, { ...nothing, suspect: ['s4'] }],
    [60_000, { ...nothing, expire: ['s4'] }],
  ])('recorded expiries stop counting a window after they were applied (failover at %i)', async (failoverAt, due) => {
    const l = await wave(2);
    l.failover(1, failoverAt);
    for (let n = 5; n < 10; n++) l.tracker.keepalive(`s${n}`, failoverAt + 5_000);
    // the wave was applied at 10 s; it counts while now - 10 s < WINDOW
    expect(l.tick(failoverAt + TTL)).toEqual(due);
  });

  it('a follower keeps only the last window of what it applied', () => {
    const t = new SessionTracker({ windowMs: WINDOW });
    const orders = { namespace: 'prod', service: 'orders' };
    t.recordExpired([orders, orders, orders, orders], 0);
    t.recordExpired([], 30_000);
    const view = (lapsed: string[]) => ({
      getSession: () => ({ ttlMs: TTL, suspectSince: null }),
      sessionInstances: (id: string) => (lapsed.includes(id) ? [orders] : []),
      serviceSize: () => 6,
    });
    // leads at 50 s and x lapses: size 6 + 4 recent = 10, failing 1 + 4 = 5 > 0.4 * 10: held
    t.becomeLeader(50_000, [{ id: 'x', ttlMs: 1 }]);
    expect(t.due(50_001, view(['x'])).suspect).toEqual(['x']);
    t.becomeLeader(60_000, [{ id: 'y', ttlMs: 1 }]);
    expect(t.due(60_001, view(['y'])).expire).toEqual(['y']); // the 4 from 0 s are out of the window
  });

  it('each expired instance counts once: as lapsed while its expiry is in flight, through recordExpired once applied', async () => {
    const l = await leader();
    for (let n = 0; n < 10; n++) l.open(`s${n}`, n < 2 ? 0 : n * 500 - 500, [`i${n}`]); // s2 lapses at 10.5 s, s3 at 11 s, s4 at 11.5 s
    for (let n = 5; n < 10; n++) l.tracker.keepalive(`s${n}`, 9_000);
    const first = l.tracker.due(10_000, l.log.registry);
    expect(first.expire).toEqual(['s0', 's1']); // proposed, not applied yet
    // s0, s1 in flight count as lapsed (not also as expired): 3 of 10 failing
    const second = l.tracker.due(10_500, l.log.registry);
    expect(second).toEqual({ ...nothing, expire: ['s2'] });
    for (const due of [first, second]) for (const cmd of commandsFor(due, l.log.term, 10_600)) l.apply(cmd, 10_600);
    // applied: 3 in the window (and no longer lapsed) + s3 = 4 of 10, still a normal loss
    expect(l.tracker.due(11_000, l.log.registry)).toEqual({ ...nothing, expire: ['s3'] });
    for (const cmd of commandsFor({ ...nothing, expire: ['s3'] }, l.log.term, 11_000)) l.apply(cmd, 11_000);
    // a 5th within the window is held
    expect(l.tracker.due(11_500, l.log.registry)).toEqual({ ...nothing, suspect: ['s4'] });
  });
});

describe('session tracker: protection bound (property)', () => {
  const outage = fc.record({
    downAt: fc.integer({ min: 0, max: 120 }),
    length: fc.option(fc.integer({ min: 1, max: 90 }), { nil: undefined }),
  });
  const fleets = fc.array(fc.option(outage, { freq: 2, nil: undefined }), { minLength: 3, maxLength: 12 });
  type Fleet = readonly ({ downAt: number; length: number | undefined } | undefined)[];

  /** Runs `fleet` for 240 s on 3 nodes, failing over at each second in `failovers`, and checks the bound. */
  async function run(fleet: Fleet, failovers: readonly number[]) {
    const l = await leader({}, 3);
    for (let n = 0; n < fleet.length; n++) l.open(`s${n}`, 0, [`i${n}`]);
    const expiredAt: number[] = [];
    let leaderIndex = 0;
    for (let sec = 1; sec <= 240; sec++) {
      const now = sec * 1_000;
      if (failovers.includes(sec)) l.failover((leaderIndex = (leaderIndex + 1) % 3), now);
      fleet.forEach((o, n) => {
        const down = o !== undefined && sec >= o.downAt && (o.length === undefined || sec < o.downAt + o.length);
        if (!down && sec % 3 === 0) l.tracker.keepalive(`s${n}`, now);
      });
      for (const _ of l.tick(now).expire) expiredAt.push(now);
    }
    // At each expiry, look back one window: the service then had `size` instances (all but those
    // expired before the window); if that is at least the minimum, at most the fraction may go.
    for (const t of expiredAt) {
      const size = fleet.length - expiredAt.filter((u) => u <= t - WINDOW).length;
      const inWindow = expiredAt.filter((u) => u > t - WINDOW && u <= t).length;
      if (size >= 3) expect(inWindow, `at ${t} of ${size}`).toBeLessThanOrEqual(Math.floor(0.4 * size));
    }
    // whoever never went down is still there and healthy
    fleet.forEach((o, n) => {
      if (o === undefined) expect(l.log.registry.getInstance('prod', 'orders', `i${n}`)?.health).toBe('healthy');
    });
  }

  it('never expires more than the fraction of a protected service within one window (before the maximum hold)', async () => {
    await fc.assert(
      fc.asyncProperty(fleets, (fleet) => run(fleet, [])),
      { seed: seed(424_242), numRuns: 60 },
    );
  });

  it('keeps that bound across failovers, whichever node leads', async () => {
    const failovers = fc.uniqueArray(fc.integer({ min: 1, max: 240 }), { minLength: 1, maxLength: 4 });
    await fc.assert(
      fc.asyncProperty(fleets, failovers, (fleet, at) => run(fleet, at)),
      { seed: seed(515_151), numRuns: 100 },
    );
  });
});

describe('session tracker: credit for a silent relay', () => {
  it('is no sign of life: the floor after the leader’s held loop stays spent', async () => {
    const l = await leader();
    l.open('s1', 0, ['a']);
    // Held from 9,500 to 10,500, across the deadline: the floor (a full block after it)
    // lifts the deadline to 11,500 and is spent for this keepalive.
    l.tracker.graceAfterLoopBlock(10_500, 1_000);
    expect(l.tracker.deadlineOf('s1')).toBe(11_500);
    // Lapsed while its relay was silent: credited as if a keepalive had come at 11,500.
    expect(l.tracker.credit('s1', 11_500)).toBe(true);
    expect(l.tracker.deadlineOf('s1')).toBe(11_500 + TTL);
    // Held again across the new deadline: the blocked time back (22,500), no second floor (23,000).
    l.tracker.graceAfterLoopBlock(22_000, 1_000);
    expect(l.tracker.deadlineOf('s1')).toBe(22_500);
    // A real keepalive gives the floor back.
    expect(l.tracker.keepalive('s1', 22_000)).toBe('ok');
    l.tracker.graceAfterLoopBlock(32_500, 1_000);
    expect(l.tracker.deadlineOf('s1')).toBe(33_500);
  });

  it('never moves a deadline back; an unknown session gets none', async () => {
    const l = await leader();
    l.open('s1', 0, ['a']);
    expect(l.tracker.credit('s1', -5_000)).toBe(true);
    expect(l.tracker.deadlineOf('s1')).toBe(TTL);
    expect(l.tracker.credit('nope', 0)).toBe(false);
  });
});
