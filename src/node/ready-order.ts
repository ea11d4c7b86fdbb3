/**
 * The order of work inside one turn of the Ready loop: which committed entries may be
 * applied while the Ready's own write is in flight.
 */
import type { Entry, Ready } from '../../raft/index.js';

/**
 * Splits a Ready's committed entries into those that may be applied while the Ready is
 * being persisted (`early`: already durable in the local log, before any entry of this
 * Ready, and no membership change, which must see the Ready advanced) and the rest.
 */
export function splitCommitted(rd: Pick<Ready, 'committedEntries' | 'entries' | 'snapshot'>): {
  early: readonly Entry[];
  late: readonly Entry[];
} {
  const all = rd.committedEntries;
  if (all.length === 0 || rd.snapshot) return { early: [], late: all };
  const firstNew = rd.entries.length > 0 ? rd.entries[0]!.index : Infinity;
  let n = 0;
  while (n < all.length && all[n]!.index < firstNew && all[n]!.type !== 'conf') n++;
  return n === all.length ? { early: all, late: [] } : { early: all.slice(0, n), late: all.slice(n) };
}

/**
 * Runs `fn` on a later turn of the event loop: I/O started before the call (a Ready's WAL
 * write and fdatasync) gets under way first, instead of waiting behind fn's CPU.
 */
export function afterTurn<T>(fn: () => Promise<T>): Promise<T> {
  return new Promise<void>((resolve) => setImmediate(resolve)).then(fn);
}

/**
 * Starts the apply of a Ready's early entries (splitCommitted) beside its write. When the
 * write is synced the apply waits a turn (afterTurn), so the fdatasync gets under way first.
 * A write without a sync (a Ready that only moves the commit index on: Raft's mustSync is
 * false) is a page-cache copy that has no wait worth starting first, and on the leader that
 * Ready is the one every client answer waits on: the apply starts now, a turn sooner.
 */
export function startEarlyApply<T>(mustSync: boolean, fn: () => Promise<T>): Promise<T> {
  return mustSync ? afterTurn(fn) : fn();
}
