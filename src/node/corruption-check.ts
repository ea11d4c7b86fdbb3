/**
 * This node's part in the corruption check (src/ops/corruption-check.ts): the checker that
 * compares every member's state-machine hash at one applied index, the answer to a peer
 * asking for this node's hash, the mark a peer's verdict leaves (kept across restarts),
 * and on the leader the periodic check.
 */
import type { Logger } from '../log/index.js';
import {
  CorruptionChecker,
  type CorruptionMark,
  clearCorruptionMark,
  type DisarmReport,
  hashStateMachine,
  type MemberDisarm,
  readCorruptionMark,
  type StateHash,
  writeCorruptionMark,
} from '../ops/corruption-check.js';
import type { NodeDatabase } from '../storage/index.js';
import type { NodeClock, Timer } from './clock.js';
import { NodeError } from './errors.js';
import type { ForwardedRequests } from './forwarding.js';
import { ForwardFailure, toOutcome } from './forwarding.js';
import type { PeerMessage } from './peer-messages.js';

/** How long a peer's hash request may wait for this node to apply the index it names. */
const HASH_ANSWER_MS = 10_000;
/**
 * How long a member asked to disarm, or for its hash, waits for its own peer link back to the asking node
 * (just restarted, it may not have dialed it yet) before its answer is given up.
 */
const ANSWER_LINK_WAIT_MS = 5_000;
/** The longest a periodic check waits for the members' answers. */
const PERIODIC_CHECK_TIMEOUT_MS = 30_000;

export interface CorruptionCheckDeps {
  readonly id: string;
  readonly log: Logger;
  readonly clock: NodeClock;
  readonly db: NodeDatabase;
  readonly forwards: ForwardedRequests;
  /** The leader runs the check this often (ms); 0: only on demand. */
  readonly intervalMs: number;
  /** Voters and learners. */
  members(): readonly string[];
  appliedIndex(): number;
  waitApplied(index: number, timeoutMs: number): Promise<void>;
  isLeader(): boolean;
  /** Throws SHUTTING_DOWN once the node is closing or has stopped after a storage failure. */
  assertOpen(): void;
  /** Sends to a peer; false if the transport dropped it. */
  send(to: string, m: PeerMessage): boolean;
  /** Whether this node's outbound peer link to `peer` is up (what send needs). */
  isConnected(peer: string): boolean;
  /** Resolves when a peer link may have come up (or the leader changed), or after `ms`. */
  whenLinksChange(ms: number): Promise<void>;
}

export class CorruptionCheck {
  /** State-machine hashes compared across members. */
  readonly checker: CorruptionChecker;
  private timer: Timer | null = null;

  constructor(private readonly d: CorruptionCheckDeps) {
    this.checker = new CorruptionChecker({
      id: d.id,
      log: d.log,
      now: () => d.clock.wallNow(),
      monotonicNow: () => d.clock.now(),
      members: () => d.members(),
      appliedIndex: () => d.appliedIndex(),
      selfHash: (index, timeoutMs) => this.stateHash(index, timeoutMs),
      // A member restarted a moment ago serves before this node's link to it is back: wait
      // for the link within the check's deadline, as a disarm does, rather than call it
      // unreachable at once.
      askHash: (peer, index, timeoutMs) =>
        this.requestWhenLinked<StateHash>(peer, d.clock.now() + timeoutMs, (req) => ({
          kind: 'hashRequest',
          req,
          index,
        })),
      tellCorrupt: (peer, detail) => void d.send(peer, { kind: 'corrupt', detail }),
      persistMark: (mark) => writeCorruptionMark(d.db, mark),
      clearStoredMark: () => clearCorruptionMark(d.db),
    });
  }

  /** A mark left by an earlier run (a peer found this node corrupt) still holds after a restart. */
  async restoreMark(): Promise<void> {
    const mark = await readCorruptionMark(this.d.db);
    if (mark !== null) this.checker.restoreMark(mark);
  }

  /** Starts the periodic check (on the leader only, when an interval is set). */
  start(): void {
    const every = this.d.intervalMs;
    if (every <= 0) return;
    this.timer = this.d.clock.setInterval(() => {
      if (!this.d.isLeader()) return;
      this.checker
        .run(Math.min(every, PERIODIC_CHECK_TIMEOUT_MS))
        .catch((err: unknown) => this.d.log.warn({ err }, 'corruption check failed to run'));
    }, every);
  }

  close(): void {
    this.timer?.cancel();
    this.timer = null;
  }

  /** This node's state-machine hash once it has applied `index`. */
  async stateHash(index: number, timeoutMs: number): Promise<StateHash> {
    this.d.assertOpen();
    await this.d.waitApplied(index, timeoutMs);
    return hashStateMachine(this.d.db);
  }

  /** A peer running the check asks for this node's hash at `index`. */
  answerHashRequest(from: string, req: number, index: number): void {
    this.stateHash(index, HASH_ANSWER_MS)
      .then(
        (value) => this.answerWhenLinked(from, { kind: 'hashResult', req, outcome: { ok: true, value } }),
        (err: unknown) => this.answerWhenLinked(from, { kind: 'hashResult', req, outcome: toOutcome(err) }),
      )
      .catch((err: unknown) => this.d.log.error({ err, to: from }, 'could not answer a hash request'));
  }

  /**
   * Clears the corruption mark of `member`, or of every member when it is undefined
   * (POST /v1/cluster/check/disarm, from any node). The mark is each member's own state
   * (never replicated: a member is found corrupt against the others, and its own database
   * keeps the verdict across restarts), so the request goes to each member that holds it
   * as a peer message, as the check's verdict did.
   *
   * Everything happens within `timeoutMs` (the node's request deadline, 5 s): a member
   * restarted a moment ago serves HTTP before this node's peer link to it is back (the
   * transport redials within its 2-s backoff ceiling), so the request waits for the link
   * rather than failing at once, and goes the moment it is up. A member that is not
   * linked, or does not answer, by the deadline keeps its mark and says why in its row.
   *
   * The members that answered are then forgotten by every node's latest check report
   * (forgetVerdicts, here and through a `disarmed` notice to the others), so the
   * `node-corrupt` alerts that named them resolve at once wherever they show.
   */
  async disarm(member: string | undefined, timeoutMs: number): Promise<DisarmReport> {
    this.d.assertOpen();
    const members = [...this.d.members()].sort();
    if (member !== undefined && !members.includes(member))
      throw new NodeError('NOT_MEMBER', `${member} is not a member of the cluster (members: ${members.join(', ')})`);
    const targets = member === undefined ? members : [member];
    const deadline = this.d.clock.now() + timeoutMs;
    const rows = await Promise.all(
      targets.map(async (id): Promise<MemberDisarm> => {
        try {
          const mark =
            id === this.d.id
              ? await this.checker.disarm(this.d.id)
              : await this.requestWhenLinked<CorruptionMark | null>(id, deadline, (req) => ({ kind: 'disarm', req }));
          return { id, disarmed: mark !== null, mark, error: null };
        } catch (err) {
          const code = err instanceof NodeError ? err.code : 'INTERNAL';
          // A build from before the online disarm ignores the message: it only times out.
          const message =
            err instanceof LinkTimeout
              ? `${id} could not be reached within ${timeoutMs} ms (no peer connection to it: down, cut off, or not started yet); its mark, if any, stays`
              : code === 'TIMEOUT'
                ? `${id} did not answer within ${timeoutMs} ms (down, cut off, or a build without the online disarm: stop it and use rollcall check --disarm --data DIR); its mark, if any, stays`
                : err instanceof Error
                  ? err.message
                  : String(err);
          return { id, disarmed: false, mark: null, error: { code, message } };
        }
      }),
    );
    const answered = rows.filter((r) => r.error === null).map((r) => r.id);
    if (answered.length > 0) {
      this.checker.forgetVerdicts(answered);
      // Whichever node ran the check shows its alert: tell them all (best effort; an old
      // build ignores the notice, and its alert resolves at its next passing check).
      const notice: PeerMessage = { kind: 'disarmed', members: answered };
      for (const peer of members) {
        if (peer !== this.d.id) this.d.send(peer, notice);
      }
    }
    return { by: this.d.id, members: rows };
  }

  /**
   * Sends a request to `peer` once this node's link to it is up, and waits for the answer,
   * all before `deadline` (monotonic ms). A request the transport refused for want of a
   * link never left, so it is sent again once the link is back; one that left and got no
   * answer is not (the caller says so).
   */
  private async requestWhenLinked<T>(
    peer: string,
    deadline: number,
    message: (req: number) => PeerMessage,
  ): Promise<T> {
    for (;;) {
      this.d.assertOpen();
      const left = deadline - this.d.clock.now();
      if (left <= 0) throw new LinkTimeout(peer);
      if (!this.d.isConnected(peer)) {
        await this.d.whenLinksChange(left);
        continue;
      }
      try {
        return await this.d.forwards.request<T>(peer, left, (req) => this.d.send(peer, message(req)), false);
      } catch (err) {
        // Dropped as the link went down between the look and the send: wait for it again.
        if (err instanceof ForwardFailure && err.kind === 'not-sent' && !this.d.isConnected(peer)) continue;
        throw err;
      }
    }
  }

  /** A peer asks this node to clear its mark (an operator's disarm through that peer). */
  answerDisarm(from: string, req: number): void {
    Promise.resolve()
      .then(() => {
        this.d.assertOpen();
        return this.checker.disarm(from);
      })
      .then(
        (value) => this.answerWhenLinked(from, { kind: 'disarmResult', req, outcome: { ok: true, value } }),
        (err: unknown) => this.answerWhenLinked(from, { kind: 'disarmResult', req, outcome: toOutcome(err) }),
      )
      .catch((err: unknown) => this.d.log.error({ err, to: from }, 'could not answer a disarm'));
  }

  /**
   * Sends an answer to `to`, waiting (bounded) for this node's link to it: a node restarted
   * a moment ago may take a request over the asker's link before its own link back is up.
   */
  private async answerWhenLinked(to: string, m: PeerMessage): Promise<void> {
    const deadline = this.d.clock.now() + ANSWER_LINK_WAIT_MS;
    while (!this.d.isConnected(to)) {
      const left = deadline - this.d.clock.now();
      if (left <= 0) break;
      await this.d.whenLinksChange(left);
      try {
        this.d.assertOpen();
      } catch {
        return; // Closing: the asker's request fails with its own deadline or connection drop.
      }
    }
    if (!this.d.send(to, m))
      this.d.log.warn({ to, kind: m.kind }, 'could not send an answer: no peer connection to the node that asked');
  }

  /** Another node relayed a disarm these members answered: their verdicts no longer raise the alert here. */
  onDisarmedNotice(members: readonly string[]): void {
    this.checker.forgetVerdicts(members);
  }

  /** A peer's check found this node's state machine differs from the majority's. */
  onCorruptNotice(from: string, detail: string): void {
    this.checker.markSelfCorrupt(from, detail);
  }
}

/** The peer link to a member did not come up before the disarm's deadline. */
class LinkTimeout extends NodeError {
  constructor(peer: string) {
    super('TIMEOUT', `no peer connection to ${peer}`);
  }
}
