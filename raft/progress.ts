/**
 * The leader's view of one follower's log.
 *
 * Invariant: 0 <= match < next.
 *
 * - probe: the leader does not know where the follower's log matches; it sends one
 *   append at a time and waits (probeSent) for the answer or a heartbeat response.
 * - replicate: the follower is known to match up to `match`; the leader streams
 *   appends optimistically, bounded by the in-flight window.
 * - snapshot: the follower needs compacted entries; the leader sent a snapshot at
 *   `pendingSnapshot` and sends nothing else until it is installed (or times out).
 */
import { Inflights } from './inflights.js';

export type ProgressState = 'probe' | 'replicate' | 'snapshot';

export class Progress {
  state: ProgressState = 'probe';
  match = 0;
  next: number;
  probeSent = false;
  pendingSnapshot = 0;
  /** Ticks since the snapshot was sent; a stalled transfer is retried. */
  snapshotTicks = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** Highest ReadIndex round this follower has acknowledged. */
  readAck = 0;
  /** The host was told this follower lost acknowledged entries (RaftConfig.onFollowerLostEntries). */
  lostEntriesReported = false;
  readonly inflights: Inflights;

  constructor(
    next: number,
    readonly isLearner: boolean,
    maxInflight: number,
    maxInflightBytes: number,
  ) {
    this.next = next;
    this.inflights = new Inflights(maxInflight, maxInflightBytes);
  }

  private resetState(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.snapshotTicks = 0;
    this.inflights.reset();
  }

  becomeProbe(): void {
    // After a snapshot, probe from just past it: the follower has at least that much.
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.resetState('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.resetState('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.resetState('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.resetState('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** Acknowledgement up to `n`; false when it is stale (already known). */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /** An append up to `last` left optimistically (replicate state). */
  optimisticUpdate(last: number): void {
    this.next = last + 1;
  }

  /**
   * A rejection of the append at prevIndex `rejected`; `matchHint` is the follower's
   * best guess of the last index that may match. Returns false when the rejection is
   * stale (an answer to an older append) and must be ignored.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe':
        return this.probeSent;
      case 'replicate':
        return this.inflights.full();
      case 'snapshot':
        return true;
    }
  }
}
