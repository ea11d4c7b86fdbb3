/**
 * The Ready loop: the one place that drives the Raft core. Per Ready: send what may leave
 * now; persist entries and hard state in one synced write (every proposal that arrived
 * meanwhile shares that fsync: group commit); send the acknowledgements the core releases
 * only after that; apply committed entries to the registry in one atomic LevelDB batch with
 * the applied index, and tell the core (appliedTo); release reads; start a compaction of the
 * log now and then, which runs beside the loop. While the loop waits on the disk, messages
 * that may leave at once go at once (kick), so a slow fsync or apply never holds back
 * heartbeats; only a write that has not finished in `stallLimitMs` of time the event loop
 * was free to see it finish stops them (disk-waits.ts).
 */
import type { ConfChange, ConfState, Entry, Message, RawNode, Ready, Snapshot, SoftState } from '../../raft/index.js';
import { decodeConfChange } from '../../raft/index.js';
import { decode } from '../codec/index.js';
import type { Logger } from '../log/index.js';
import type { AppliedEntry, ApplyOutcome, BatchOp, Command, Registry } from '../registry/index.js';
import { MEMBER_ADDRESSES_SINCE } from '../registry/index.js';
import type { NodeDatabase, NodeStorage } from '../storage/index.js';
import type { NodeClock } from './clock.js';
import { sleep } from './clock.js';
import { DiskWaits } from './disk-waits.js';
import { NodeError } from './errors.js';
import type { PendingProposals } from './proposals.js';
import type { ReadBarriers } from './reads.js';
import { splitCommitted, startEarlyApply } from './ready-order.js';
import { SlowDiskReporter } from './slow-disk.js';
import { MEMBER_ADDRESSES_KEY, pairsStore, writeStateOps } from './state-store.js';
import { assertClusterVersionSupported } from './version-gate.js';

/** Timings a metrics exporter wants (a subset of NodeObserver). */
export interface ReadyLoopObserver {
  persisted?(seconds: number, entries: number): void;
  applied?(seconds: number, entries: number): void;
}

export interface ReadyLoopDeps {
  readonly raw: RawNode;
  readonly storage: NodeStorage;
  readonly db: NodeDatabase;
  readonly registry: Registry;
  readonly proposals: PendingProposals;
  readonly reads: ReadBarriers;
  readonly log: Logger;
  readonly clock: NodeClock;
  readonly dataDir: string;
  /** Compact the log once this many entries are applied beyond the last snapshot. */
  readonly compactEvery: number;
  /**
   * How long a write of the Ready loop (the Raft log's, or the state machine's) may be
   * outstanding, counting only time the event loop was free to see it finish, while
   * messages still leave early. Past it the node stops sending heartbeats, so that a leader
   * whose disk hangs loses office to one that can write (as it would if heartbeats only
   * left with Readies, as in etcd).
   */
  readonly stallLimitMs: number;
  /** Milliseconds the event loop was held so far, a running total (LoopBlockMeter.blockedMs). */
  loopBlockedMs(): number;
  observer(): ReadyLoopObserver;
  closed(): boolean;
  /** A persist or apply failed: memory and disk may disagree, the node must stop serving. */
  fail(err: unknown): void;
  onSoftState(soft: SoftState): void;
  send(messages: readonly Message[]): void;
  /**
   * Hands what send() queued to the kernel now, not on the transport's next turn. Called
   * before this node's own log write, which holds the event loop (encoding and the write()
   * call run on it): the leader's appends then reach the followers while it writes, not
   * after (Raft thesis §10.2.1). Everything queued by then may leave before the write: what
   * must wait for it (a follower's append and vote acknowledgements) the core holds back
   * until advance().
   */
  flushSends?(): void;
  /** A committed conf change: apply it to the core and the node; returns the configuration now in force. */
  applyConfChange(cc: ConfChange, index: number): ConfState;
  /** The configuration in force (for compaction's snapshot metadata). */
  conf(): ConfState;
  /** How far a compaction meant to reach `to` may go and still serve followers sent a snapshot (SnapshotPacer.compactionFloor). */
  compactionFloor?(to: number): number;
  /** The replicated record of the addresses members were added with (written with every conf change from cluster version 2; peer-book.ts). */
  encodedMemberAddresses(): Uint8Array;
  /** The cluster was raised to version 2: the record starts empty (peer-book.ts). */
  resetMemberAddresses(): void;
  /** An applied recordMemberAddresses: fill the record's missing members; whether it changed (peer-book.ts). */
  fillMemberAddresses(addresses: Readonly<Record<string, string>>): boolean;
  /** The state-machine version this build implements (src/registry/version.ts). */
  readonly buildVersion: number;
  /** In the same turn as the registry's apply (before the state write): see LeaderDuties.recordExpiries. */
  onAppliedInMemory(outcome: ApplyOutcome): void;
  /**
   * Once the applied entries are in the in-memory registry and their state-machine write has
   * started, before it has finished (see applyBatch): what is answered from memory.
   */
  onApplied(applied: readonly AppliedEntry[], outcome: ApplyOutcome): void;
  /** After a snapshot from the leader is installed and the registry reloaded. */
  onSnapshotInstalled(): Promise<void>;
}

export class ReadyLoop {
  private looping = false;
  /** The writes the loop waits on: what the stall limit is judged by. */
  private readonly diskWaits: DiskWaits;
  private stallReported = false;
  /** Waits for an index to be in the state machine's LevelDB (waitApplied). */
  private applyWaiters: ApplyWaiter[] = [];
  /** Waits for an index to be applied to the in-memory registry (waitAppliedInMemory). */
  private memoryWaiters: ApplyWaiter[] = [];
  /**
   * The applied index the state machine's LevelDB holds: the registry's in memory runs
   * ahead of it while an applied batch is being written (applyBatch answers from memory).
   */
  private writtenIndex: number;
  /** The state-machine write in flight, if any (whenStateWritten). */
  private stateWrite: Promise<void> | null = null;
  private readonly slowDisk = new SlowDiskReporter();
  /** A compaction runs beside the loop (one at a time): see maybeCompact. */
  private compacting = false;
  /** Test-only (fault hook): extra time each compaction and each synced write take, as a slow disk would. */
  compactDelayMs = 0;
  persistDelayMs = 0;
  /** Test-only (fault hook): extra time each state-machine write takes (a slow LevelDB write). */
  stateWriteDelayMs = 0;

  constructor(private readonly d: ReadyLoopDeps) {
    this.diskWaits = new DiskWaits(d.clock, () => d.loopBlockedMs());
    this.writtenIndex = d.registry.appliedIndex;
  }

  /** Whether a Ready or a compaction is being worked on (close waits for both). */
  get busy(): boolean {
    return this.looping || this.compacting;
  }

  /** Resolves once no Ready and no compaction is being worked on (close: nothing is left half-written). */
  async idle(): Promise<void> {
    // Looked at again in real time, not on the node's clock: the disk finishes in real time,
    // and on virtual time (ManualClock) nobody may move the clock while close() waits.
    while (this.busy) await new Promise<void>((resolve) => setTimeout(resolve, 5));
  }

  /** Something changed in the core: take the next Ready, or send what may leave now. */
  kick(): void {
    if (this.d.closed()) return;
    if (this.looping) {
      // The loop waits on the disk or the state machine: what may leave now goes now, so a
      // slow fsync, apply or compaction never holds back heartbeats (or the answers to the
      // leader's) long enough for an election. But not for ever: a node whose disk hangs
      // must let another lead (stallLimitMs). Only a write's time counts, and not while the
      // loop was held: after a long synchronous turn the write may have finished long ago,
      // its callback still queued behind this one, and a node that went silent then would
      // lose office for a pause already over (disk-waits.ts).
      const stalledMs = this.diskWaits.stalledMs();
      if (stalledMs > this.d.stallLimitMs) {
        if (!this.stallReported) {
          this.stallReported = true;
          this.d.log.error(
            { dataDir: this.d.dataDir, waitedMs: Math.round(stalledMs) },
            'disk stalled: a write has not finished; this node stops sending heartbeats so that another can lead',
          );
        }
        return;
      }
      const now = this.d.raw.takeMessages();
      if (now.length > 0) this.d.send(now);
      return;
    }
    if (!this.d.raw.hasReady()) return;
    this.looping = true;
    setImmediate(() => {
      this.loop().catch((err: unknown) => this.d.fail(err));
    });
  }

  /**
   * Resolves once this node's state machine on disk (LevelDB, not synced) holds `index`, or
   * rejects with TIMEOUT: for whatever reads the state machine's LevelDB at an applied index
   * (the corruption check's hash). The in-memory registry may be ahead: see waitAppliedInMemory.
   */
  waitApplied(index: number, timeoutMs: number): Promise<void> {
    if (this.writtenIndex >= index) return Promise.resolve();
    return this.addWaiter('applyWaiters', index, timeoutMs);
  }

  /**
   * Resolves once this node's in-memory registry has applied `index` (what reads and
   * watches are served from), or rejects with TIMEOUT; its state-machine write may still
   * be in flight. A write through a follower is answered after this (read-your-writes).
   */
  waitAppliedInMemory(index: number, timeoutMs: number): Promise<void> {
    if (this.d.registry.appliedIndex >= index) return Promise.resolve();
    return this.addWaiter('memoryWaiters', index, timeoutMs);
  }

  /**
   * Resolves once every state-machine write started so far has finished: LevelDB then holds
   * everything applied in memory before the call (a backup taken after an acknowledged write
   * includes it). Rejects if that write failed (the node then stops).
   */
  async whenStateWritten(): Promise<void> {
    // One write at a time (applyBatch awaits each before the next starts): this one covers
    // every write started before it.
    if (this.stateWrite !== null) await this.stateWrite;
  }

  private addWaiter(list: 'applyWaiters' | 'memoryWaiters', index: number, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = this.d.clock.setTimeout(() => {
        this[list] = this[list].filter((w) => w.resolve !== done);
        reject(new NodeError('TIMEOUT', `index ${index} was not applied on this node within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        timer.cancel();
        resolve();
      };
      const fail = (err: NodeError) => {
        timer.cancel();
        reject(err);
      };
      this[list].push({ index, resolve: done, reject: fail });
    });
  }

  /** Fails every wait for an index to apply (the node is closing). */
  close(err: NodeError): void {
    const waiters = [...this.applyWaiters, ...this.memoryWaiters];
    this.applyWaiters = [];
    this.memoryWaiters = [];
    for (const w of waiters) w.reject(err);
  }

  /** The slowest slow write of the recent past, for the status this node gossips. */
  slowestRecentWriteMs(): number {
    return this.slowDisk.recentMaxMs(this.d.clock.now());
  }

  private async loop(): Promise<void> {
    const { raw } = this.d;
    try {
      while (!this.d.closed() && raw.hasReady()) {
        const rd = raw.ready();
        if (rd.softState) this.d.onSoftState(rd.softState);
        this.d.send(rd.messages);
        const writes = rd.snapshot !== null || rd.entries.length > 0 || rd.hardState !== null;
        if (writes && rd.messages.length > 0) this.d.flushSends?.();
        const { early, late } = splitCommitted(rd);
        // Entries this node already holds durably are applied while this Ready's write is
        // in flight: the two touch different files, and a write's answer no longer waits
        // for an fsync that is not its own. The write starts first (the apply waits a turn
        // of the event loop, so its CPU runs while the fsync does), and the Ready advances
        // as soon as it is durable, so acknowledgements do not wait for the apply (beside a
        // write without a sync the apply starts at once: startEarlyApply). Entries in this
        // very Ready wait for its write, so the state machine never gets ahead of the local
        // log; the next Ready waits for this one's apply.
        const startedAt = this.d.clock.now();
        const persisting = writes ? this.timedPersist(rd) : undefined;
        const applying = early.length > 0 ? startEarlyApply(rd.mustSync, () => this.timedApply(early)) : undefined;
        // Its failure is taken below, after the write's; until then it must not count as unhandled.
        applying?.catch(() => undefined);
        try {
          await persisting;
        } catch (err) {
          await applying?.catch(() => undefined);
          throw err;
        }
        if (rd.snapshot) await this.installSnapshot(rd.snapshot, this.d.clock.now() - startedAt);
        this.d.send(raw.advance(rd));
        await applying;
        if (late.length > 0) await this.timedApply(late);
        for (const rs of rd.readStates) this.d.reads.onReadState(rs);
        this.maybeCompact();
      }
    } finally {
      this.looping = false;
    }
    this.kick();
  }

  private async timedPersist(rd: Ready): Promise<void> {
    const t0 = process.hrtime.bigint();
    const write = async (): Promise<void> => {
      if (this.persistDelayMs > 0 && rd.mustSync) await sleep(this.d.clock, this.persistDelayMs);
      await this.d.storage.persist({
        sync: rd.mustSync,
        entries: rd.entries,
        ...(rd.hardState ? { hardState: rd.hardState } : {}),
        ...(rd.snapshot ? { snapshot: rd.snapshot } : {}),
      });
    };
    // A snapshot install is mostly work on the loop, not a wait on the disk: it is decoded
    // and its batch built a slice per turn (4.4 s to decode 1,000,000 instances alone), so
    // the meter sees a free loop and all of it would count as a stalled write, silencing this
    // node's heartbeat answers. Only a follower installs one, and it cannot lead until the
    // install is durable (its vote waits on the persist): the stall rule guards nothing there.
    if (rd.snapshot) await write();
    else await this.onDisk(write);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    this.d.observer().persisted?.(seconds, rd.entries.length);
    const slow = this.slowDisk.observe(seconds * 1000, this.d.clock.now());
    if (slow !== null) {
      this.d.log.warn(
        { dataDir: this.d.dataDir, slowWrites: slow.count, maxMs: slow.maxMs, lastMs: slow.lastMs },
        'slow disk: making the Raft log durable took over 500 ms (see rollcall_fsync_duration_seconds); writes through this node wait on it',
      );
    }
  }

  private async timedApply(entries: readonly Entry[]): Promise<void> {
    const t0 = process.hrtime.bigint();
    await this.apply(entries);
    this.d.observer().applied?.(Number(process.hrtime.bigint() - t0) / 1e9, entries.length);
  }

  private async installSnapshot(snapshot: Snapshot, writeMs: number): Promise<void> {
    const { registry } = this.d;
    const index = snapshot.meta.index;
    const loadStartedAt = this.d.clock.now();
    const installed = this.d.storage.takeInstalledPairs(index);
    await registry.reload(installed === undefined ? undefined : pairsStore(installed));
    // A snapshot from a cluster raised past this build: stop (a restart then refuses to start).
    assertClusterVersionSupported(registry.clusterVersion, this.d.buildVersion);
    const loadMs = this.d.clock.now() - loadStartedAt;
    await this.d.onSnapshotInstalled();
    this.d.proposals.onSnapshot(index);
    this.d.log.info(
      {
        index,
        revision: registry.revision,
        bytes: snapshot.data.byteLength,
        writeMs: Math.round(writeMs),
        ...this.d.storage.lastInstallTimes(),
        loadMs: Math.round(loadMs),
      },
      'installed a snapshot from the leader',
    );
    // The install wrote the state machine (persist) and the registry reloaded from it.
    this.afterApplyInMemory();
    this.afterStateWritten(registry.appliedIndex);
  }

  /**
   * Applies committed entries in batches that end at each setClusterVersion, so every conf
   * change in a batch is applied at one cluster version, the one the batch starts at: what
   * the member-address record does depends on it, and replicas may batch differently.
   */
  private async apply(entries: readonly Entry[]): Promise<void> {
    let from = 0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.type === 'conf' || e.data.byteLength === 0 || !isSetClusterVersion(e.data)) continue;
      await this.applyBatch(entries.slice(from, i + 1));
      if (this.d.closed()) return;
      from = i + 1;
    }
    if (from < entries.length) await this.applyBatch(from === 0 ? entries : entries.slice(from));
  }

  private async applyBatch(entries: readonly Entry[]): Promise<void> {
    const { raw, registry } = this.d;
    const versionBefore = registry.clusterVersion;
    const applied: AppliedEntry[] = [];
    for (const e of entries) {
      if (e.index <= registry.appliedIndex) continue; // already in the state machine (restart)
      if (e.type === 'conf') {
        const conf = this.d.applyConfChange(decodeConfChange(e.data), e.index);
        applied.push({ index: e.index, term: e.term, command: null, conf });
      } else if (e.data.byteLength === 0) {
        applied.push({ index: e.index, term: e.term, command: null });
      } else {
        applied.push({ index: e.index, term: e.term, command: decode<Command>(e.data) });
      }
    }
    const last = entries[entries.length - 1];
    if (applied.length === 0) {
      if (last) raw.appliedTo(last.index);
      return;
    }
    const outcome = registry.applyBatch(applied);
    // The cluster was raised past what this build implements (it joined or restarted too
    // old, or a test flag lowered it): applying on would diverge, so stop before writing.
    assertClusterVersionSupported(registry.clusterVersion, this.d.buildVersion);
    this.d.onAppliedInMemory(outcome);
    const ops: BatchOp[] = outcome.ops;
    // The addresses members were added with are replicated state: a node restored from a
    // snapshot needs those of members added after its flags were written. Only those: the
    // addresses a node dials the others at are its own (peer-book.ts). Written from cluster
    // version 2 (version.ts); the entry that raises the cluster to 2 starts the record empty
    // on every replica, since what each kept in memory before depends on when it restarted.
    // From version 5 the leader fills in members the record lacks (recordMemberAddresses;
    // the registry's gate refused it below, as older builds do, so this runs on every replica or none).
    let filled = false;
    for (const a of applied)
      if (a.command?.type === 'recordMemberAddresses' && outcome.results.get(a.index)?.ok === true)
        filled = this.d.fillMemberAddresses(a.command.addresses) || filled;
    if (versionBefore < MEMBER_ADDRESSES_SINCE && registry.clusterVersion >= MEMBER_ADDRESSES_SINCE) {
      this.d.resetMemberAddresses();
      ops.push({ type: 'put', key: MEMBER_ADDRESSES_KEY, value: this.d.encodedMemberAddresses() });
    } else if (versionBefore >= MEMBER_ADDRESSES_SINCE && (filled || applied.some((a) => a.conf !== undefined))) {
      ops.push({ type: 'put', key: MEMBER_ADDRESSES_KEY, value: this.d.encodedMemberAddresses() });
    }
    // The state machine's write (not synced) starts now, and the entries are answered from
    // memory while it runs: they are committed, so durable in a majority's log, and a node
    // that crashes before LevelDB has them replays them from its log at restart (the log is
    // never compacted past what LevelDB holds: maybeCompact runs only after this write).
    // What reads the state machine's LevelDB waits for it: waitApplied (the corruption
    // check's hash) and whenStateWritten (a backup); a follower's snapshot is read from
    // LevelDB with the applied index stored beside the data, so it is consistent whenever taken.
    const writtenTo = registry.appliedIndex;
    const writing = this.onDisk(async () => {
      if (this.stateWriteDelayMs > 0) await sleep(this.d.clock, this.stateWriteDelayMs);
      await writeStateOps(this.d.db, ops);
    });
    const tracked = writing.then(
      () => {
        if (this.stateWrite === tracked) this.stateWrite = null;
      },
      (err: unknown) => {
        if (this.stateWrite === tracked) this.stateWrite = null;
        throw err;
      },
    );
    this.stateWrite = tracked;
    // Its failure is taken below (await writing); whenStateWritten's callers see it too.
    tracked.catch(() => undefined);
    // A batch with a membership change answers as before, after appliedTo: the next change
    // an admin sends at once is then taken, not refused as pending and retried 50 ms later.
    const answerAfterWrite = applied.some((a) => a.conf !== undefined);
    if (!answerAfterWrite) this.answer(applied, outcome);
    await writing;
    // Only now may the leader take the next membership change: it is validated against the
    // configuration these entries left (raft: conf changes counted from the host's apply).
    if (last) raw.appliedTo(last.index);
    if (answerAfterWrite) this.answer(applied, outcome);
    this.afterStateWritten(writtenTo);
  }

  /** Answers applied entries from memory and releases what waits on the in-memory registry. */
  private answer(applied: readonly AppliedEntry[], outcome: ApplyOutcome): void {
    const { registry } = this.d;
    for (const a of applied) {
      const result =
        a.conf !== undefined
          ? { ok: true as const, revision: registry.revision, changed: true }
          : outcome.results.get(a.index);
      this.d.proposals.onApplied(a.index, a.term, result, outcome.instances.get(a.index));
    }
    this.d.onApplied(applied, outcome);
    this.afterApplyInMemory();
  }

  /** A write the loop waits on: counted by the stall limit while outstanding. */
  private async onDisk(write: () => Promise<void>): Promise<void> {
    await this.diskWaits.track(write);
    if (this.stallReported && this.diskWaits.stalledMs() <= this.d.stallLimitMs) {
      this.stallReported = false;
      this.d.log.warn({ dataDir: this.d.dataDir }, 'disk stall over: writes go on');
    }
  }

  /** The registry in memory has applied more: reads and in-memory waiters go on. */
  private afterApplyInMemory(): void {
    const applied = this.d.registry.appliedIndex;
    this.d.reads.onApplied(applied);
    this.memoryWaiters = release(this.memoryWaiters, applied);
  }

  /** The state machine's LevelDB holds `index`: waiters for it go on. */
  private afterStateWritten(index: number): void {
    if (index > this.writtenIndex) this.writtenIndex = index;
    this.applyWaiters = release(this.applyWaiters, this.writtenIndex);
  }

  /**
   * Starts a compaction when enough is applied beyond the last one, and does not wait for
   * it: the loop goes on persisting and applying while the state machine is synced and old
   * WAL segments are deleted (NodeStorage.compact holds the write queue only to record the
   * new log start). Safe to run beside new entries: it compacts to an index already applied
   * (so durable in the log, and committed: never replaced), the state machine is synced
   * before the entries go, and entries after it stay.
   */
  private maybeCompact(): void {
    const { registry, storage, compactEvery } = this.d;
    if (this.compacting) return;
    // What the state machine's LevelDB holds, not the registry in memory: a restart replays
    // the log from LevelDB's applied index, so the log must keep everything after it.
    const applied = Math.min(registry.appliedIndex, this.writtenIndex);
    if (applied - storage.firstIndex() + 1 < compactEvery) return;
    // Keep a tail of entries so a briefly lagging follower (a restart, a short partition)
    // catches up from the log: a snapshot is the whole registry, and its install stalls
    // the follower (etcd keeps 5,000 entries for this).
    const keep = Math.min(5000, Math.floor(compactEvery / 2));
    // Nor past what a follower sent a snapshot needs after it (a big install outlasts the
    // tail, and it would need another), up to a bound: the log is also held in memory.
    const floor = this.d.compactionFloor?.(applied - keep) ?? applied - keep;
    const to = applied - floor <= compactEvery * MAX_HELD_COMPACTIONS ? floor : applied - keep;
    if (to < storage.firstIndex()) return;
    this.compacting = true;
    const conf = this.d.conf();
    const startedAt = this.d.clock.now();
    void (async () => {
      // The fault hook's slow compaction: it stands for a slow sync of the state machine,
      // the first step of storage.compact, which also runs beside the loop.
      if (this.compactDelayMs > 0) await sleep(this.d.clock, this.compactDelayMs);
      await storage.compact(to, conf);
      this.d.log.debug({ compactedTo: to, ms: Math.round(this.d.clock.now() - startedAt) }, 'compacted the log');
    })()
      .catch((err: unknown) => {
        // A failed sync or delete leaves the disk uncertain: stop serving (unless already stopped).
        if (!this.d.closed()) this.d.fail(err);
        else
          this.d.log.warn({ err, compactTo: to }, 'a log compaction failed while the node was closing or had stopped');
      })
      .finally(() => {
        this.compacting = false;
      });
  }
}

interface ApplyWaiter {
  readonly index: number;
  resolve(): void;
  reject(err: NodeError): void;
}

/** Resolves the waiters whose index is reached; returns the rest. */
function release(waiters: ApplyWaiter[], reached: number): ApplyWaiter[] {
  if (waiters.length === 0) return waiters;
  const rest: ApplyWaiter[] = [];
  for (const w of waiters) {
    if (w.index <= reached) w.resolve();
    else rest.push(w);
  }
  return rest;
}

/** A follower's snapshot holds back compaction by at most this many compactions' worth of entries. */
const MAX_HELD_COMPACTIONS = 20;

const SET_CLUSTER_VERSION_BYTES = Buffer.from('setClusterVersion');

/** Is this entry's command a setClusterVersion? A byte search first: every write passes here, and these are rare. */
function isSetClusterVersion(data: Uint8Array): boolean {
  if (Buffer.from(data.buffer, data.byteOffset, data.byteLength).indexOf(SET_CLUSTER_VERSION_BYTES) < 0) return false;
  try {
    const c = decode<{ type?: unknown }>(data);
    return typeof c === 'object' && c !== null && c.type === 'setClusterVersion';
  } catch {
    // Not a command this build can read: the registry's apply refuses it like any other.
    return false;
  }
}
