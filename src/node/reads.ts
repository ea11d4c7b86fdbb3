/**
 * Linearizable read barriers. Every read that arrives before the next flush shares one
 * ReadIndex request (and the leader batches requests from all nodes into one heartbeat
 * round), then waits until this node has applied the returned index.
 */
import { randomBytes } from 'node:crypto';
import type { ReadState } from '../../raft/index.js';
import { NodeError } from './errors.js';

interface Waiter {
  readonly resolve: (applied: number) => void;
  readonly reject: (err: NodeError) => void;
  readonly timer: NodeJS.Timeout;
  readonly startedAt: number;
  /** Set once the read index is known; the waiter then waits for apply. */
  index: number | null;
}

export interface ReadIndexSource {
  /** Asks Raft for a read index with this context; false (with a leader hint) when no leader is known. */
  requestReadIndex(context: Uint8Array): { ok: true } | { ok: false; error: NodeError };
  appliedIndex(): number;
  hasLeader(): boolean;
  /** A read waiting this long with no leader known fails with NO_LEADER rather than waiting out its deadline. */
  readonly noLeaderWaitMs: number;
}

export class ReadBarriers {
  private queued: Waiter[] = [];
  private readonly inFlight = new Map<string, Waiter[]>();
  private readonly waitingApply = new Set<Waiter>();
  private flushScheduled = false;
  private readonly prefix = randomBytes(6).toString('hex');
  private nextContext = 1;

  constructor(private readonly source: ReadIndexSource) {}

  /** Resolves with the applied index once a linearizable read may be served locally. */
  barrier(timeoutMs: number): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        index: null,
        startedAt: Date.now(),
        timer: setTimeout(() => this.expire(waiter), timeoutMs),
      };
      this.queued.push(waiter);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.queued.length === 0) return;
    const batch = this.queued;
    this.queued = [];
    const key = `${this.prefix}:${this.nextContext++}`;
    const res = this.source.requestReadIndex(new TextEncoder().encode(key));
    if (!res.ok) {
      // No leader known right now: try again shortly, within each waiter's own deadline,
      // but answer NO_LEADER (503, retry) once the cluster has been leaderless a while.
      const now = Date.now();
      for (const w of batch) {
        if (now - w.startedAt >= this.source.noLeaderWaitMs) {
          clearTimeout(w.timer);
          w.reject(res.error);
        } else this.queued.push(w);
      }
      if (this.queued.length === 0) return;
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        setTimeout(() => this.flush(), 50).unref();
      }
      return;
    }
    this.inFlight.set(key, batch);
    // A request lost with a leader change never gets an answer; re-ask after a while.
    setTimeout(() => this.retry(key), 1000).unref();
  }

  private retry(key: string): void {
    const batch = this.inFlight.get(key);
    if (!batch) return;
    this.inFlight.delete(key);
    for (const w of batch) this.queued.push(w);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  onReadState(rs: ReadState): void {
    const key = new TextDecoder().decode(rs.context);
    const batch = this.inFlight.get(key);
    if (!batch) return;
    this.inFlight.delete(key);
    for (const w of batch) {
      w.index = rs.index;
      this.waitingApply.add(w);
    }
    this.onApplied(this.source.appliedIndex());
  }

  onApplied(applied: number): void {
    for (const w of this.waitingApply) {
      if (w.index !== null && applied >= w.index) {
        this.waitingApply.delete(w);
        clearTimeout(w.timer);
        w.resolve(applied);
      }
    }
  }

  private expire(w: Waiter): void {
    this.waitingApply.delete(w);
    this.queued = this.queued.filter((x) => x !== w);
    for (const [key, batch] of this.inFlight) {
      const rest = batch.filter((x) => x !== w);
      if (rest.length === 0) this.inFlight.delete(key);
      else if (rest.length !== batch.length) this.inFlight.set(key, rest);
    }
    w.reject(
      this.source.hasLeader()
        ? new NodeError('TIMEOUT', 'timed out waiting for a linearizable read point')
        : new NodeError('NO_LEADER', 'the cluster has no leader (is a majority of nodes up?); retry shortly'),
    );
  }

  /** Fails every waiting read (shutdown). */
  close(err: NodeError): void {
    const all = [...this.queued, ...this.waitingApply, ...[...this.inFlight.values()].flat()];
    this.queued = [];
    this.waitingApply.clear();
    this.inFlight.clear();
    for (const w of all) {
      clearTimeout(w.timer);
      w.reject(err);
    }
  }
}
