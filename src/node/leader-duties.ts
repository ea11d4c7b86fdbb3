/**
 * What only the leader does, and when it may start: session deadlines and keepalives,
 * expiry (through an intent, see ExpiryIntent in src/registry/commands.ts), the expiry
 * protection's window, and health decisions from provider reports.
 *
 * A new leader takes these up only once it has applied an entry of its own term (its
 * no-op): every entry of an earlier term it will ever commit is then in the registry, so no
 * expiry decided by an earlier leader can still delete a session it answered a keepalive
 * for, and no session acknowledged under an earlier leader is missing from its view
 * (docs/registry.md, "Expiry across a change of leader").
 *
 * Time its own event loop was held is not held against a session either: keepalives that
 * arrived meanwhile wait unread, so every deadline gets that time back, and a full TTL
 * after a block as long as one (SessionTracker.graceAfterLoopBlock). Nor is a follower's: a
 * session whose keepalives a follower relays is not expired while that follower is silent
 * at its deadline, for at most one more TTL (KeepaliveRelays).
 */
import type { RawNode, SoftState } from '../../raft/index.js';
import { encode } from '../codec/index.js';
import type { HealthReport, HealthTracker, TrackedHealth } from '../health/index.js';
import { healthCommands } from '../health/index.js';
import type { Logger } from '../log/index.js';
import type {
  AppliedEntry,
  CommandResult,
  KeepaliveOutcome,
  LeaderCommand,
  Registry,
  RegistryEvent,
  SessionTracker,
} from '../registry/index.js';
import { commandsFor, INTRODUCED_IN, STATE_MACHINE_VERSION } from '../registry/index.js';
import type { Clock } from './clock.js';
import { toWall } from './clock.js';
import type { KeepaliveRelays } from './keepalive-relays.js';

export interface LeaderDutiesDeps {
  readonly raw: RawNode;
  readonly registry: Registry;
  readonly tracker: SessionTracker;
  readonly health: HealthTracker;
  readonly log: Logger;
  readonly clock: Clock;
  soft(): SoftState;
  kick(): void;
  /** Work waiting for a leader (keepalives) may go now. */
  wakeWaiters(): void;
  /** The leader proposed commands of its own (for metrics). */
  proposed(kind: string): void;
  /**
   * The state-machine version every current member (voters and learners) supports: the
   * lowest any of them reported, a member never heard from or reporting nothing counting
   * as 1 (src/registry/version.ts).
   */
  membersVersion(): number;
  /** Current members the replicated member-address record lacks, at the address this node dials them (PeerBook.unrecorded). */
  unrecordedMemberAddresses(): ReadonlyMap<string, string>;
  /** Milliseconds the event loop was held so far, a running total (LoopBlockMeter.blockedMs). */
  loopBlockedMs(): number;
  /** Which follower relayed each session's last keepalive, and whether it has gone silent. */
  readonly relays: KeepaliveRelays;
}

/** A setClusterVersion not applied within this long is proposed again (it only ever raises). */
const VERSION_REPROPOSE_MS = 2_000;
/** A block of the loop this long is worth a line when sessions get time for it. */
const LOG_LOOP_BLOCK_MS = 1_000;

export class LeaderDuties {
  /** The term in which this node took up its duties; null when not leading or not yet caught up. */
  private term: number | null = null;
  /** When (monotonic ms) a setClusterVersion was last proposed, so one in flight is not proposed on every tick. */
  private versionProposedAt = Number.NEGATIVE_INFINITY;
  /** When (monotonic ms) a recordMemberAddresses was last proposed, likewise. */
  private addressesProposedAt = Number.NEGATIVE_INFINITY;
  /** loopBlockedMs() at the last checkExpiry: what is new since is granted to the sessions. */
  private loopBlockedSeen = 0;

  constructor(private readonly d: LeaderDutiesDeps) {}

  /**
   * Does this node lead, caught up with every earlier term? Asked of the core too: the
   * node's view changes only when a Ready is taken, and while a write is outstanding the
   * core may already have stepped down (CheckQuorum, a newer term); a deposed leader must
   * not keep answering keepalives.
   */
  active(): boolean {
    const soft = this.d.soft();
    if (soft.role !== 'leader' || this.term !== soft.term) return false;
    const core = this.d.raw.softState();
    return core.role === 'leader' && core.term === soft.term;
  }

  /** On every role change and after every apply: take up the duties once caught up, or drop them. */
  update(): void {
    const soft = this.d.soft();
    if (soft.role !== 'leader') {
      if (this.term !== null) {
        this.term = null;
        this.d.tracker.stepDown();
        this.d.relays.clear();
        this.d.health.reset();
      }
      return;
    }
    if (this.term === soft.term || this.d.registry.appliedTerm !== soft.term) return;
    this.term = soft.term;
    // A new leader grants every session a full TTL before it expires anything.
    this.d.tracker.becomeLeader(this.d.clock.now(), this.d.registry.sessions());
    this.d.health.reset();
    this.d.wakeWaiters();
  }

  /**
   * A keepalive at the leader (only while active()); a report rides along for the session's
   * instances. `via`: the follower that relayed it, absent when the client sent it here.
   */
  keepalive(sessionId: string, report?: HealthReport, via?: string): KeepaliveOutcome {
    const { tracker, registry, health } = this.d;
    const now = this.d.clock.now();
    let outcome = tracker.keepalive(sessionId, now);
    if (outcome === 'unknown') {
      // The session may have been applied here before the tracker heard of it.
      const s = registry.getSession(sessionId);
      if (!s) return 'unknown';
      tracker.onSessionOpened(s.id, s.ttlMs, now);
      outcome = tracker.keepalive(sessionId, now);
    }
    if (outcome === 'ok') this.d.relays.keepalive(sessionId, via ?? null);
    if (outcome === 'ok' && report !== undefined) {
      for (const inst of registry.sessionInstances(sessionId)) health.report(inst, report, now, inst.health);
    }
    return outcome;
  }

  /** The leader's view of provider reports; null elsewhere. Kept in monotonic time, shown as wall-clock times. */
  healthReports(): readonly TrackedHealth[] | null {
    if (!this.active()) return null;
    const { clock } = this.d;
    return this.d.health
      .list()
      .map((h) => ({ ...h, reportedAt: toWall(clock, h.reportedAt), since: toWall(clock, h.since) }));
  }

  /**
   * On every node, leader or not, in the same turn as the apply: what expiry deleted,
   * in this node's clock, so a leader elected in the middle of a wave still counts what
   * its predecessor expired (a due() in between would see the sessions gone and count
   * them nowhere).
   */
  recordExpiries(events: readonly RegistryEvent[]): void {
    const expired = events.filter((e) => e.type === 'delete' && e.cause === 'expire').map((e) => e.instance);
    if (expired.length > 0) this.d.tracker.recordExpired(expired, this.d.clock.now());
  }

  /** After an apply on the leader: follow sessions opened and closed, and act on its own committed expiry intents. */
  onApplied(applied: readonly AppliedEntry[], results: ReadonlyMap<number, CommandResult>): void {
    if (!this.active()) return;
    const { tracker, registry } = this.d;
    const term = this.d.soft().term;
    const now = this.d.clock.now();
    const confirmed: string[] = [];
    for (const a of applied) {
      const c = a.command;
      if (!c) continue;
      if (c.type === 'expiryIntent') {
        // Our own decision, committed while we still lead in the term we made it: act on it.
        // An intent of an earlier term is left alone: its leader lost office before it
        // committed, and we have granted its sessions a full TTL of our own.
        if (c.term === term && results.get(a.index)?.ok === true) {
          for (const id of c.sessionIds) if (registry.getSession(id)) confirmed.push(id);
        }
      } else if (c.type === 'openSession') {
        const s = registry.getSession(c.sessionId);
        if (s) tracker.onSessionOpened(s.id, s.ttlMs, now);
      } else if (c.type === 'closeSession' || c.type === 'expire') {
        const ids = c.type === 'closeSession' ? [c.sessionId] : c.sessionIds;
        for (const id of ids)
          if (!registry.getSession(id)) {
            tracker.onSessionClosed(id);
            this.d.relays.forget(id);
          }
      }
    }
    if (confirmed.length > 0)
      this.propose([{ type: 'expire', term, sessionIds: confirmed, now: this.d.clock.wallNow() }]);
  }

  /** On the expiry timer: lapsed sessions (as intents), suspect marks, health transitions. */
  checkExpiry(): void {
    // Read on every call, leading or not: a block before this node took office is covered
    // by its grant as a new leader.
    const blocked = this.d.loopBlockedMs();
    const newlyBlocked = blocked - this.loopBlockedSeen;
    this.loopBlockedSeen = blocked;
    if (!this.active()) return;
    const { tracker, registry, health, log } = this.d;
    const term = this.d.soft().term;
    // Deadlines in monotonic time: a step of the wall clock neither expires a live session
    // nor keeps a dead one. The wall clock only stamps the commands (suspectSince).
    const now = this.d.clock.now();
    const wall = this.d.clock.wallNow();
    // This very call may be the first thing to run after the loop was held (timers run
    // before sockets are read): the block's keepalives are still unread, so grant first.
    if (newlyBlocked > 0) {
      tracker.graceAfterLoopBlock(now, newlyBlocked);
      if (newlyBlocked >= LOG_LOOP_BLOCK_MS)
        log.info(
          { blockedMs: Math.round(newlyBlocked), sessions: tracker.size },
          'the event loop was held: session deadlines moved back, keepalives may still wait unread',
        );
    }
    // A keepalive a silent follower may hold: credit, before anything is found lapsed.
    for (const [relay, sessions] of this.d.relays.credit(now, tracker, registry))
      log.info(
        { relay, sessions },
        'a follower relaying keepalives is silent at their deadlines: their expiry waits up to one more TTL',
      );
    const due = tracker.due(now, registry, wall);
    // An expiry is proposed as an intent first, and deletes only once that intent commits
    // in this leader's term (onApplied). At cluster version 1 there is no intent (builds of
    // v1 refuse it): the expire is proposed at once, as v1 leaders did.
    const twoPhase = registry.clusterVersion >= INTRODUCED_IN['expiryIntent']!;
    const commands: LeaderCommand[] = commandsFor(due, term, wall).map((c) =>
      c.type === 'expire' && twoPhase ? { ...c, type: 'expiryIntent' as const } : c,
    );
    // Health changes only on a transition: reports themselves never reach the log.
    const transitions = health.due(now, registry);
    for (const t of transitions)
      log.info({ instance: `${t.namespace}/${t.service}/${t.id}`, from: t.from, to: t.to }, 'health changed');
    commands.push(...healthCommands(transitions, term));
    if (commands.length > 0) this.propose(commands);
  }

  /**
   * On the duty timer: raise the cluster version once every member's build implements a
   * higher one. Proposed again on later ticks until it is applied (a lost proposal is
   * harmless: the command only ever raises).
   */
  checkClusterVersion(): void {
    if (!this.active()) return;
    const supported = Math.min(this.d.membersVersion(), STATE_MACHINE_VERSION);
    const current = this.d.registry.clusterVersion;
    if (supported <= current) return;
    const now = this.d.clock.now();
    if (now - this.versionProposedAt < VERSION_REPROPOSE_MS) return;
    this.versionProposedAt = now;
    // Info, not warn: every new cluster starts at version 1 and raises at once; nothing is wrong.
    this.d.log.info(
      { from: current, to: supported },
      'every member supports a newer state-machine version: raising the cluster version',
    );
    this.propose([{ type: 'setClusterVersion', term: this.d.soft().term, version: supported }]);
  }

  /**
   * On the duty timer, from cluster version 5: fill the member-address record for members
   * it has no entry for (added while the cluster was at version 1), with the addresses this
   * leader dials them at, so a member that joins later can reach them. Proposed again on
   * later ticks until applied (a member already recorded by then is left as it is).
   */
  checkMemberAddresses(): void {
    if (!this.active()) return;
    if (this.d.registry.clusterVersion < INTRODUCED_IN['recordMemberAddresses']!) return;
    const missing = this.d.unrecordedMemberAddresses();
    if (missing.size === 0) return;
    const now = this.d.clock.now();
    if (now - this.addressesProposedAt < VERSION_REPROPOSE_MS) return;
    this.addressesProposedAt = now;
    const addresses = Object.fromEntries(missing);
    this.d.log.info(
      { addresses },
      'the member-address record has no entry for these members (added before cluster version 2): recording the addresses this leader dials them at',
    );
    this.propose([{ type: 'recordMemberAddresses', term: this.d.soft().term, addresses }]);
  }

  /** Proposes commands of the leader's own, logging each kind. */
  private propose(commands: readonly LeaderCommand[]): void {
    const { log } = this.d;
    for (const c of commands) {
      if (c.type === 'expiryIntent')
        log.info({ sessions: c.sessionIds.length }, 'expiring sessions whose keepalives stopped');
      if (c.type === 'expire')
        log.debug({ sessions: c.sessionIds.length }, 'expiry committed in this term; deleting the sessions');
      if (c.type === 'markSuspect')
        log.warn(
          { sessions: c.sessionIds.length },
          'expiry protection: marking instances suspect instead of deleting them',
        );
      if (c.type === 'clearSuspect') log.info({ sessions: c.sessionIds.length }, 'suspect instances recovered');
    }
    const res = this.d.raw.proposeBatch(commands.map((c) => encode(c)));
    // Not lost: an expiry or a mark not visible in the registry is proposed again after reproposeMs.
    if (!res.ok)
      log.info(
        { err: res.error.message, kinds: [...new Set(commands.map((c) => c.type))] },
        'could not propose leader commands; they are retried',
      );
    else for (const c of commands) this.d.proposed(c.type);
    this.d.kick();
  }
}
