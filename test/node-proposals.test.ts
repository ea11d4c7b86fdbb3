/**
 * PendingProposals: a proposal waits for the entry Raft gave it, identified by (index, term).
 * After a re-election the same index can be handed out again in another term, so two waiters
 * can share an index; each must learn its own outcome.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { NodeError } from '../src/node/errors.js';
import { PendingProposals } from '../src/node/proposals.js';
import type { CommandResult } from '../src/registry/index.js';

const okResult = (revision: number): CommandResult => ({ ok: true, revision, changed: true });

/** Where a wait() stands, readable without awaiting it. */
function watch(p: Promise<{ index: number; result: CommandResult }>) {
  const state: {
    settled: 'pending' | 'resolved' | 'rejected';
    value?: { index: number; result: CommandResult };
    code?: string;
  } = { settled: 'pending' };
  p.then(
    (value) => {
      state.settled = 'resolved';
      state.value = value;
    },
    (err: unknown) => {
      state.settled = 'rejected';
      state.code = err instanceof NodeError ? err.code : String(err);
    },
  );
  return state;
}

/** Lets the promise callbacks run (no timers are advanced). */
const flush = () => vi.advanceTimersByTimeAsync(0);

describe('PendingProposals', () => {
  let pending: PendingProposals;

  beforeEach(() => {
    vi.useFakeTimers();
    pending = new PendingProposals();
  });

  afterEach(() => {
    pending.close(new NodeError('SHUTTING_DOWN', 'test over'));
    vi.useRealTimers();
  });

  it('resolves with the result when its entry is applied, and times out otherwise', async () => {
    const a = watch(pending.wait(5, 2, 1_000));
    const b = watch(pending.wait(6, 2, 1_000));
    pending.onApplied(5, 2, okResult(7));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(a).toEqual({ settled: 'resolved', value: { index: 5, result: okResult(7) } });
    expect(b).toMatchObject({ settled: 'rejected', code: 'TIMEOUT' });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a different entry applied at its index drops it (overwritten by a newer leader)', async () => {
    const a = watch(pending.wait(5, 2, 1_000));
    pending.onApplied(5, 3, okResult(7));
    await flush();
    expect(a).toMatchObject({ settled: 'rejected', code: 'PROPOSAL_DROPPED' });
  });

  // Regression: the timeout deleted whatever waited at the index, so an older proposal's timer
  // removed the waiter of a newer proposal that reused the index after a re-election, and that
  // proposal was reported as TIMEOUT although its write was applied.
  it.each([
    ['the older proposal times out first', { term: 2, timeoutMs: 1_000 }, { term: 3, timeoutMs: 10_000 }],
    ['the newer proposal times out first', { term: 3, timeoutMs: 1_000 }, { term: 2, timeoutMs: 10_000 }],
  ])('a timed-out waiter does not remove another waiter at the same index (%s)', async (_, first, second) => {
    const a = watch(pending.wait(5, first.term, first.timeoutMs));
    await vi.advanceTimersByTimeAsync(500);
    const b = watch(pending.wait(5, second.term, second.timeoutMs));
    await vi.advanceTimersByTimeAsync(500);
    expect(a).toMatchObject({ settled: 'rejected', code: 'TIMEOUT' });
    expect(b.settled).toBe('pending');
    pending.onApplied(5, second.term, okResult(9));
    await flush();
    expect(b).toEqual({ settled: 'resolved', value: { index: 5, result: okResult(9) } });
    expect(vi.getTimerCount()).toBe(0);
  });

  // Two waiters at one index are both kept: which of the two entries ends up committed at that
  // index is not known when the second is proposed (a leader of a later term may still commit
  // the older one from another follower's log), so neither is dropped before an entry applies.
  it.each([2, 3])(
    'two waiters at one index: the entry applied (term %i) resolves its own and drops the other',
    async (appliedTerm) => {
      const older = watch(pending.wait(5, 2, 10_000));
      const newer = watch(pending.wait(5, 3, 10_000));
      await flush();
      expect([older.settled, newer.settled]).toEqual(['pending', 'pending']);
      pending.onApplied(5, appliedTerm, okResult(4));
      await flush();
      const [won, lost] = appliedTerm === 2 ? [older, newer] : [newer, older];
      expect(won).toEqual({ settled: 'resolved', value: { index: 5, result: okResult(4) } });
      expect(lost).toMatchObject({ settled: 'rejected', code: 'PROPOSAL_DROPPED' });
      expect(vi.getTimerCount()).toBe(0);
    },
  );

  it('a snapshot past the index settles every waiter at or below it as TIMEOUT, and close() the rest', async () => {
    const a = watch(pending.wait(5, 2, 10_000));
    const b = watch(pending.wait(5, 3, 10_000));
    const c = watch(pending.wait(8, 3, 10_000));
    pending.onSnapshot(6);
    await flush();
    expect([a.code, b.code, c.settled]).toEqual(['TIMEOUT', 'TIMEOUT', 'pending']);
    pending.close(new NodeError('SHUTTING_DOWN', 'closing'));
    await flush();
    expect(c).toMatchObject({ settled: 'rejected', code: 'SHUTTING_DOWN' });
    expect(vi.getTimerCount()).toBe(0);
  });
});
