/**
 * Linearizable read barriers, with at most one ReadIndex round in flight per node (as
 * etcd's linearizableReadLoop). Reads that arrive while no round is in flight start one
 * at the end of the event-loop turn and share it; reads that arrive while a round is in
 * flight wait and share the next one, which starts as soon as the current one answers.
 * The leader batches the requests of all nodes into one heartbeat round. A read then
 * waits until this node has applied the returned index.
 *
 * Safety: a read is only ever answered by a round whose request was sent after the read
 * arrived (it joins a round when the round starts, never one already in flight), so the
 * read index covers every write acknowledged before the read began.
 *
 * Liveness: a round that gets no answer (a dropped message, a leader that lost its
 * leadership) is abandoned after ROUND_RETRY_MS, or at once when a read arrives and the
 * leader has changed since the round was sent; its reads join the next round. Every read
 * also has its own deadline (TIMEOUT, or NO_LEADER when no leader is known).
 */
import { randomBytes } from 'node:crypto';
import type { ReadState } from '../../raft/index.js';
import type { NodeClock, Timer } from './clock.js';
import { systemClock } from './clock.js';
import { NodeError } from './errors.js';

/** A round with no answer after this long is abandoned and its reads asked again (etcd: 500 ms). */
export const ROUND_RETRY_MS = 500;
/** With no leader known, asks again this often (within each read's deadline). */
const NO_LEADER_RETRY_MS = 50;

interface Waiter {
  readonly resolve: (applied: number) => void;
  readonly reject: (err: NodeError) => void;
  readonly timer: Timer;
  readonly startedAt: number;
  /** Set when the read was answered or failed; lists drop such waiters lazily. */
  done: boolean;
}

interface Round {
  readonly key: string;
  readonly waiters: Waiter[];
  /** The leader the request went to (as the source knew it), to notice a change. */
  readonly leader: string | null;
  readonly retry: Timer;
}

/** Reads released by one round, waiting until this node has applied `index`. */
interface Released {
  readonly index: number;
  readonly waiters: Waiter[];
}

export interface ReadIndexSource {
  /** Asks Raft for a read index with this context; false (with a leader hint) when no leader is known. */
  requestReadIndex(context: Uint8Array): { ok: true } | { ok: false; error: NodeError };
  appliedIndex(): number;
  hasLeader(): boolean;
  /** The leader as this node knows it (optional): a round sent to a former leader is abandoned without waiting. */
  leader?(): string | null;
  /** A read waiting this long with no leader known fails with NO_LEADER rather than waiting out its deadline. */
  readonly noLeaderWaitMs: number;
}

/** Counters for tests and benchmarks. */
export interface ReadBarrierStats {
  /** ReadIndex requests sent (rounds started, retries included). */
  readonly rounds: number;
  /** Rounds abandoned without an answer (timed out or leader changed). */
  readonly abandoned: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class ReadBarriers {
  /** Reads waiting for the next round. */
  private queued: Waiter[] = [];
  /** The round in flight, if any. */
  private round: Round | null = null;
  private released: Released[] = [];
  private flushScheduled = false;
  private closed = false;
  private readonly prefix = randomBytes(6).toString('hex');
  private nextContext = 1;
  private roundsStarted = 0;
  private roundsAbandoned = 0;

  constructor(
    private readonly source: ReadIndexSource,
    /** Deadlines, retries and how long a read has waited (the node's clock). */
    private readonly clock: NodeClock = systemClock,
  ) {}

  /** Reads waiting: queued for a round, in the round in flight, or released and waiting for the apply. */
  get waiting(): number {
    let n = this.queued.length + (this.round?.waiters.length ?? 0);
    for (const r of this.released) n += r.waiters.length;
    return n;
  }

  get stats(): ReadBarrierStats {
    return { rounds: this.roundsStarted, abandoned: this.roundsAbandoned };
  }

  /** Resolves with the applied index once a linearizable read may be served locally. */
  barrier(timeoutMs: number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        done: false,
        startedAt: this.clock.now(),
        timer: this.clock.setTimeout(() => this.expire(waiter), timeoutMs),
      };
      this.queued.push(waiter);
      const round = this.round;
      if (round !== null) {
        // One round in flight: this read waits for the next one — unless the round went
        // to a leader this node no longer follows, whose answer may never come.
        if (this.source.leader === undefined || this.source.leader() === round.leader) return;
        this.abandon(round);
      }
      this.scheduleFlush(0);
    });
  }

  onReadState(rs: ReadState): void {
    const round = this.round;
    if (round === null || decoder.decode(rs.context) !== round.key) return; // an abandoned round's late answer
    round.retry.cancel();
    this.round = null;
    const waiters = round.waiters.filter((w) => !w.done);
    if (waiters.length > 0) this.released.push({ index: rs.index, waiters });
    this.onApplied(this.source.appliedIndex());
    // Reads that arrived during the round share the next one.
    if (this.queued.length > 0) this.scheduleFlush(0);
  }

  onApplied(applied: number): void {
    if (this.released.length === 0) return;
    let kept = 0;
    for (const r of this.released) {
      if (applied >= r.index) {
        for (const w of r.waiters) {
          if (w.done) continue;
          w.done = true;
          w.timer.cancel();
          w.resolve(applied);
        }
      } else this.released[kept++] = r;
    }
    this.released.length = kept;
  }

  /** Fails every waiting read (shutdown). */
  close(err: NodeError): void {
    this.closed = true;
    const all = [...this.queued, ...(this.round?.waiters ?? []), ...this.released.flatMap((r) => r.waiters)];
    this.round?.retry.cancel();
    this.queued = [];
    this.round = null;
    this.released = [];
    for (const w of all) this.fail(w, err);
  }

  private scheduleFlush(delayMs: number): void {
    if (this.flushScheduled || this.closed) return;
    this.flushScheduled = true;
    if (delayMs === 0) setImmediate(() => this.flush());
    else this.clock.setTimeout(() => this.flush(), delayMs, { keepAlive: false });
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.round !== null || this.closed) return; // the round's answer (or abandonment) flushes again
    const batch = this.queued.filter((w) => !w.done);
    this.queued = [];
    if (batch.length === 0) return;
    const key = `${this.prefix}:${this.nextContext++}`;
    const leader = this.source.leader?.() ?? null;
    const res = this.source.requestReadIndex(encoder.encode(key));
    if (!res.ok) {
      // No leader known right now: try again shortly, within each waiter's own deadline,
      // but answer NO_LEADER (503, retry) once the cluster has been leaderless a while.
      const now = this.clock.now();
      for (const w of batch) {
        if (now - w.startedAt >= this.source.noLeaderWaitMs) this.fail(w, res.error);
        else this.queued.push(w);
      }
      if (this.queued.length > 0) this.scheduleFlush(NO_LEADER_RETRY_MS);
      return;
    }
    this.roundsStarted++;
    const round: Round = {
      key,
      waiters: batch,
      leader,
      // A request lost with a leader change never gets an answer; ask again after a while.
      retry: this.clock.setTimeout(
        () => {
          if (this.round === round) {
            this.abandon(round);
            this.scheduleFlush(0);
          }
        },
        ROUND_RETRY_MS,
        { keepAlive: false },
      ),
    };
    this.round = round;
  }

  /** Gives up on the round in flight: its reads go first in the next round. */
  private abandon(round: Round): void {
    round.retry.cancel();
    this.round = null;
    this.roundsAbandoned++;
    this.queued = round.waiters.concat(this.queued);
  }

  private expire(w: Waiter): void {
    if (w.done) return;
    this.fail(
      w,
      this.source.hasLeader()
        ? new NodeError('TIMEOUT', 'timed out waiting for a linearizable read point')
        : new NodeError('NO_LEADER', 'the cluster has no leader (is a majority of nodes up?); retry shortly'),
    );
  }

  private fail(w: Waiter, err: NodeError): void {
    if (w.done) return;
    w.done = true;
    w.timer.cancel();
    w.reject(err);
  }
}
