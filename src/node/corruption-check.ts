/**
 * This node's part in the corruption check (src/ops/corruption-check.ts): the checker that
 * compares every member's state-machine hash at one applied index, the answer to a peer
 * asking for this node's hash, the mark a peer's verdict leaves (kept across restarts),
 * and on the leader the periodic check.
 */
import type { Logger } from '../log/index.js';
import {
  CorruptionChecker,
  hashStateMachine,
  readCorruptionMark,
  type StateHash,
  writeCorruptionMark,
} from '../ops/corruption-check.js';
import type { NodeDatabase } from '../storage/index.js';
import type { NodeClock, Timer } from './clock.js';
import type { ForwardedRequests } from './forwarding.js';
import { toOutcome } from './forwarding.js';
import type { PeerMessage } from './peer-messages.js';

/** How long a peer's hash request may wait for this node to apply the index it names. */
const HASH_ANSWER_MS = 10_000;
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
      askHash: (peer, index, timeoutMs) =>
        d.forwards.request<StateHash>(
          peer,
          timeoutMs,
          (req) => d.send(peer, { kind: 'hashRequest', req, index }),
          false,
        ),
      tellCorrupt: (peer, detail) => void d.send(peer, { kind: 'corrupt', detail }),
      persistMark: (mark) => writeCorruptionMark(d.db, mark),
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
    this.stateHash(index, HASH_ANSWER_MS).then(
      (value) => this.d.send(from, { kind: 'hashResult', req, outcome: { ok: true, value } }),
      (err: unknown) => this.d.send(from, { kind: 'hashResult', req, outcome: toOutcome(err) }),
    );
  }

  /** A peer's check found this node's state machine differs from the majority's. */
  onCorruptNotice(from: string, detail: string): void {
    this.checker.markSelfCorrupt(from, detail);
  }
}
