/**
 * Snapshot chunks out to followers a few MiB per turn of the event loop. Raft hands over a
 * whole snapshot at once (50+ MiB for 100,000 instances); encoding and writing it in one
 * turn held the leader's event loop for ~350 ms, and every write it was serving with it.
 *
 * Only chunks are paced; other messages need not wait behind them: the follower
 * reassembles chunks by offset, Raft sends a peer in snapshot state no appends, and a
 * heartbeat's commit never exceeds what the peer is known to hold.
 *
 * Two more things a large snapshot needs, both kept here because this is where the
 * leader sees what it sends:
 * - Raft starts a transfer over when the follower has not answered within a few election
 *   timeouts, or when it answers a probe before the last chunks arrived: a 257-MB snapshot
 *   takes longer than that to send and install. The same snapshot started over while its
 *   chunks are still going out does not start over here: the chunks already sent are not
 *   sent again (the follower keeps what it received of the same transfer, by offset).
 * - The follower needs the log from the snapshot's index on once it has installed it. If
 *   the leader compacts past that index meanwhile (an install of a million instances takes
 *   longer than the 5,000 writes the log keeps), the follower needs another snapshot, and
 *   another: compactionFloor() tells the Ready loop how far it may compact.
 */
import type { Message } from '../../raft/index.js';
import type { DetachedBinary } from '../transport/index.js';
import type { NodeClock, Timer } from './clock.js';
import { systemClock } from './clock.js';
import type { PeerMessage } from './peer-messages.js';

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
  /** How long after a snapshot was sent the log is kept for its follower (compactionFloor; default 10 min). */
  readonly holdLogMs?: number;
  /** Default: the system clock. */
  readonly clock?: NodeClock;
}

/** One transfer to one peer: the chunks still to send, and how far Raft has handed it over. */
interface Transfer {
  /** Its first chunk: which snapshot, term and size this transfer is. */
  readonly first: SnapshotChunk;
  readonly queue: SnapshotChunk[];
  /** Chunks below this offset were queued (and maybe sent) already. */
  queuedTo: number;
}

export class SnapshotPacer {
  private readonly transfers = new Map<string, Transfer>();
  /** The last snapshot sent to each peer: its index, and when (compactionFloor). */
  private readonly sent = new Map<string, { readonly term: number; readonly index: number; readonly at: number }>();
  private timer: Timer | null = null;
  private closed = false;
  private readonly bytesPerTurn: number;
  private readonly backlogWaitMs: number;
  private readonly holdLogMs: number;
  private readonly clock: NodeClock;

  constructor(private readonly options: SnapshotPacerOptions) {
    this.clock = options.clock ?? systemClock;
    this.bytesPerTurn = options.bytesPerTurn ?? 4 * 1024 * 1024;
    this.backlogWaitMs = options.backlogWaitMs ?? 5;
    this.holdLogMs = options.holdLogMs ?? 10 * 60_000;
  }

  /**
   * Queues a chunk. One at offset 0 starts a transfer and replaces what is left of an
   * earlier one to that peer, unless it starts the very transfer still going out: then it
   * and the chunks after it that were queued already are skipped.
   */
  push(chunk: SnapshotChunk): void {
    if (this.closed) return;
    const current = this.transfers.get(chunk.to);
    const same = current !== undefined && sameTransfer(current.first, chunk);
    if (chunk.offset === 0 && !same) {
      this.transfers.set(chunk.to, { first: chunk, queue: [chunk], queuedTo: chunk.offset + chunk.chunk.byteLength });
      this.sent.set(chunk.to, { term: chunk.term, index: chunk.meta.index, at: this.clock.now() });
      this.schedule(false);
      return;
    }
    // The rest of a transfer that was replaced or dropped goes nowhere; a chunk queued
    // already (the same transfer started over) is not queued twice.
    if (!same || chunk.offset < current.queuedTo) return;
    current.queue.push(chunk);
    current.queuedTo = chunk.offset + chunk.chunk.byteLength;
    this.schedule(false);
  }

  /** Chunks still queued for `to` (tests, status). */
  pending(to: string): number {
    return this.transfers.get(to)?.queue.length ?? 0;
  }

  /**
   * The highest log index the leader may compact to, given it would compact to `to`, and
   * still serve the entries after it to every follower it sent a snapshot in the last
   * `holdLogMs` that has not caught up since: for each, the larger of the snapshot's index
   * and what the follower is known to hold (`match`; undefined for a peer no longer in the
   * configuration). A follower known to hold `to` or more has caught up: it holds nothing
   * any more. One sent a snapshot at or past `to` has not: this compaction does not reach
   * what it needs, a later one may (letting go of it here let the next compaction pass the
   * snapshot while the follower still installed it, and it needed another). The Ready loop
   * bounds how much it keeps for this.
   */
  compactionFloor(to: number, match: (peer: string) => number | undefined): number {
    let floor = to;
    const now = this.clock.now();
    for (const [peer, s] of this.sent) {
      const held = match(peer);
      if (held === undefined || held >= to || now - s.at > this.holdLogMs || !this.options.leadsIn(s.term)) {
        this.sent.delete(peer);
        continue;
      }
      floor = Math.min(floor, Math.max(s.index, held));
    }
    return floor;
  }

  close(): void {
    this.closed = true;
    this.timer?.cancel();
    this.timer = null;
    this.transfers.clear();
    this.sent.clear();
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
    for (const [to, { queue }] of this.transfers) {
      const first = queue[0];
      if (first === undefined || !this.options.leadsIn(first.term)) {
        this.transfers.delete(to); // chunks of a term this node no longer leads are of no use to anyone
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
      if (queue.length === 0) this.transfers.delete(to);
    }
    if (this.transfers.size > 0) this.schedule(backlogged);
  }
}

/**
 * The transport's `detachBinary` for peer messages: a chunk's bytes (a view of the
 * prepared snapshot) go to the socket as they are, not copied into the encoded message
 * and then into a batch, twice per MiB sent (src/transport/codec.ts, SplicedPayload).
 */
export function detachSnapshotChunk(
  message: PeerMessage,
  placeholder: Uint8Array,
): DetachedBinary<PeerMessage> | undefined {
  if (message.kind !== 'raft' || message.msg.type !== 'snapshot') return undefined;
  return { shell: { kind: 'raft', msg: { ...message.msg, chunk: placeholder } }, binary: message.msg.chunk };
}

/**
 * Whether two chunks belong to one transfer. Chunks are not compared by their cuts: one
 * storage cuts the snapshot at an index the same way every time (PiecewiseSnapshot), so
 * a chunk below `queuedTo` of the same transfer is one queued already.
 */
function sameTransfer(a: SnapshotChunk, b: SnapshotChunk): boolean {
  return a.term === b.term && a.meta.index === b.meta.index && a.meta.term === b.meta.term && a.total === b.total;
}
