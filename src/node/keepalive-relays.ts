/**
 * Keepalives that a follower relays, and what the leader owes them when that follower goes
 * silent. A client may send its keepalives to any node; a follower forwards each to the
 * leader (client-requests.ts). While the follower's event loop is held (a GC pause, a long
 * synchronous decode, a snapshot's preparation) a keepalive sent to it waits unread in its
 * socket, and reaches the leader only once the follower runs again, perhaps after the
 * session's deadline. The leader would then expire a session whose client did its part:
 * a false expiry, the fault the leader's own held loop no longer causes (SessionTracker.
 * graceAfterLoopBlock), now through a follower's.
 *
 * What the follower could tell ("my loop was held this long, this keepalive waited in it")
 * arrives only with the keepalive, after the leader has decided. What the leader sees in
 * time is the silence: a follower answers its heartbeats every heartbeat interval (50 ms),
 * so a follower not heard from for `silenceMs` was held, cut off, or hung. So:
 *
 * - The leader remembers which follower relayed each session's last keepalive (none: it
 *   came to the leader itself).
 * - A session whose deadline passes while its relay is silent (a silence under way that
 *   began before the deadline, or one that began before it and ended after it or at most
 *   `catchUpMs` before it: what the relay held may still be on its way) is given credit for
 *   the keepalive the relay may hold: its deadline moves one TTL on from where it was, as if
 *   that keepalive had arrived at the deadline (never more than a TTL). When the relay runs
 *   again its keepalives arrive and renew the session as usual; if none comes, it lapses
 *   again and is expired.
 * - Once per keepalive: a session credited is credited again only after a real keepalive.
 *   So a relay silent for ever (cut off, or hung) delays the expiry of the sessions it
 *   relayed by at most one TTL, once, the same cost as a change of leader (a new leader
 *   grants every session a full TTL); a dead session is never kept for ever.
 * - Nothing a follower sends extends anything: the credit rests on the leader's own
 *   observation, and on an open connection. A relay whose connection dropped (its process
 *   died or restarted) holds no keepalive: it lost them, and a client sees its request fail
 *   and can go elsewhere. That holds even if it is connected again by the deadline
 *   (connectionDropped). Older followers need no new field, and apply is unchanged.
 * - The leader's own held loop is not a relay's silence: messages wait unread in its own
 *   sockets then, and that time (`loopBlockedMs`) is left out of every gap.
 *
 * What the credit cannot cover: a relay held for longer than about a TTL past the session's
 * deadline (a client keeping alive every TTL/3 survives a relay held for up to ~1.6 TTL).
 * The leader cannot tell a relay held that long from one cut off. The SDK does not wait on a
 * node that long: a keepalive attempt gets a third of its deadline, then goes to another
 * node (src/client/client.ts).
 */
import type { Clock } from './clock.js';

export interface KeepaliveRelaysDeps {
  readonly clock: Clock;
  /** Whether this node's connection to `peer` is up (PeerTransport.isConnected). */
  isConnected(peer: string): boolean;
  /** Milliseconds this node's event loop was held so far, a running total (LoopBlockMeter.blockedMs). */
  loopBlockedMs(): number;
  /** A peer not heard from for this long is silent (a few heartbeat intervals). */
  readonly silenceMs: number;
  /** After a silence, a relay may take this long to deliver what it held (it may first have to learn the leader again). */
  readonly catchUpMs: number;
}

/** What credit() needs of the leader's deadlines (SessionTracker satisfies it). */
export interface RelayedDeadlines {
  deadlineOf(id: string): number | undefined;
  /** Moves `id`'s deadline to `at` + its TTL without marking it alive; false when it may not (SessionTracker.credit). */
  credit(id: string, at: number): boolean;
}

/** What credit() reads of the applied registry (Registry satisfies it). */
export interface RelayedSessions {
  getSession(id: string): { readonly suspectSince: number | null } | undefined;
}

interface Peer {
  /** When (monotonic) a message from it last arrived. */
  lastHeard: number;
  /** loopBlockedMs() then: this node's own blocks since are no silence of the peer's. */
  blockedAtLastHeard: number;
  /** Its latest silence that has ended, if any. */
  lastSilence: { readonly from: number; readonly to: number } | null;
}

interface Relayed {
  via: string;
  /** Credit was given since the last keepalive: none again until the next. */
  credited: boolean;
}

/** A silence that ended this long ago can no longer concern a deadline not yet checked. */
const ENDED_SILENCE_RELEVANT_MS = 10_000;

export class KeepaliveRelays {
  readonly #peers = new Map<string, Peer>();
  readonly #sessions = new Map<string, Relayed>();

  constructor(private readonly d: KeepaliveRelaysDeps) {}

  /** Sessions whose last keepalive a follower relayed. */
  get size(): number {
    return this.#sessions.size;
  }

  /** A message from `peer` arrived (any kind: a follower answers heartbeats every heartbeat interval). */
  heard(peer: string): void {
    const now = this.d.clock.now();
    const blocked = this.d.loopBlockedMs();
    const p = this.#peers.get(peer);
    if (p === undefined) {
      this.#peers.set(peer, { lastHeard: now, blockedAtLastHeard: blocked, lastSilence: null });
      return;
    }
    if (this.#quietFor(p, now, blocked) >= this.d.silenceMs) p.lastSilence = { from: p.lastHeard, to: now };
    p.lastHeard = now;
    p.blockedAtLastHeard = blocked;
  }

  /** A keepalive this leader accepted: relayed by `via`, or null when the client sent it here. */
  keepalive(sessionId: string, via: string | null): void {
    if (via === null) this.#sessions.delete(sessionId);
    else this.#sessions.set(sessionId, { via, credited: false });
  }

  /**
   * A connection to or from `peer` dropped (its process died or restarted, or the link
   * broke): what it held for its clients is lost with it, and their requests fail, so the
   * sessions it relayed get no credit until their next keepalive. Checking the connection
   * only when a deadline passes would miss a relay that restarted and reconnected before it.
   */
  connectionDropped(peer: string): void {
    for (const [id, r] of this.#sessions) if (r.via === peer) this.#sessions.delete(id);
  }

  /** The session is gone (closed, expired). */
  forget(sessionId: string): void {
    this.#sessions.delete(sessionId);
  }

  /** Not leading any more: a next term starts from a full TTL for every session. */
  clear(): void {
    this.#sessions.clear();
  }

  /**
   * Before the expiry check: every session lapsed by `now` whose relay was silent at its
   * deadline gets its credit (see the header), once per keepalive. Returns the relays that
   * were silent and how many sessions each got credit, for the log.
   */
  credit(now: number, deadlines: RelayedDeadlines, registry: RelayedSessions): Map<string, number> {
    const credited = new Map<string, number>();
    if (!this.#anySilence(now)) return credited;
    for (const [id, r] of this.#sessions) {
      const deadline = deadlines.deadlineOf(id);
      if (deadline === undefined) {
        this.#sessions.delete(id); // no longer tracked: closed, expired
        continue;
      }
      if (r.credited || deadline > now) continue;
      const session = registry.getSession(id);
      if (session === undefined) {
        this.#sessions.delete(id);
        continue;
      }
      // A held session is protection's to decide, and renewing it would read as a sign of life.
      if (session.suspectSince !== null) continue;
      if (!this.d.isConnected(r.via) || !this.#silentAt(r.via, deadline, now)) continue;
      if (!deadlines.credit(id, deadline)) continue; // its expiry or suspect mark is already under way
      r.credited = true;
      credited.set(r.via, (credited.get(r.via) ?? 0) + 1);
    }
    return credited;
  }

  /** Was `peer` silent at `deadline`: a silence under way that began before it, or one that ended after it or just before? */
  #silentAt(peer: string, deadline: number, now: number): boolean {
    const p = this.#peers.get(peer);
    if (p === undefined) return false;
    if (p.lastHeard < deadline && this.#quietFor(p, now, this.d.loopBlockedMs()) >= this.d.silenceMs) return true;
    const s = p.lastSilence;
    return s !== null && s.from < deadline && s.to >= deadline - this.d.catchUpMs;
  }

  /** Is any peer silent now, or back from a silence recently enough to matter? (Else credit() has nothing to do.) */
  #anySilence(now: number): boolean {
    const blocked = this.d.loopBlockedMs();
    for (const [peer, p] of this.#peers) {
      if (!this.d.isConnected(peer)) continue; // it holds nothing (see credit)
      if (this.#quietFor(p, now, blocked) >= this.d.silenceMs) return true;
      if (p.lastSilence !== null && now - p.lastSilence.to <= this.d.catchUpMs + ENDED_SILENCE_RELEVANT_MS) return true;
    }
    return false;
  }

  /** How long `p` has not been heard from, less the time this node's own loop was held meanwhile. */
  #quietFor(p: Peer, now: number, blocked: number): number {
    return now - p.lastHeard - (blocked - p.blockedAtLastHeard);
  }
}
