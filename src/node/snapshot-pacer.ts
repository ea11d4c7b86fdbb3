/**
 * Snapshot chunks out to followers a few MiB per turn of the event loop. Raft hands over a
 * whole snapshot at once (50+ MiB for 100,000 instances); encoding and writing it in one
 * turn held the leader's event loop for ~350 ms, and every write it was serving with it.
 *
 * Only chunks are paced; other messages need not wait behind them: the follower
 * reassembles chunks by offset, Raft sends a peer in snapshot state no appends, and a
 * heartbeat's commit never exceeds what the peer is known to hold.
 */
import type { Message } from '../../raft/index.js';
import type { NodeClock, Timer } from './clock.js';
import { systemClock } from './clock.js';

export type SnapshotChunk = Extract<Message, { type: 'snapshot' }>;

export interface SnapshotPacerOptions {
  /** Hands one chunk to the transport. */
  readonly send: (chunk: SnapshotChunk) => void;
  /** Bytes sent to `to` and not yet taken by the kernel: nothing more goes out while this is at the limit. */
  readonly backlog: (to: string) => number;
  /** Whether this node still leads in `term` (chunks of another term are dropped). */
  readonly leadsIn: (term: number) => boolean;
  /** Chunk bytes per turn, and the backlog at which a peer waits (default 4 MiB). */
  readonly bytesPerTurn?: number;
  /** How long a peer with a full backlog waits before it is looked at again (default 5 ms). */
  readonly backlogWaitMs?: number;
  /** Default: the system clock. */
  readonly clock?: NodeClock;
}

export class SnapshotPacer {
  private readonly queues = new Map<string, SnapshotChunk[]>();
  private timer: Timer | null = null;
  private closed = false;
  private readonly bytesPerTurn: number;
  private readonly backlogWaitMs: number;
  private readonly clock: NodeClock;

  constructor(private readonly options: SnapshotPacerOptions) {
    this.clock = options.clock ?? systemClock;
    this.bytesPerTurn = options.bytesPerTurn ?? 4 * 1024 * 1024;
    this.backlogWaitMs = options.backlogWaitMs ?? 5;
  }

  /** Queues a chunk; one at offset 0 starts a transfer and replaces what is left of an earlier one to that peer. */
  push(chunk: SnapshotChunk): void {
    if (this.closed) return;
    const queue = chunk.offset === 0 ? [] : this.queues.get(chunk.to);
    // The rest of a transfer that was replaced or dropped goes nowhere.
    if (queue === undefined || (chunk.offset !== 0 && !sameTransfer(queue[0], chunk))) return;
    queue.push(chunk);
    this.queues.set(chunk.to, queue);
    this.schedule(false);
  }

  /** Chunks still queued for `to` (tests, status). */
  pending(to: string): number {
    return this.queues.get(to)?.length ?? 0;
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.timer = null;
    this.queues.clear();
  }

  private schedule(backlogged: boolean): void {
    if (this.timer !== null || this.closed) return;
    this.timer = this.clock.setTimeout(
      () => {
        this.timer = null;
        this.sendSome();
      },
      backlogged ? this.backlogWaitMs : 0,
    );
  }

  private sendSome(): void {
    let backlogged = true;
    for (const [to, queue] of this.queues) {
      const first = queue[0];
      if (first === undefined || !this.options.leadsIn(first.term)) {
        this.queues.delete(to); // chunks of a term this node no longer leads are of no use to anyone
        continue;
      }
      if (this.options.backlog(to) >= this.bytesPerTurn) continue;
      backlogged = false;
      let bytes = 0;
      while (queue.length > 0 && bytes < this.bytesPerTurn) {
        const chunk = queue.shift()!;
        if (!this.options.leadsIn(chunk.term)) {
          queue.length = 0;
          break;
        }
        bytes += chunk.chunk.byteLength;
        this.options.send(chunk);
      }
      if (queue.length === 0) this.queues.delete(to);
    }
    if (this.queues.size > 0) this.schedule(backlogged);
  }
}

function sameTransfer(a: SnapshotChunk | undefined, b: SnapshotChunk): boolean {
  return (
    a !== undefined &&
    a.term === b.term &&
    a.meta.index === b.meta.index &&
    a.meta.term === b.meta.term &&
    a.total === b.total
  );
}
