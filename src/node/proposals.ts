/**
 * Proposals this node made, waiting to be applied. A proposal is identified by the
 * (index, term) Raft gave it: if a different entry is applied at that index, it was
 * overwritten by a newer leader and the caller learns PROPOSAL_DROPPED (a retry with
 * the same client id and sequence is safe).
 */
import type { CommandResult, Instance } from '../registry/index.js';
import { NodeError } from './errors.js';

interface Pending {
  readonly term: number;
  readonly resolve: (r: { index: number; result: CommandResult; instance?: Instance | null }) => void;
  readonly reject: (err: NodeError) => void;
  readonly timer: NodeJS.Timeout;
}

export class PendingProposals {
  private readonly byIndex = new Map<number, Pending>();

  wait(index: number, term: number, timeoutMs: number): Promise<{ index: number; result: CommandResult; instance?: Instance | null }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.byIndex.delete(index);
        reject(new NodeError('TIMEOUT', `proposal at index ${index} was not applied within ${timeoutMs} ms; its outcome is unknown`));
      }, timeoutMs);
      this.byIndex.set(index, { term, resolve, reject, timer });
    });
  }

  /** An entry was applied at `index` with `term`; `result` is set for registry commands and conf changes. */
  onApplied(index: number, term: number, result: CommandResult | undefined, instance?: Instance | null): void {
    const p = this.byIndex.get(index);
    if (!p) return;
    this.byIndex.delete(index);
    clearTimeout(p.timer);
    if (p.term !== term || result === undefined) {
      p.reject(new NodeError('PROPOSAL_DROPPED', 'the proposal was overwritten by a new leader; retry'));
    } else {
      p.resolve(instance === undefined ? { index, result } : { index, result, instance });
    }
  }

  /** A snapshot jumped past these indexes: their outcome is unknown here. */
  onSnapshot(index: number): void {
    for (const [i, p] of this.byIndex) {
      if (i > index) continue;
      this.byIndex.delete(i);
      clearTimeout(p.timer);
      p.reject(new NodeError('TIMEOUT', 'a snapshot replaced the log before the proposal was applied; its outcome is unknown'));
    }
  }

  close(err: NodeError): void {
    for (const p of this.byIndex.values()) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.byIndex.clear();
  }
}
