/**
 * Proposals on the leader: every command proposed in one event-loop turn goes into Raft as
 * one batch (one append, one fsync on every node), and each caller then waits for its own
 * entry to be applied (PendingProposals, by index and term).
 */
import type { RawNode } from '../../raft/index.js';
import type { NodeError } from './errors.js';
import { fromCoreRefusal } from './errors.js';
import type { ProposalResult } from './peer-messages.js';
import type { PendingProposals } from './proposals.js';

interface Queued {
  readonly data: Uint8Array;
  readonly resolve: (at: { index: number; term: number }) => void;
  readonly reject: (err: NodeError) => void;
}

export class LocalProposer {
  private queue: Queued[] = [];
  private scheduled = false;

  constructor(
    private readonly raw: RawNode,
    private readonly proposals: PendingProposals,
    /** The core has work (a Ready) after a batch was proposed. */
    private readonly kick: () => void,
  ) {}

  /** Proposes `data` (an encoded command) and resolves with its result once applied here. */
  async propose(data: Uint8Array, timeoutMs: number): Promise<ProposalResult> {
    const { index, term } = await this.enqueue(data);
    return this.proposals.wait(index, term, timeoutMs);
  }

  /** Commands queued for the next batch. */
  get queued(): number {
    return this.queue.length;
  }

  private enqueue(data: Uint8Array): Promise<{ index: number; term: number }> {
    return new Promise((resolve, reject) => {
      this.queue.push({ data, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    if (batch.length === 0) return;
    const res = this.raw.proposeBatch(batch.map((p) => p.data));
    if (!res.ok) {
      const err = fromCoreRefusal(res.error);
      for (const p of batch) p.reject(err);
      return;
    }
    const { firstIndex, term } = res.value;
    for (const [i, p] of batch.entries()) p.resolve({ index: firstIndex + i, term });
    this.kick();
  }

  /** Fails everything still queued (the node is closing). */
  close(err: NodeError): void {
    const batch = this.queue;
    this.queue = [];
    for (const p of batch) p.reject(err);
  }
}
