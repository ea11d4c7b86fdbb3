/**
 * The durable storage of a node: the Raft log, hard state and snapshot meta in an
 * append-only WAL (wal.ts), the registry's state machine in LevelDB (`sm`), with the
 * uncompacted log mirrored in memory so the core reads synchronously.
 *
 * Writes run one at a time, in call order. Each writes its WAL frame (and, for snapshot
 * installs, its LevelDB batch first) and only then changes the in-memory mirror, so reads
 * always describe what is durable. If a write fails the storage refuses every later write
 * (code FAILED): after a failed fsync nobody knows what is on disk, and the node must
 * restart from it.
 */
import type { ConfState, Entry, HardState, PiecewiseSnapshot, Snapshot, SnapshotMeta } from '../../raft/messages.js';
import type { HostStorage, StorageMiss } from '../../raft/storage.js';
import { encode } from '../codec/index.js';
import { FORMAT_VERSION, type NodeDatabase, openNodeDatabase, type RootDatabase } from './database.js';
import { ioError, StorageError } from './errors.js';
import { isNodeLocalSmKey, RAFT_KEYS } from './keys.js';
import { loadNodeState } from './load.js';
import { LogStore, planAppend } from './log-store.js';
import {
  decodeSnapshotDataInSlices,
  metaFor,
  nextTurn,
  type Pair,
  positionOf,
  readStateMachine,
  replaceOps,
  type SmOp,
} from './snapshot.js';
import { entryItem, hardStateItem, snapshotItem } from './wal/format.js';
import type { Wal, WalOptions } from './wal/wal.js';

/** Everything one Raft Ready asks to make durable; written as one WAL frame with one fdatasync. */
export interface PersistInput {
  readonly hardState?: HardState;
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot;
  /**
   * fdatasync the frame (default true). Raft's `mustSync` is false for a Ready that only
   * moves the commit index: a commit index lost in a crash is learned again from the
   * leader, and the next synced frame of the same file makes it durable too. Entries and
   * snapshots are synced regardless.
   */
  readonly sync?: boolean;
}

export interface StorageStats {
  /** Writes: WAL frames, plus LevelDB batches of snapshot installs. */
  readonly batches: number;
  /** fsyncs of any kind: WAL fdatasyncs, directory fsyncs, synced LevelDB batches. */
  readonly syncs: number;
  /** Log entries written. */
  readonly entriesWritten: number;
  /** WAL segment files now. */
  readonly segments: number;
  /** WAL segment files deleted by compaction and snapshot installs. */
  readonly segmentsDeleted: number;
}

export interface NodeStorageOptions extends WalOptions {
  /** Called when preparing a snapshot in the background fails (it is retried on the next snapshot() call). */
  readonly onSnapshotError?: (err: StorageError) => void;
  /**
   * Told about a torn last WAL write cut off at open, a snapshot install finished at open,
   * and a migration from an older storage format done at open.
   */
  readonly onRecovery?: (what: string) => void;
}

/** Where the time of the last snapshot install went, in ms (logged with the install). */
export interface InstallTimes {
  /** Decoding the snapshot data into pairs. */
  readonly decodeMs: number;
  /** Reading the state machine to find what differs (replaceOps). */
  readonly diffMs: number;
  /** Ops written: puts and deletes. */
  readonly ops: number;
  /** Filling and writing the synced LevelDB batch, and flushing the memtable. */
  readonly batchMs: number;
  /** The WAL segment that records the snapshot meta, and the old segments' deletion. */
  readonly walMs: number;
}

/** Ops put into an install's batch per event-loop turn. */
const INSTALL_OPS_PER_TURN = 20_000;

/**
 * A root-level key no sublevel can hold (sublevel keys start with `!`, 0x21): compacting
 * [it, it] touches no table, only flushes the memtable (syncStateMachine).
 */
const NO_KEYS_HERE = new Uint8Array([0xff, 0xff, 0x66, 0x6c, 0x75, 0x73, 0x68]);

/** `level` types the database for browsers too; on Node it is classic-level, which compacts ranges. */
async function flushMemtable(db: RootDatabase): Promise<void> {
  const classic = db as unknown as { compactRange?: (start: Uint8Array, end: Uint8Array) => Promise<void> };
  if (typeof classic.compactRange !== 'function')
    throw new Error('this LevelDB binding cannot compact a range (classic-level expected)');
  await classic.compactRange(NO_KEYS_HERE, NO_KEYS_HERE);
}
export class NodeStorage implements HostStorage {
  private hardState: HardState;
  private snapMeta: SnapshotMeta;
  private readonly log: LogStore;
  /**
   * The newest snapshot prepared (in pieces, SnapshotWriter) or installed; served while its
   * index ≥ the compaction index.
   */
  private prepared: Snapshot | PiecewiseSnapshot | undefined;
  /** The running preparation; it never rejects (failures land in `snapshotError`). */
  private preparing: Promise<void> | undefined;
  private snapshotError: StorageError | undefined;
  /**
   * The highest index a compaction was asked to reach (the ones in flight included): a
   * snapshot older than it is not served, since the entries its follower needs next are
   * about to go (it would need another snapshot at once).
   */
  private compactingTo = 0;
  /** The pairs of the snapshot installed last, decoded, until the registry takes them (takeInstalledPairs). */
  private installed: { readonly index: number; readonly pairs: readonly Pair[] } | undefined;
  private lastInstall: InstallTimes | undefined;
  private tail: Promise<void> = Promise.resolve();
  private failure: StorageError | undefined;
  /** Set by close(); no write is accepted after it. */
  private closed: Promise<void> | undefined;
  private counters = { batches: 0, levelSyncs: 0, entriesWritten: 0 };
  /** Compactions running (their steps outside the write queue); close() waits for them. */
  private readonly compacting = new Set<Promise<void>>();
  /** Deletions of compacted WAL segments, chained so they run oldest first. */
  private deletions: Promise<void> = Promise.resolve();

  private constructor(
    /** The node database; the registry reads and writes `database.sm`. */
    readonly database: NodeDatabase,
    private readonly wal: Wal,
    state: { hardState: HardState; snapMeta: SnapshotMeta; entries: Entry[] },
    private readonly options: NodeStorageOptions,
  ) {
    this.hardState = state.hardState;
    this.snapMeta = state.snapMeta;
    this.log = new LogStore(state.snapMeta.index, state.snapMeta.term, state.entries);
  }

  /**
   * Opens the storage of a node: the database in `dir` (opened and format-checked here)
   * or one already opened with openNodeDatabase, and the WAL in its `wal/` directory.
   * Reads and verifies the whole WAL, cuts off a torn last write, and finishes a snapshot
   * install a crash interrupted. Rejects with StorageError CORRUPT_ENTRY (naming the
   * index), CORRUPT_STATE, LOG_GAP, UNKNOWN_FORMAT, FORMAT_TOO_NEW, INVALID_STATE_MACHINE, LOCKED or IO;
   * the node must not start then.
   */
  static async open(location: string | NodeDatabase, options: NodeStorageOptions = {}): Promise<NodeStorage> {
    const database = typeof location === 'string' ? await openNodeDatabase(location) : location;
    try {
      const { wal, state, rollForward, torn } = await loadNodeState(database, options);
      const storage = new NodeStorage(database, wal, state, options);
      try {
        if (database.migratedFrom !== undefined) {
          options.onRecovery?.(
            `migrated ${database.dir} from storage format ${database.migratedFrom} to ${FORMAT_VERSION} (docs/storage.md, "Format version")`,
          );
        }
        if (torn !== undefined) {
          options.onRecovery?.(
            `cut a torn last write of ${torn.dropped} bytes off WAL segment ${torn.segment} at offset ${torn.offset}`,
          );
        }
        if (rollForward !== undefined) {
          await storage.enqueue(() => storage.finishInstall(rollForward.meta, rollForward.hardState));
          options.onRecovery?.(
            `finished installing the snapshot at index ${rollForward.meta.index} that a crash interrupted`,
          );
        }
        // Segments a crash kept from being deleted after the last compaction or install.
        await storage.enqueue(() => storage.release(storage.snapMeta.index));
        // A new WAL starts with its first segment now, so a first persist costs what any other does.
        if (wal.needsNewSegment()) await storage.enqueue(() => storage.walWrite([], true, 0));
      } catch (err) {
        await wal.close().catch(() => undefined);
        throw err;
      }
      return storage;
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
  snapshot(): Snapshot | PiecewiseSnapshot | 'unavailable' {
    const p = this.prepared;
    if (p !== undefined && p.meta.index >= Math.max(this.snapMeta.index, this.compactingTo)) return p;
    this.startPreparing();
    return 'unavailable';
  }

  /**
   * Resolves with the snapshot snapshot() will now return, preparing one if needed;
   * rejects with the StorageError if preparing fails.
   */
  async whenSnapshotReady(): Promise<Snapshot | PiecewiseSnapshot> {
    for (;;) {
      const s = this.snapshot();
      if (s !== 'unavailable') return s;
      if (this.preparing === undefined) throw new StorageError('CLOSED', 'storage is closed');
      await this.preparing;
      const err = this.snapshotError;
      if (err !== undefined) throw err;
    }
  }

  /**
   * The state machine's records (node-local keys left out) as the snapshot at `index`
   * just installed wrote them, decoded, once: the registry loads from them instead of
   * reading back what was just written. Undefined when another snapshot was installed
   * since, or they were taken already.
   */
  takeInstalledPairs(index: number): readonly Pair[] | undefined {
    const installed = this.installed;
    this.installed = undefined;
    return installed?.index === index ? installed.pairs : undefined;
  }

  /** Where the last snapshot install's time went (undefined before the first). */
  lastInstallTimes(): InstallTimes | undefined {
    return this.lastInstall;
  }

  stats(): StorageStats {
    const w = this.wal.stats();
    return {
      batches: w.frames + this.counters.batches,
      syncs: w.syncs + this.counters.levelSyncs,
      entriesWritten: this.counters.entriesWritten,
      segments: w.segments,
      segmentsDeleted: w.segmentsDeleted,
    };
  }

  /** The WAL's segment file names, oldest first (tests, tools). */
  walSegments(): string[] {
    return this.wal.segmentNames();
  }

  // ---- writes (serialized; memory changes after the write is durable) ----

  /** Appends entries (replacing any conflicting tail) in one synced frame. */
  append(entries: readonly Entry[]): Promise<void> {
    return this.persist({ entries });
  }

  /** Writes the hard state in one synced frame. */
  setHardState(hs: HardState): Promise<void> {
    return this.persist({ hardState: hs, entries: [] });
  }

  /**
   * Installs a snapshot: replaces every `sm` key with the snapshot's pairs (one synced
   * LevelDB batch), then starts a new WAL segment that records the snapshot meta and an
   * empty log, and deletes the older segments. Rejects with SNAPSHOT_OUT_OF_DATE if it is
   * not newer than the current snapshot, CORRUPT_SNAPSHOT if its data is damaged or
   * describes another index. The caller must not write to `sm` meanwhile.
   */
  applySnapshot(snapshot: Snapshot): Promise<void> {
    return this.persist({ entries: [], snapshot });
  }

  /**
   * Everything of one Raft Ready in ONE WAL frame with ONE fdatasync (unless `sync: false`),
   * in this order: install the snapshot (if any), append the entries, write the hard state.
   * Nothing is written if nothing is given. Entries and snapshots are always synced.
   */
  persist(input: PersistInput): Promise<void> {
    return this.enqueue(async () => {
      const { snapshot, entries, hardState } = input;
      if (snapshot !== undefined) {
        await this.install(snapshot, entries, hardState);
        return;
      }
      const plan = planAppend(this.log.snapshotIndex(), this.log.lastIndex(), entries);
      const items: Uint8Array[] = [];
      for (const e of plan.fresh) items.push(entryItem(e));
      if (hardState !== undefined) items.push(hardStateItem(hardState));
      if (items.length === 0) return;
      // A replaced tail needs no deletion: the reader lets later entries supersede it.
      const sync = input.sync !== false || plan.fresh.length > 0;
      await this.walWrite(items, sync, plan.fresh.length);
      this.log.apply(plan);
      if (hardState !== undefined) this.hardState = hardState;
    });
  }

  /**
   * Records the snapshot meta {index, term(index), conf} in the WAL and deletes the segments
   * that hold only entries ≤ index. `data` is ignored: snapshot data is read from the state
   * machine when a snapshot is needed. An index at or below the current snapshot index is a
   * no-op; one beyond the last index is refused (INVALID_ARGUMENT).
   *
   * The caller must have applied up to `index`: the state machine is made durable first
   * (a synced LevelDB write), since the entries it would otherwise be rebuilt from go away.
   * The WAL record itself is synced only when segments are deleted; a compaction lost in a
   * crash is merely undone (the log and its meta still agree).
   *
   * Only the middle step holds the write queue: (1) the synced LevelDB write runs beside
   * WAL writes (it touches only LevelDB, and covers every state machine batch written before
   * it, so everything applied up to `index`); (2) in the queue: the meta record, the
   * in-memory log, and the segments to go (an fdatasync of the WAL first, only if any go);
   * (3) the segment files are deleted beside later writes, oldest first, one compaction's
   * after another's. A crash between any two steps leaves what a crash in the old all-in-
   * the-queue order left: an undone compaction, or old segments deleted at the next open.
   * One compaction at a time is the caller's to keep (the Ready loop does).
   */
  compact(index: number, conf: ConfState, _data?: Uint8Array): Promise<void> {
    if (this.closed !== undefined) return Promise.reject(new StorageError('CLOSED', 'storage is closed'));
    this.compactingTo = Math.max(this.compactingTo, index);
    const run = (async () => {
      if (index <= this.log.snapshotIndex()) return;
      if (this.failure !== undefined) throw this.failure;
      await this.syncStateMachine();
      let detached: string[] = [];
      await this.enqueue(async () => {
        if (index <= this.log.snapshotIndex()) return;
        const term = this.log.term(index);
        if (typeof term !== 'number') {
          throw new StorageError('INVALID_ARGUMENT', `compact ${index} is beyond last index ${this.log.lastIndex()}`);
        }
        const meta: SnapshotMeta = { index, term, conf };
        await this.walWrite([snapshotItem(meta)], false, 0);
        this.log.compactTo(index, term);
        this.snapMeta = meta;
        if (this.prepared !== undefined && this.prepared.meta.index < index) this.prepared = undefined;
        detached = await this.detach(index);
      }, true);
      await this.deleteInOrder(detached);
    })();
    this.compacting.add(run);
    void run.then(
      () => this.compacting.delete(run),
      () => this.compacting.delete(run),
    );
    return run;
  }

  /**
   * Refuses new writes, waits for queued ones and any snapshot preparation, then closes
   * the WAL (syncing what is pending) and LevelDB (the whole node database: stop the
   * registry's use of `sm` first).
   */
  close(): Promise<void> {
    if (this.closed === undefined) {
      this.closed = (async () => {
        await Promise.allSettled([...this.compacting]);
        await this.tail;
        await this.preparing;
        const walClosed = this.wal.close().then(
          () => undefined,
          (err: unknown) => ioError(`closing the WAL of ${this.database.dir}`, err),
        );
        const dbClosed = this.database.db.close().then(
          () => undefined,
          (err: unknown) => ioError(`closing ${this.database.dir}`, err),
        );
        const err = (await walClosed) ?? (await dbClosed);
        if (err !== undefined) throw err;
      })();
    }
    return this.closed;
  }

  // ---- internals ----

  /**
   * The install order makes a crash at any point recoverable: (1) the state machine
   * becomes the snapshot's, synced; (2) a new WAL segment records the snapshot meta with an
   * empty log (and this Ready's entries and hard state), synced; (3) older segments are
   * deleted. A crash after (1) leaves a state machine ahead of the log, which open() rolls
   * forward into (2) from the state machine's own reserved keys (reconcile.ts); a crash
   * after (2) leaves segments that (2) supersedes, deleted at the next open.
   */
  private async install(
    snapshot: Snapshot,
    entries: readonly Entry[],
    hardState: HardState | undefined,
  ): Promise<void> {
    this.installed = undefined;
    const startedAt = performance.now();
    const { ops, pairs, decodeMs } = await this.planInstall(snapshot);
    const diffMs = performance.now() - startedAt - decodeMs;
    const batchStartedAt = performance.now();
    const { meta } = snapshot;
    const plan = planAppend(meta.index, meta.index, entries);
    if (ops.length === 0) {
      // Nothing differs, but what the registry wrote unsynced must be durable before the
      // WAL below drops the entries it was applied from (an empty batch writes nothing).
      await this.syncStateMachine();
    } else {
      try {
        const { db, sm } = this.database;
        // One batch, so the install stays atomic; filled a slice per event-loop turn (a
        // million ops in one go held the loop for seconds), written on LevelDB's thread.
        const batch = db.batch();
        for (let i = 0; i < ops.length; i++) {
          const op = ops[i]!;
          if (op.type === 'put') batch.put(op.key, op.value, { sublevel: sm });
          else batch.del(op.key, { sublevel: sm });
          if (i % INSTALL_OPS_PER_TURN === INSTALL_OPS_PER_TURN - 1) await nextTurn();
        }
        await batch.write({ sync: true });
      } catch (err) {
        throw this.failed(ioError('writing the snapshot into the state machine', err));
      }
      this.counters.batches++;
      this.counters.levelSyncs++;
      // The diff above assumed every earlier batch: make those durable too (see syncStateMachine).
      try {
        await flushMemtable(this.database.db);
      } catch (err) {
        throw this.failed(ioError('flushing the state machine', err));
      }
    }
    const walStartedAt = performance.now();
    const items: Uint8Array[] = [];
    for (const e of plan.fresh) items.push(entryItem(e));
    if (hardState !== undefined) items.push(hardStateItem(hardState));
    await this.walWrite(items, true, plan.fresh.length, { meta, hardState: this.hardState });
    this.log.reset(meta.index, meta.term);
    this.snapMeta = meta;
    this.prepared = snapshot;
    this.installed = { index: meta.index, pairs };
    this.log.apply(plan);
    if (hardState !== undefined) this.hardState = hardState;
    await this.release(meta.index);
    const round = (ms: number) => Math.round(ms);
    this.lastInstall = {
      decodeMs: round(decodeMs),
      diffMs: round(diffMs),
      ops: ops.length,
      batchMs: round(walStartedAt - batchStartedAt),
      walMs: round(performance.now() - walStartedAt),
    };
  }

  /** Step (2) and (3) of an install whose step (1) a crash left behind (see install()). */
  private async finishInstall(meta: SnapshotMeta, hardState: HardState): Promise<void> {
    await this.walWrite([], true, 0, { meta, hardState });
    this.log.reset(meta.index, meta.term);
    this.snapMeta = meta;
    this.hardState = hardState;
    this.prepared = undefined;
    await this.release(meta.index);
  }

  private async planInstall(snapshot: Snapshot): Promise<{ ops: SmOp[]; pairs: readonly Pair[]; decodeMs: number }> {
    const { meta } = snapshot;
    if (meta.index <= this.snapMeta.index) {
      throw new StorageError(
        'SNAPSHOT_OUT_OF_DATE',
        `snapshot ${meta.index} is not newer than the current snapshot ${this.snapMeta.index}`,
      );
    }
    const decodeStartedAt = performance.now();
    const pairs = await decodeSnapshotDataInSlices(snapshot.data);
    const decodeMs = performance.now() - decodeStartedAt;
    const { applied } = positionOf(pairs);
    if (applied !== undefined && (applied.index !== meta.index || applied.term !== meta.term)) {
      throw new StorageError(
        'CORRUPT_SNAPSHOT',
        `snapshot meta says index ${meta.index} term ${meta.term}, its data was applied to index ${applied.index} term ${applied.term}`,
      );
    }
    return {
      ops: await replaceOps(this.database.sm, pairs),
      pairs: pairs.filter(([key]) => !isNodeLocalSmKey(key)),
      decodeMs,
    };
  }

  /**
   * Writes one WAL frame. With `start`, the frame opens a new segment whose header records
   * that snapshot meta and hard state with an empty log after it (a snapshot install);
   * otherwise a full active segment is rolled over, its header recording the current state.
   */
  private async walWrite(
    items: readonly Uint8Array[],
    sync: boolean,
    entries: number,
    start?: { meta: SnapshotMeta; hardState: HardState },
  ): Promise<void> {
    try {
      if (start !== undefined) {
        await this.wal.write(items, sync, {
          last: start.meta.index,
          state: [snapshotItem(start.meta), hardStateItem(start.hardState)],
        });
      } else if (this.wal.needsNewSegment()) {
        await this.wal.write(items, sync, {
          last: this.log.lastIndex(),
          state: [snapshotItem(this.snapMeta), hardStateItem(this.hardState)],
        });
      } else {
        await this.wal.write(items, sync);
      }
    } catch (err) {
      throw this.failed(ioError('writing the WAL', err));
    }
    this.counters.entriesWritten += entries;
  }

  /** Deletes the WAL segments that hold nothing beyond `index`. */
  private async release(index: number): Promise<void> {
    await this.deleteInOrder(await this.detach(index));
  }

  /** Forgets (after syncing the WAL) the segments that hold nothing beyond `index`; their names. */
  private async detach(index: number): Promise<string[]> {
    try {
      return await this.wal.detachTo(index);
    } catch (err) {
      throw this.failed(ioError('syncing the WAL before deleting compacted segments', err));
    }
  }

  /**
   * Deletes detached segments after those detached before them: deleted out of order, a
   * crash could leave a gap in the segment sequence that open() refuses (LOG_GAP). Nothing
   * more is deleted once a write has failed.
   */
  private deleteInOrder(names: readonly string[]): Promise<void> {
    if (names.length === 0) return this.deletions;
    const deleting = this.deletions.then(() => {
      if (this.failure !== undefined) throw this.failure;
      return this.wal.deleteDetached(names);
    });
    this.deletions = deleting.catch(() => undefined);
    return deleting.catch((err: unknown) => {
      throw this.failure ?? this.failed(ioError('deleting compacted WAL segments', err));
    });
  }

  /**
   * Makes every state machine batch written so far durable, before the WAL entries they
   * were applied from may go. A synced LevelDB write is not enough on its own: it fsyncs
   * only LevelDB's current log file, and when LevelDB switches memtables it closes the old
   * log without an fsync (db_impl.cc, MakeRoomForWrite), so until that memtable is flushed
   * to a table, unsynced batches in the old log can be lost in a power failure while later
   * synced ones survive. A manual compaction of a range that holds no key first flushes the
   * memtable and waits for it (the table and the MANIFEST are fsynced), and then compacts
   * nothing; the synced write covers the new log.
   */
  private async syncStateMachine(): Promise<void> {
    try {
      await this.database.db
        .batch()
        .put(RAFT_KEYS.format, encode(FORMAT_VERSION), { sublevel: this.database.raft })
        .write({ sync: true });
      await flushMemtable(this.database.db);
    } catch (err) {
      throw this.failed(ioError('syncing the state machine', err));
    }
    this.counters.batches++;
    this.counters.levelSyncs++;
  }

  /** Marks the storage failed: what is on disk is uncertain after a failed write. */
  private failed(cause: StorageError): StorageError {
    this.failure = new StorageError(
      'FAILED',
      `a storage write failed (${cause.message}); what is on disk is uncertain, restart the node`,
      { cause },
    );
    return cause;
  }

  /** Runs `fn` after every write queued before it; `whileClosing`: a compaction close() waits for. */
  private enqueue(fn: () => Promise<void>, whileClosing = false): Promise<void> {
    if (this.closed !== undefined && !whileClosing)
      return Promise.reject(new StorageError('CLOSED', 'storage is closed'));
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

  private startPreparing(): void {
    if (this.preparing !== undefined || this.closed !== undefined) return;
    const compaction = this.snapMeta;
    this.preparing = readStateMachine(this.database.sm)
      .then(({ pieces, position }) => {
        const meta = metaFor(position, compaction);
        if (meta.index < compaction.index) {
          throw new StorageError(
            'INVALID_STATE_MACHINE',
            `the state machine is applied to ${meta.index}, behind the compaction index ${compaction.index}`,
          );
        }
        if (this.prepared === undefined || this.prepared.meta.index <= meta.index)
          this.prepared = { kind: 'pieces', meta, pieces };
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
