/**
 * Proposals this node made, waiting to be applied. A proposal is identified by the
 * (index, term) Raft gave it: if a different entry is applied at that index, it was
 * overwritten by a newer leader and the caller learns PROPOSAL_DROPPED (a retry with
 * the same client id and sequence is safe).
 *
 * Several proposals can wait at one index: after a re-election this node, leading again,
 * hands out an index that its proposal of an earlier term already had. Which of the two
 * entries is finally committed there is not known when the second is proposed: a leader
 * of a later term may still commit the older one from another follower's log. So both
 * wait; the entry applied at the index resolves the waiter of its term and drops the rest.
 *
 * Invariant: every waiter is in `byIndex` until it is settled, and it is settled exactly
 * once (applied, timed out, jumped over by a snapshot, or closed), each path removing only
 * itself or everything at the index it settles.
 */
import type { CommandResult, Instance } from '../registry/index.js';
import type { NodeClock, Timer } from './clock.js';
import { systemClock } from './clock.js';
import { NodeError } from './errors.js';

type Outcome = { index: number; result: CommandResult; instance?: Instance | null };

interface Pending {
  readonly term: number;
  readonly resolve: (r: Outcome) => void;
  readonly reject: (err: NodeError) => void;
  readonly timer: Timer;
}

export class PendingProposals {
  private readonly byIndex = new Map<number, Set<Pending>>();

  constructor(private readonly clock: NodeClock = systemClock) {}

  wait(index: number, term: number, timeoutMs: number): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        // Only this waiter: another one at the same index (another term) keeps waiting.
        this.remove(index, pending);
        reject(
          new NodeError(
            'TIMEOUT',
            `proposal at index ${index} was not applied within ${timeoutMs} ms; its outcome is unknown`,
          ),
        );
      }, timeoutMs);
      const pending: Pending = { term, resolve, reject, timer };
      const waiters = this.byIndex.get(index);
      if (waiters === undefined) this.byIndex.set(index, new Set([pending]));
      else waiters.add(pending);
    });
  }

  /** Indexes with a proposal waiting (about the number of proposals: several share an index only across a change of leader). */
  get size(): number {
    return this.byIndex.size;
  }

  /** An entry was applied at `index` with `term`; `result` is set for registry commands and conf changes. */
  onApplied(index: number, term: number, result: CommandResult | undefined, instance?: Instance | null): void {
    const waiters = this.byIndex.get(index);
    if (waiters === undefined) return;
    this.byIndex.delete(index);
    for (const p of waiters) {
      p.timer.cancel();
      if (p.term !== term || result === undefined) {
        p.reject(new NodeError('PROPOSAL_DROPPED', 'the proposal was overwritten by a new leader; retry'));
      } else {
        p.resolve(instance === undefined ? { index, result } : { index, result, instance });
      }
    }
  }

  /** A snapshot jumped past these indexes: their outcome is unknown here. */
  onSnapshot(index: number): void {
    for (const [i, waiters] of this.byIndex) {
      if (i > index) continue;
      this.byIndex.delete(i);
      for (const p of waiters) {
        p.timer.cancel();
        p.reject(
          new NodeError(
            'TIMEOUT',
            'a snapshot replaced the log before the proposal was applied; its outcome is unknown',
          ),
        );
      }
    }
  }

  close(err: NodeError): void {
    for (const waiters of this.byIndex.values()) {
      for (const p of waiters) {
        p.timer.cancel();
        p.reject(err);
      }
    }
    this.byIndex.clear();
  }

  private remove(index: number, p: Pending): void {
    const waiters = this.byIndex.get(index);
    if (waiters === undefined || !waiters.delete(p)) return;
    if (waiters.size === 0) this.byIndex.delete(index);
  }
}
