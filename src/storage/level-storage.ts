/**
 * The durable storage of a node: the Raft log, hard state and snapshot meta in LevelDB,
 * with the uncompacted log mirrored in memory so the core reads synchronously.
 *
 * Writes run one at a time, in call order. Each builds one LevelDB batch, writes it, and
 * only then changes the in-memory mirror, so reads always describe what is durable. If a
 * batch write fails the storage refuses every later write (code FAILED): after a failed
 * fsync nobody knows what is on disk, and the node must restart from it.
 */
import type { ConfState, Entry, HardState, Snapshot, SnapshotMeta } from '../../raft/messages.js';
import type { HostStorage, StorageMiss } from '../../raft/storage.js';
import { type NodeDatabase, openNodeDatabase } from './database.js';
import { StorageError, ioError } from './errors.js';
import { RAFT_KEYS, logKey } from './keys.js';
import { loadNodeState } from './load.js';
import { LogStore, planAppend } from './log-store.js';
import { decodeSnapshotData, metaFor, positionOf, readStateMachine } from './snapshot.js';
import { encodeEntry, encodeHardState, encodeSnapshotMeta } from './values.js';

/** Everything one Raft Ready asks to make durable; written as one batch with one fsync. */
export interface PersistInput {
  readonly hardState?: HardState;
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot;
  /**
   * fsync the batch (default true). Raft's `mustSync` is false for a Ready that only moves
   * the commit index: a commit index lost in a crash is learned again from the leader, and
   * LevelDB keeps unsynced batches in order, so the next synced batch makes it durable too.
   */
  readonly sync?: boolean;
}

export interface StorageStats {
  /** LevelDB batches written. */
  readonly batches: number;
  /** Batches written with `sync: true` (one fsync each). */
  readonly syncs: number;
  /** Log entries put. */
  readonly entriesWritten: number;
}

export interface LevelStorageOptions {
  /** Called when preparing a snapshot in the background fails (it is retried on the next snapshot() call). */
  readonly onSnapshotError?: (err: StorageError) => void;
}

type Op =
  | { readonly type: 'put'; readonly where: 'log'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly where: 'log'; readonly key: Uint8Array }
  | { readonly type: 'put'; readonly where: 'raft'; readonly key: string; readonly value: Uint8Array }
  | { readonly type: 'put'; readonly where: 'sm'; readonly key: Uint8Array; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly where: 'sm'; readonly key: Uint8Array };

export class LevelStorage implements HostStorage {
  private hardState: HardState;
  private snapMeta: SnapshotMeta;
  private readonly log: LogStore;
  /** The newest snapshot prepared (or installed); served while its index ≥ the compaction index. */
  private prepared: Snapshot | undefined;
  /** The running preparation; it never rejects (failures land in `snapshotError`). */
  private preparing: Promise<void> | undefined;
  private snapshotError: StorageError | undefined;
  private tail: Promise<void> = Promise.resolve();
  private failure: StorageError | undefined;
  /** Set by close(); no write is accepted after it. */
  private closed: Promise<void> | undefined;
  private counters = { batches: 0, syncs: 0, entriesWritten: 0 };

  private constructor(
    /** The node database; the registry reads and writes `database.sm`. */
    readonly database: NodeDatabase,
    state: { hardState: HardState; snapMeta: SnapshotMeta; entries: Entry[] },
    private readonly options: LevelStorageOptions,
  ) {
    this.hardState = state.hardState;
    this.snapMeta = state.snapMeta;
    this.log = new LogStore(state.snapMeta.index, state.snapMeta.term, state.entries);
  }

  /**
   * Opens the storage of a node: the database in `dir` (opened and format-checked here)
   * or one already opened with openNodeDatabase. Reads and verifies the whole log.
   * Rejects with StorageError CORRUPT_ENTRY (naming the index), CORRUPT_STATE, LOG_GAP,
   * UNKNOWN_FORMAT, LOCKED or IO; the node must not start then.
   */
  static async open(location: string | NodeDatabase, options: LevelStorageOptions = {}): Promise<LevelStorage> {
    const database = typeof location === 'string' ? await openNodeDatabase(location) : location;
    try {
      const state = await loadNodeState(database);
      return new LevelStorage(database, state, options);
    } catch (err) {
      if (typeof location === 'string') await database.db.close();
      throw err;
    }
  }

  // ---- reads (synchronous, from memory) ----

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.snapMeta.conf };
  }

  entries(lo: number, hi: number, maxBytes: number): readonly Entry[] | StorageMiss {
    return this.log.entries(lo, hi, maxBytes);
  }

  term(index: number): number | StorageMiss {
    return this.log.term(index);
  }

  firstIndex(): number {
    return this.log.firstIndex();
  }

  lastIndex(): number {
    return this.log.lastIndex();
  }

  /** The compaction point: index, term and conf of the last compact() or applied snapshot. */
  snapshotMeta(): SnapshotMeta {
    return this.snapMeta;
  }

  /**
   * A prepared snapshot whose index is at least the compaction index, or 'unavailable'
   * while one is being prepared from the state machine (started by this call).
   */
  snapshot(): Snapshot | 'unavailable' {
    const p = this.prepared;
    if (p !== undefined && p.meta.index >= this.snapMeta.index) return p;
    this.startPreparing();
    return 'unavailable';
  }

  /**
   * Resolves with the snapshot snapshot() will now return, preparing one if needed;
   * rejects with the StorageError if preparing fails.
   */
  async whenSnapshotReady(): Promise<Snapshot> {
    for (;;) {
      const s = this.snapshot();
      if (s !== 'unavailable') return s;
      if (this.preparing === undefined) throw new StorageError('CLOSED', 'storage is closed');
      await this.preparing;
      const err = this.snapshotError;
      if (err !== undefined) throw err;
    }
  }

  stats(): StorageStats {
    return { ...this.counters };
  }

  // ---- writes (serialized; memory changes after the batch is durable) ----

  /** Appends entries (replacing any conflicting tail) in one synced batch. */
  append(entries: readonly Entry[]): Promise<void> {
    return this.persist({ entries });
  }

  /** Writes the hard state in one synced batch. */
  setHardState(hs: HardState): Promise<void> {
    return this.persist({ hardState: hs, entries: [] });
  }

  /**
   * Installs a snapshot: in one synced batch, replaces every `sm` key with the snapshot's
   * pairs, deletes the whole log and records the snapshot meta. Rejects with
   * SNAPSHOT_OUT_OF_DATE if it is not newer than the current snapshot, CORRUPT_SNAPSHOT if
   * its data is damaged or describes another index. The caller must not write to `sm` meanwhile.
   */
  applySnapshot(snapshot: Snapshot): Promise<void> {
    return this.persist({ entries: [], snapshot });
  }

  /**
   * Everything of one Raft Ready in ONE batch with ONE fsync (unless `sync: false`), in this
   * order: install the snapshot (if any), append the entries, write the hard state. Nothing
   * is written if nothing is given. Entries and snapshots are always synced.
   */
  persist(input: PersistInput): Promise<void> {
    return this.enqueue(async () => {
      const { snapshot, entries, hardState } = input;
      const ops: Op[] = [];
      let snapIndex = this.log.snapshotIndex();
      let lastIndex = this.log.lastIndex();
      let installed: Snapshot | undefined;
      if (snapshot !== undefined) {
        await this.planInstall(snapshot, ops);
        installed = snapshot;
        snapIndex = lastIndex = snapshot.meta.index;
      }
      const plan = planAppend(snapIndex, lastIndex, entries);
      for (let i = plan.deleteFrom; i <= plan.deleteTo; i++) ops.push({ type: 'del', where: 'log', key: logKey(i) });
      for (const e of plan.fresh) ops.push({ type: 'put', where: 'log', key: logKey(e.index), value: encodeEntry(e) });
      if (hardState !== undefined) {
        ops.push({ type: 'put', where: 'raft', key: RAFT_KEYS.hardState, value: encodeHardState(hardState) });
      }
      if (ops.length === 0) return;
      const sync = input.sync !== false || plan.fresh.length > 0 || installed !== undefined || plan.deleteTo >= plan.deleteFrom;
      await this.write(ops, sync, plan.fresh.length);
      if (installed !== undefined) this.commitInstall(installed);
      this.log.apply(plan);
      if (hardState !== undefined) this.hardState = hardState;
    });
  }

  /**
   * Records the snapshot meta {index, term(index), conf} and deletes log entries ≤ index,
   * in one batch. `data` is ignored: snapshot data is read from the state machine when a
   * snapshot is needed. An index at or below the current snapshot index is a no-op; one
   * beyond the last index is refused (INVALID_ARGUMENT).
   *
   * The batch is not synced: LevelDB loses only a suffix of unsynced batches in a crash,
   * so the worst case is a compaction undone (log and meta still agree), and the next
   * synced write makes it durable.
   */
  compact(index: number, conf: ConfState, _data?: Uint8Array): Promise<void> {
    return this.enqueue(async () => {
      const from = this.log.snapshotIndex();
      if (index <= from) return;
      const term = this.log.term(index);
      if (typeof term !== 'number') {
        throw new StorageError('INVALID_ARGUMENT', `compact ${index} is beyond last index ${this.log.lastIndex()}`);
      }
      const meta: SnapshotMeta = { index, term, conf };
      const ops: Op[] = [];
      for (let i = from + 1; i <= index; i++) ops.push({ type: 'del', where: 'log', key: logKey(i) });
      ops.push({ type: 'put', where: 'raft', key: RAFT_KEYS.snapshotMeta, value: encodeSnapshotMeta(meta) });
      await this.write(ops, false, 0);
      this.log.compactTo(index, term);
      this.snapMeta = meta;
      if (this.prepared !== undefined && this.prepared.meta.index < index) this.prepared = undefined;
    });
  }

  /**
   * Refuses new writes, waits for queued ones and any snapshot preparation, then closes
   * LevelDB (the whole node database: stop the registry's use of `sm` first).
   */
  close(): Promise<void> {
    if (this.closed === undefined) {
      this.closed = (async () => {
        await this.tail;
        await this.preparing;
        try {
          await this.database.db.close();
        } catch (err) {
          throw ioError(`closing ${this.database.dir}`, err);
        }
      })();
    }
    return this.closed;
  }

  // ---- internals ----

  private async planInstall(snapshot: Snapshot, ops: Op[]): Promise<void> {
    const { meta } = snapshot;
    if (meta.index <= this.snapMeta.index) {
      throw new StorageError(
        'SNAPSHOT_OUT_OF_DATE',
        `snapshot ${meta.index} is not newer than the current snapshot ${this.snapMeta.index}`,
      );
    }
    const pairs = decodeSnapshotData(snapshot.data);
    const { applied } = positionOf(pairs);
    if (applied !== undefined && (applied.index !== meta.index || applied.term !== meta.term)) {
      throw new StorageError(
        'CORRUPT_SNAPSHOT',
        `snapshot meta says index ${meta.index} term ${meta.term}, its data was applied to index ${applied.index} term ${applied.term}`,
      );
    }
    let smKeys: Uint8Array[];
    try {
      smKeys = await this.database.sm.keys().all();
    } catch (err) {
      throw ioError('listing the state machine keys to replace', err);
    }
    for (const key of smKeys) ops.push({ type: 'del', where: 'sm', key });
    for (const [key, value] of pairs) ops.push({ type: 'put', where: 'sm', key, value });
    for (let i = this.log.firstIndex(); i <= this.log.lastIndex(); i++) {
      ops.push({ type: 'del', where: 'log', key: logKey(i) });
    }
    ops.push({ type: 'put', where: 'raft', key: RAFT_KEYS.snapshotMeta, value: encodeSnapshotMeta(meta) });
  }

  private commitInstall(snapshot: Snapshot): void {
    this.log.reset(snapshot.meta.index, snapshot.meta.term);
    this.snapMeta = snapshot.meta;
    this.prepared = snapshot;
  }

  private enqueue(fn: () => Promise<void>): Promise<void> {
    if (this.closed !== undefined) return Promise.reject(new StorageError('CLOSED', 'storage is closed'));
    const run = this.tail.then(() => {
      if (this.failure !== undefined) throw this.failure;
      return fn();
    });
    // The caller gets `run` and its rejection; the queue only needs to know it settled.
    this.tail = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }

  private async write(ops: readonly Op[], sync: boolean, entries: number): Promise<void> {
    const { db, log, raft, sm } = this.database;
    try {
      const batch = db.batch();
      for (const op of ops) {
        if (op.where === 'raft') batch.put(op.key, op.value, { sublevel: raft });
        else if (op.type === 'put') batch.put(op.key, op.value, { sublevel: op.where === 'log' ? log : sm });
        else batch.del(op.key, { sublevel: op.where === 'log' ? log : sm });
      }
      await batch.write({ sync });
    } catch (err) {
      const cause = ioError('writing a batch', err);
      this.failure = new StorageError(
        'FAILED',
        `a storage write failed (${cause.message}); what is on disk is uncertain, restart the node`,
        { cause },
      );
      throw cause;
    }
    this.counters.batches++;
    if (sync) this.counters.syncs++;
    this.counters.entriesWritten += entries;
  }

  private startPreparing(): void {
    if (this.preparing !== undefined || this.closed !== undefined) return;
    const compaction = this.snapMeta;
    this.preparing = readStateMachine(this.database.sm)
      .then(({ data, position }) => {
        const meta = metaFor(position, compaction);
        if (meta.index < compaction.index) {
          throw new StorageError(
            'INVALID_STATE_MACHINE',
            `the state machine is applied to ${meta.index}, behind the compaction index ${compaction.index}`,
          );
        }
        if (this.prepared === undefined || this.prepared.meta.index <= meta.index) this.prepared = { meta, data };
        this.snapshotError = undefined;
      })
      .catch((err: unknown) => {
        const e = err instanceof StorageError ? err : ioError('preparing a snapshot', err);
        this.snapshotError = e;
        const report = this.options.onSnapshotError;
        // Outside this promise chain: a throwing callback surfaces instead of vanishing.
        if (report !== undefined) queueMicrotask(() => report(e));
      })
      .finally(() => {
        this.preparing = undefined;
      });
  }
}
