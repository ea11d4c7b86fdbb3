/**
 * Exactly-once for client commands: per client, the last applied seq and its result.
 *
 * Part of the replicated state (persisted, in snapshots), so it must evolve identically on
 * every replica: eviction picks the client whose last command was applied longest ago (the
 * smallest log index), never anything time- or memory-dependent. Insertion order of the Map
 * is kept equal to last-applied-index order, so the LRU client is always the first key.
 */
import type { CommandResult } from './commands.js';

export const DEFAULT_MAX_CLIENTS = 10_000;

export interface DedupRecord {
  readonly seq: number;
  /** Log index of the command that set this record; the LRU order. */
  readonly index: number;
  readonly result: CommandResult;
}

export type DedupCheck =
  | { readonly kind: 'new' }
  | { readonly kind: 'retry'; readonly result: CommandResult }
  | { readonly kind: 'stale'; readonly lastSeq: number };

export class DedupTable {
  readonly #records = new Map<string, DedupRecord>();

  constructor(readonly maxClients: number = DEFAULT_MAX_CLIENTS) {
    if (!Number.isSafeInteger(maxClients) || maxClients < 1)
      throw new RangeError('maxClients must be a positive integer');
  }

  get size(): number {
    return this.#records.size;
  }

  check(clientId: string, seq: number): DedupCheck {
    const r = this.#records.get(clientId);
    if (r === undefined || seq > r.seq) return { kind: 'new' };
    if (seq === r.seq) return { kind: 'retry', result: r.result };
    return { kind: 'stale', lastSeq: r.seq };
  }

  get(clientId: string): DedupRecord | undefined {
    return this.#records.get(clientId);
  }

  /** Records a newly applied command; returns the clients evicted to stay within the bound. */
  record(clientId: string, rec: DedupRecord): string[] {
    this.#records.delete(clientId);
    this.#records.set(clientId, rec);
    const evicted: string[] = [];
    for (const id of this.#records.keys()) {
      if (this.#records.size <= this.maxClients) break;
      this.#records.delete(id);
      evicted.push(id);
    }
    return evicted;
  }

  /**
   * Rebuilds from storage, where keys come back in client-id order rather than LRU order.
   * Never evicts: a table over the bound (a node restarted with a smaller bound, which must
   * not happen since the bound is replicated semantics) shrinks on the next record().
   */
  static fromRecords(entries: Iterable<readonly [string, DedupRecord]>, maxClients: number): DedupTable {
    const table = new DedupTable(maxClients);
    const sorted = [...entries].sort((a, b) => a[1].index - b[1].index);
    for (const [id, rec] of sorted) table.#records.set(id, rec);
    return table;
  }

  entries(): IterableIterator<[string, DedupRecord]> {
    return this.#records.entries();
  }
}
