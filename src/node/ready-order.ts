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
export function splitCommitted(rd: Pick<Ready, 'committedEntries' | 'entries' | 'snapshot'>): { early: readonly Entry[]; late: readonly Entry[] } {
  const all = rd.committedEntries;
  if (all.length === 0 || rd.snapshot) return { early: [], late: all };
  const firstNew = rd.entries.length > 0 ? rd.entries[0]!.index : Infinity;
  let n = 0;
  while (n < all.length && all[n]!.index < firstNew && all[n]!.type !== 'conf') n++;
  return n === all.length ? { early: all, late: [] } : { early: all.slice(0, n), late: all.slice(n) };
}

/** Waits for both (either may be absent) and rethrows the first failure only after both ended. */
export async function settleBoth(a: Promise<void> | undefined, b: Promise<void> | undefined): Promise<void> {
  const [ra, rb] = await Promise.allSettled([a, b]);
  if (ra.status === 'rejected') throw ra.reason;
  if (rb.status === 'rejected') throw rb.reason;
}
