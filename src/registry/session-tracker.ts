/**
 * The leader's session deadlines and expiry protection. Pure logic: time is an argument,
 * there are no timers, and the node turns `due()` into commands (see `commandsFor`).
 *
 * Keepalives are not replicated; deadlines live only in the leader's memory. A new leader
 * therefore knows nothing about recent keepalives and grants every session a full TTL.
 *
 * Protection (a network fault must not empty the registry), per service:
 *   size    = its instances now + those expired from it within the last `windowMs`
 *   failing = its instances on lapsed or held sessions + those expired within the window
 *   tripped = size >= protectMinInstances && failing > protectFraction * size
 * A tripped service enters protection mode. While a session touches a service in mode, it is
 * marked suspect (held: listed, flagged) instead of expired. The mode settles when the
 * service stops being tripped, that is when at least (1 - fraction) of its instances are
 * alive (kept alive, persistent, or not yet due); after it has stayed settled for a full
 * window, the held sessions that still have not kept alive are expired: the rest recovered
 * and they did not, so their fault was real. A held session is also expired once it has
 * been held `maxHoldMs` (from the replicated suspectSince), whatever the mode says. A held
 * session that keeps alive is cleared (healthy again).
 *
 * The window of recent expiries is kept on every node, leader or not, from what the node
 * applied (`recordExpired`), and survives role changes: a leader elected in the middle of
 * an expiry wave counts what its predecessor already expired. Each instance is counted
 * exactly once: while its `expire` is in flight (proposed, not applied) its session is still
 * in the registry and counts as lapsed or held; from the apply on, the session is gone from
 * the registry and the instance counts through `recordExpired` only.
 */
import type { ClearSuspect, Expire, MarkSuspect } from './commands.js';
import { serviceKey } from './model.js';

export interface SessionTrackerOptions {
  /** Largest share of a service that may expire within one window without protection. */
  readonly protectFraction?: number;
  /** Services smaller than this are never protected (a lone instance that stops is simply gone). */
  readonly protectMinInstances?: number;
  /** A held session is expired after this long regardless. */
  readonly maxHoldMs?: number;
  /** The protection window; should exceed the longest session TTL. */
  readonly windowMs?: number;
  /** A proposal not yet reflected in the registry is proposed again after this long. */
  readonly reproposeMs?: number;
}

export const DEFAULT_TRACKER_OPTIONS: Required<SessionTrackerOptions> = {
  protectFraction: 0.4,
  protectMinInstances: 3,
  maxHoldMs: 15 * 60_000,
  windowMs: 60_000,
  reproposeMs: 5_000,
};

/** What the tracker reads from the applied registry (Registry satisfies it). */
export interface TrackerView {
  getSession(id: string): { readonly ttlMs: number; readonly suspectSince: number | null } | undefined;
  sessionInstances(id: string): readonly { readonly namespace: string; readonly service: string }[];
  serviceSize(namespace: string, service: string): number;
}

export interface Due {
  readonly expire: readonly string[];
  readonly suspect: readonly string[];
  readonly clearSuspect: readonly string[];
}

export type KeepaliveOutcome = 'ok' | 'unknown' | 'expiring';

export interface ProtectedService {
  readonly namespace: string;
  readonly service: string;
  readonly enteredAt: number;
  /** When the service stopped being tripped; null while it still is. */
  readonly settledSince: number | null;
  /** Held sessions touching it, as of the last due(). */
  readonly held: readonly string[];
}

interface Tracked {
  ttlMs: number;
  deadline: number;
  /** null until a keepalive reaches this leader: a grant is not evidence of life. */
  lastKeepaliveAt: number | null;
  /** A block's floor (graceAfterLoopBlock) raised the deadline, and no keepalive came since. */
  blockFloorSpent: boolean;
}

interface Mode {
  readonly namespace: string;
  readonly service: string;
  readonly enteredAt: number;
  settledSince: number | null;
  held: string[];
}

/** Instances an applied `expire` deleted, per service key, at this node's clock. */
interface RecentExpiry {
  readonly at: number;
  readonly perService: ReadonlyMap<string, number>;
}

type Action = 'expire' | 'suspect' | 'clear';

export class SessionTracker {
  readonly options: Required<SessionTrackerOptions>;
  readonly #sessions = new Map<string, Tracked>();
  readonly #inflight = new Map<string, { action: Action; at: number }>();
  readonly #modes = new Map<string, Mode>();
  /** Held sessions: when this leader first saw each held (monotonic), for the maximum hold. */
  readonly #heldSeen = new Map<string, number>();
  #recent: RecentExpiry[] = [];

  constructor(options: SessionTrackerOptions = {}) {
    this.options = { ...DEFAULT_TRACKER_OPTIONS, ...options };
    const f = this.options.protectFraction;
    if (!(f > 0 && f < 1)) throw new RangeError('protectFraction must be in (0, 1)');
  }

  get size(): number {
    return this.#sessions.size;
  }

  /**
   * Forgets the previous term's deadlines, claims and modes, and grants every known session
   * a full TTL from now. The window of recent expiries is kept (see `recordExpired`).
   */
  becomeLeader(now: number, sessions: Iterable<{ readonly id: string; readonly ttlMs: number }>): void {
    this.stepDown();
    for (const s of sessions)
      this.#sessions.set(s.id, {
        ttlMs: s.ttlMs,
        deadline: now + s.ttlMs,
        lastKeepaliveAt: null,
        blockFloorSpent: false,
      });
  }

  /**
   * Drops what only a leader knows: deadlines, in-flight claims and modes (a mode is
   * recomputed from the replicated `suspectSince` and the window by the next leader). The
   * window of recent expiries is kept: it is what lets that leader, or this node leading
   * again, see a wave that began before it.
   */
  stepDown(): void {
    this.#sessions.clear();
    this.#inflight.clear();
    this.#modes.clear();
    this.#heldSeen.clear();
  }

  /**
   * The leader's event loop was held for `blockedMs`, ending by `now`: keepalives that
   * arrived meanwhile were not read, and may still wait in its sockets behind each other
   * (the longer the block, the longer the queue). Their sessions did nothing wrong, so,
   * much as a new leader grants a full TTL: every deadline that had not passed when the
   * block began moves back by the block, and is at least min(TTL, block) from now. After
   * a block as long as a TTL every such session has a full TTL from now, as under a new
   * leader; after a short one (a GC pause) it has that pause back. A session lapsed before
   * the block gets nothing: the loop was free to read its keepalives. The protection's
   * waits that end in an expiry (a settled service's window, a held session's hold) are
   * moved back by the block too. A grant is not evidence of life: nothing else changes.
   *
   * The floor is granted once per keepalive: a session not heard from since a floor raised
   * its deadline gets only the block back. Else a loop held more than half the time (load
   * that keeps the meter's beats late) would raise a dead session's deadline past the next
   * block's start on every grant, and keep it for ever; the block alone given back, its
   * TTL still runs out in the time the loop is free.
   */
  graceAfterLoopBlock(now: number, blockedMs: number): void {
    if (!(blockedMs > 0)) return;
    const blockStart = now - blockedMs;
    for (const t of this.#sessions.values()) {
      if (t.deadline <= blockStart) continue;
      const shifted = t.deadline + blockedMs;
      const floor = now + Math.min(t.ttlMs, blockedMs);
      if (t.blockFloorSpent || floor <= shifted) {
        t.deadline = shifted;
      } else {
        t.deadline = floor;
        t.blockFloorSpent = true;
      }
    }
    for (const m of this.#modes.values()) if (m.settledSince !== null) m.settledSince += blockedMs;
    for (const [id, seen] of this.#heldSeen) this.#heldSeen.set(id, seen + blockedMs);
  }

  /**
   * Records instances that an applied `expire` deleted, at this node's clock. Call it on
   * every node, leader or not, for every applied `expire` entry, in the same synchronous
   * step that applies it (before any await), with exactly the instances that entry deleted:
   * none for a rejected (stale) expire or for sessions already gone, and nothing for
   * `closeSession` (a session closed on purpose is not a failure). They count towards their
   * service's window (size and failing) until `windowMs` has passed, across role changes.
   *
   * @example
   * const out = registry.applyBatch(entries);
   * tracker.recordExpired(
   *   out.events.filter((e) => e.type === 'delete' && e.cause === 'expire').map((e) => e.instance),
   *   Date.now(),
   * );
   */
  recordExpired(instances: readonly { readonly namespace: string; readonly service: string }[], now: number): void {
    this.#prune(now);
    if (instances.length === 0) return;
    const perService = new Map<string, number>();
    for (const inst of instances) {
      const k = serviceKey(inst.namespace, inst.service);
      perService.set(k, (perService.get(k) ?? 0) + 1);
    }
    this.#recent.push({ at: now, perService });
  }

  /** Opening counts as a keepalive. */
  onSessionOpened(id: string, ttlMs: number, now: number): void {
    this.#sessions.set(id, { ttlMs, deadline: now + ttlMs, lastKeepaliveAt: now, blockFloorSpent: false });
  }

  onSessionClosed(id: string): void {
    this.#sessions.delete(id);
    this.#inflight.delete(id);
    this.#heldSeen.delete(id);
  }

  /** 'expiring': the leader already proposed its expiry; the client should open a new session. */
  keepalive(id: string, now: number): KeepaliveOutcome {
    const t = this.#sessions.get(id);
    if (t === undefined) return 'unknown';
    if (this.#inflight.get(id)?.action === 'expire') return 'expiring';
    t.deadline = now + t.ttlMs;
    t.lastKeepaliveAt = now;
    t.blockFloorSpent = false;
    return 'ok';
  }

  /**
   * Credit for a keepalive a silent follower may hold (src/node/keepalive-relays.ts): the
   * deadline moves to `at` + TTL as a keepalive arriving at `at` would move it, but nothing
   * else a keepalive does happens. It is no sign of life: the grace after the leader's own
   * held loop stays spent, and a session whose expiry or suspect mark is already proposed
   * gets none (a deadline moved ahead of an applied mark would read as a reason to clear it).
   * True when the deadline moved.
   */
  credit(id: string, at: number): boolean {
    const t = this.#sessions.get(id);
    if (t === undefined || this.#inflight.has(id)) return false;
    t.deadline = Math.max(t.deadline, at + t.ttlMs);
    return true;
  }

  deadlineOf(id: string): number | undefined {
    return this.#sessions.get(id)?.deadline;
  }

  /** The earliest deadline still ahead, to schedule the next due() call; null if none. */
  nextDeadline(now: number): number | null {
    let next: number | null = null;
    for (const t of this.#sessions.values())
      if (t.deadline > now && (next === null || t.deadline < next)) next = t.deadline;
    return next;
  }

  protection(): ProtectedService[] {
    return [...this.#modes.values()]
      .map((m) => ({
        namespace: m.namespace,
        service: m.service,
        enteredAt: m.enteredAt,
        settledSince: m.settledSince,
        held: [...m.held],
      }))
      .sort((a, b) => cmp(serviceKey(a.namespace, a.service), serviceKey(b.namespace, b.service)));
  }

  /**
   * `now` is the node's monotonic clock (deadlines, the window, modes). `wallNow` is its wall
   * clock, used only against the replicated `suspectSince` (a proposer's wall-clock time,
   * the one time every leader can read alike) for the maximum hold; it defaults to `now`
   * for callers whose single clock is both (tests).
   */
  due(now: number, view: TrackerView, wallNow: number = now): Due {
    const lapsed: string[] = [];
    const held: string[] = [];
    const clear: string[] = [];
    for (const id of [...this.#sessions.keys()].sort()) {
      const t = this.#sessions.get(id);
      const s = view.getSession(id);
      if (t === undefined || s === undefined) {
        this.onSessionClosed(id);
        continue;
      }
      const isLapsed = t.deadline <= now;
      if (s.suspectSince === null) {
        if (isLapsed) lapsed.push(id);
      } else if (isLapsed) {
        held.push(id);
      } else if (t.lastKeepaliveAt !== null) {
        clear.push(id);
      } // else: suspect and inside a new leader's grant; wait for a keepalive or the deadline
    }

    const touched = new Map<string, string[]>(); // session -> service keys
    const failing = new Map<string, number>();
    const names = new Map<string, { namespace: string; service: string }>();
    for (const id of [...lapsed, ...held]) {
      const keys = new Set<string>();
      for (const inst of view.sessionInstances(id)) {
        const k = serviceKey(inst.namespace, inst.service);
        keys.add(k);
        names.set(k, { namespace: inst.namespace, service: inst.service });
        failing.set(k, (failing.get(k) ?? 0) + 1);
      }
      touched.set(id, [...keys]);
    }
    const recent = this.#recentCounts(now);
    this.#updateModes(now, view, failing, recent, names, held, touched);

    const expire: string[] = [];
    const suspect: string[] = [];
    for (const id of lapsed) {
      if ((touched.get(id) ?? []).some((k) => this.#modes.has(k))) suspect.push(id);
      else expire.push(id);
    }
    for (const id of [...this.#heldSeen.keys()]) if (!held.includes(id)) this.#heldSeen.delete(id);
    for (const id of held) {
      const since = view.getSession(id)?.suspectSince ?? wallNow;
      const released = (touched.get(id) ?? []).every((k) => {
        const m = this.#modes.get(k);
        return m === undefined || (m.settledSince !== null && now - m.settledSince >= this.options.windowMs);
      });
      // The maximum hold counts from the replicated suspectSince (another node's wall clock),
      // but only once this leader has itself seen the session held for a while on its own
      // monotonic clock: a wall clock stepped ahead, or a new leader whose clock runs ahead
      // of the one that marked it, must not release a whole held service at once.
      if (!this.#heldSeen.has(id)) this.#heldSeen.set(id, now);
      const heldHere = now - this.#heldSeen.get(id)!;
      const holdOver =
        wallNow - since >= this.options.maxHoldMs &&
        heldHere >= Math.min(this.options.maxHoldMs, this.options.windowMs);
      if (released || holdOver) expire.push(id);
    }

    // Nothing is added to the window here: an expiry in flight still counts as lapsed or
    // held (its session is in the registry) and joins the window when it is applied.
    return {
      expire: this.#claim(expire.sort(), 'expire', now),
      suspect: this.#claim(suspect, 'suspect', now),
      clearSuspect: this.#claim(clear, 'clear', now),
    };
  }

  /** Instances expired within the window, per service, as applied on this node. */
  #recentCounts(now: number): Map<string, number> {
    this.#prune(now);
    const counts = new Map<string, number>();
    for (const r of this.#recent) for (const [k, n] of r.perService) counts.set(k, (counts.get(k) ?? 0) + n);
    return counts;
  }

  /** Drops expiries older than the window. A clock that went back keeps them longer: that errs towards protecting. */
  #prune(now: number): void {
    this.#recent = this.#recent.filter((r) => now - r.at < this.options.windowMs);
  }

  #updateModes(
    now: number,
    view: TrackerView,
    failing: ReadonlyMap<string, number>,
    recent: ReadonlyMap<string, number>,
    names: ReadonlyMap<string, { namespace: string; service: string }>,
    held: readonly string[],
    touched: ReadonlyMap<string, readonly string[]>,
  ): void {
    for (const k of new Set([...failing.keys(), ...this.#modes.keys()])) {
      const mode = this.#modes.get(k);
      const n = names.get(k) ?? mode;
      if (!failing.has(k) || n === undefined) {
        this.#modes.delete(k); // nothing of it is lapsed or held any more: recovered or gone
        continue;
      }
      const r = recent.get(k) ?? 0;
      const size = view.serviceSize(n.namespace, n.service) + r;
      const bad = (failing.get(k) ?? 0) + r;
      const tripped = size >= this.options.protectMinInstances && bad > this.options.protectFraction * size;
      const heldHere = held.filter((id) => touched.get(id)?.includes(k) === true);
      if (tripped) {
        if (mode === undefined)
          this.#modes.set(k, {
            namespace: n.namespace,
            service: n.service,
            enteredAt: now,
            settledSince: null,
            held: heldHere,
          });
        else {
          mode.settledSince = null;
          mode.held = heldHere;
        }
      } else if (mode !== undefined) {
        mode.settledSince ??= now;
        mode.held = heldHere;
      } else if (heldHere.length > 0) {
        // Held by an earlier leader and no longer tripped: still give the others a full window.
        this.#modes.set(k, {
          namespace: n.namespace,
          service: n.service,
          enteredAt: now,
          settledSince: now,
          held: heldHere,
        });
      }
    }
  }

  /** Drops what was already proposed recently with the same action; records the rest as in flight. */
  #claim(ids: readonly string[], action: Action, now: number): string[] {
    const out: string[] = [];
    for (const id of ids) {
      const f = this.#inflight.get(id);
      if (f !== undefined && f.action === action && now - f.at < this.options.reproposeMs) continue;
      this.#inflight.set(id, { action, at: now });
      out.push(id);
    }
    return out;
  }
}

/** The commands to propose for a due() result, in the proposer's term and clock. */
export function commandsFor(due: Due, term: number, now: number): (Expire | MarkSuspect | ClearSuspect)[] {
  const out: (Expire | MarkSuspect | ClearSuspect)[] = [];
  if (due.clearSuspect.length > 0) out.push({ type: 'clearSuspect', term, sessionIds: [...due.clearSuspect] });
  if (due.suspect.length > 0) out.push({ type: 'markSuspect', term, sessionIds: [...due.suspect], now });
  if (due.expire.length > 0) out.push({ type: 'expire', term, sessionIds: [...due.expire], now });
  return out;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
