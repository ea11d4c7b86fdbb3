/**
 * ReadIndex (§6.4 of the Raft dissertation), batched: every read that arrives before
 * the leader next hands out a Ready joins one round, and one heartbeat broadcast
 * confirms leadership for the whole round.
 *
 * A round's heartbeats leave after all its reads arrived, so a quorum acknowledging
 * them proves the leader was still leader after each read began. Its read index is the
 * commit index when the round starts, which is at least each read's own commit index.
 * An acknowledgement of round r also confirms every earlier round: followers answer in
 * order, and an ack for a later heartbeat means no newer leader had taken over when
 * the earlier ones were sent.
 */
import type { NodeId } from './messages.js';

export interface PendingRead {
  readonly context: Uint8Array;
  /** The node that asked: the leader itself, or a follower that forwarded the read. */
  readonly from: NodeId;
}

export interface ReadRound {
  readonly id: number;
  readonly index: number;
  readonly reads: readonly PendingRead[];
}

export class ReadOnly {
  private queued: PendingRead[] = [];
  private rounds: ReadRound[] = [];
  private nextId = 1;

  enqueue(read: PendingRead): void {
    this.queued.push(read);
  }

  hasQueued(): boolean {
    return this.queued.length > 0;
  }

  /** Moves queued reads into a new round at `commitIndex`. */
  startRound(commitIndex: number): ReadRound | null {
    if (this.queued.length === 0) return null;
    const round: ReadRound = { id: this.nextId++, index: commitIndex, reads: this.queued };
    this.queued = [];
    this.rounds.push(round);
    return round;
  }

  /** Removes and returns every round with id ≤ `confirmedId`. */
  confirm(confirmedId: number): ReadRound[] {
    let n = 0;
    while (n < this.rounds.length && this.rounds[n]!.id <= confirmedId) n++;
    if (n === 0) return [];
    return this.rounds.splice(0, n);
  }

  lastRoundId(): number {
    return this.nextId - 1;
  }

  pendingCount(): number {
    let n = this.queued.length;
    for (const r of this.rounds) n += r.reads.length;
    return n;
  }

  /** Leadership lost: every pending read is abandoned (the host's requests time out and retry). */
  reset(): void {
    this.queued = [];
    this.rounds = [];
  }
}
