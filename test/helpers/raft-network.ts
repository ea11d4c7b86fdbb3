/**
 * An etcd-style in-memory network of RawNodes for the Raft core's tests.
 *
 * Every node is a RawNode over its own MemoryStorage (its "disk"). `drive(id)` runs the
 * Ready cycle exactly as rawnode.ts asks a host to: send `rd.messages`, persist the
 * snapshot, entries and hard state, send what `advance(rd)` returns, then apply the
 * snapshot and the committed entries (conf changes through `applyConfChange`, each
 * acknowledged with `appliedTo`) and keep the read states. A node with `holdApply` set
 * applies only on `completeApply`, after `advance()`, as a host whose apply lags. Messages queue in the network and `deliver()` hands them over one at
 * a time, in order, driving the receiver after each, until the network is quiet.
 *
 * Faults: per-link cuts and loss, isolation, crash (the RawNode is thrown away, the
 * storage stays), crash in the middle of a Ready (sent messages left, nothing persisted,
 * acknowledgements lost), restart from storage, random delivery order for unreliable
 * runs, and slow disks (`asyncPersist`: a node keeps stepping messages while its Ready
 * is being written). All randomness comes from one SeededRandom.
 *
 * Safety checks run on every step and throw InvariantViolation at once; they are the
 * test kit's SafetyChecker (raft/sim/checker.ts), the same the simulator runs:
 * - Election Safety: at most one leader per term (§5.2);
 * - State Machine Safety: no two nodes apply different entries at one index (§5.4.3);
 * - Leader Completeness: a new leader's log holds every entry committed before its term (§5.4);
 * - Log Matching over the durable logs, every LOG_MATCHING_EVERY delivered messages (§5.3);
 * - applying is gapless, and a node's snapshot never moves backwards.
 */

import type { Result } from '../../raft/errors.js';
import type {
  ConfState,
  Entry,
  EntryType,
  HardState,
  Message,
  NodeId,
  ReadState,
  Snapshot,
  SoftState,
} from '../../raft/messages.js';
import { SeededRandom } from '../../raft/rand.js';
import type { Ready, Status } from '../../raft/rawnode.js';
import { decodeConfChange, RawNode } from '../../raft/rawnode.js';
import type { AppliedEntry, RecordingStateMachine } from '../../raft/sim/index.js';
import {
  decodeRecording,
  durableLog,
  encodeRecording,
  LinkCuts,
  persistReady,
  recordedEntry,
  SafetyChecker,
} from '../../raft/sim/index.js';
import { MemoryStorage } from '../../raft/storage.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export const enc = (s: string): Uint8Array => encoder.encode(s);
export const dec = (b: Uint8Array): string => decoder.decode(b);

// ---- seeds ---------------------------------------------------------------------------

/** The seed of a randomized test: `SEED` from the environment, else the test's fixed default. */
export function testSeed(defaultSeed: number): number {
  const env = process.env['SEED'];
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n)) throw new Error(`SEED must be an integer, got ${env}`);
    return n;
  }
  return defaultSeed;
}

/** Seeds for a test that runs many seeded rounds: just `SEED` when set, else `count` seeds from `base`. */
export function testSeeds(base: number, count: number): number[] {
  const env = process.env['SEED'];
  if (env !== undefined && env !== '') return [testSeed(base)];
  return Array.from({ length: count }, (_, i) => base + i);
}

function escapeForVitestFilter(name: string): string {
  return name.replace(/[.*+?^${}()|[\]\\"]/g, '\\$&');
}

/** The command that replays one seed of one test. */
export function replayCommand(file: string, testName: string, seed: number): string {
  return `SEED=${seed} npx vitest run ${file} -t "${escapeForVitestFilter(testName)}"`;
}

/** Runs `fn(seed)`; on failure rethrows with the seed and the replay command in the message. */
export function withSeed(file: string, testName: string, seed: number, fn: (seed: number) => void): void {
  try {
    fn(seed);
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    const wrapped = new Error(`${e.message}\n    seed ${seed}; replay with: ${replayCommand(file, testName, seed)}`, {
      cause: e,
    });
    if (e.stack !== undefined) wrapped.stack = `${wrapped.message}\n${e.stack.split('\n').slice(1).join('\n')}`;
    throw wrapped;
  }
}

// ---- building single nodes by hand ------------------------------------------------------

/** Entries with the given terms at indexes 1, 2, ... (data "e<index>"). */
export function entriesWithTerms(terms: readonly number[], from = 1): Entry[] {
  return terms.map((term, i) => ({ index: from + i, term, type: 'normal' as EntryType, data: enc(`e${from + i}`) }));
}

export interface RawNodeOptions {
  readonly electionTick?: number;
  readonly heartbeatTick?: number;
  readonly preVote?: boolean;
  readonly checkQuorum?: boolean;
  readonly snapshotChunkBytes?: number;
  readonly maxMessageBytes?: number;
  readonly maxInflightMessages?: number;
  readonly maxCommittedBytesPerReady?: number;
}

export interface StorageSetup {
  readonly voters: readonly NodeId[];
  readonly learners?: readonly NodeId[];
  /** Terms of entries 1, 2, ... already durable. */
  readonly terms?: readonly number[];
  readonly hardState?: HardState;
}

export function makeStorage(setup: StorageSetup): MemoryStorage {
  const s = new MemoryStorage({ voters: [...setup.voters], learners: [...(setup.learners ?? [])] });
  if (setup.terms && setup.terms.length > 0) s.append(entriesWithTerms(setup.terms));
  if (setup.hardState) s.setHardState(setup.hardState);
  return s;
}

export function makeRawNode(
  id: NodeId,
  storage: MemoryStorage,
  seed: number,
  opts: RawNodeOptions = {},
  applied?: number,
): RawNode {
  return new RawNode({
    id,
    storage,
    electionTick: opts.electionTick ?? 10,
    heartbeatTick: opts.heartbeatTick ?? 1,
    random: new SeededRandom(seed),
    preVote: opts.preVote ?? true,
    checkQuorum: opts.checkQuorum ?? true,
    ...(opts.snapshotChunkBytes !== undefined ? { snapshotChunkBytes: opts.snapshotChunkBytes } : {}),
    ...(opts.maxMessageBytes !== undefined ? { maxMessageBytes: opts.maxMessageBytes } : {}),
    ...(opts.maxInflightMessages !== undefined ? { maxInflightMessages: opts.maxInflightMessages } : {}),
    ...(opts.maxCommittedBytesPerReady !== undefined
      ? { maxCommittedBytesPerReady: opts.maxCommittedBytesPerReady }
      : {}),
    ...(applied !== undefined ? { applied } : {}),
  });
}

/** What one or more Ready cycles of a lone node produced, split by where the messages came from. */
export interface Flushed {
  /** `rd.messages`: allowed to leave before the write. */
  readonly messages: Message[];
  /** What `advance(rd)` returned: allowed to leave only after the write. */
  readonly acks: Message[];
  readonly readies: Ready[];
  readonly committed: Entry[];
  readonly readStates: ReadState[];
}

/**
 * Runs Ready cycles on a lone node until it has nothing more, persisting into `storage`
 * and applying conf changes. Nothing is sent: the caller inspects the messages.
 */
export function flush(raw: RawNode, storage: MemoryStorage): Flushed {
  const out: Flushed = { messages: [], acks: [], readies: [], committed: [], readStates: [] };
  for (let guard = 0; raw.hasReady(); guard++) {
    if (guard > 1000) throw new Error('flush: the node never stops producing Ready');
    const rd = raw.ready();
    out.readies.push(rd);
    out.messages.push(...rd.messages);
    persistReady(storage, rd);
    out.acks.push(...raw.advance(rd));
    for (const e of rd.committedEntries) {
      out.committed.push(e);
      if (e.type === 'conf') raw.applyConfChange(decodeConfChange(e.data));
    }
    const last = rd.committedEntries[rd.committedEntries.length - 1];
    if (last) raw.appliedTo(last.index);
    out.readStates.push(...rd.readStates);
  }
  return out;
}

/** Every message a lone node has ready to send, before and after its write. */
export function allMessages(f: Flushed): Message[] {
  return [...f.messages, ...f.acks];
}

// ---- the network -------------------------------------------------------------------------

export type { AppliedEntry };

/** The test state machine: every applied entry, in order (no-ops included). */
export type StateMachine = RecordingStateMachine;
export const encodeStateMachine = encodeRecording;
export const decodeStateMachine = decodeRecording;

/** The durable logs are compared pairwise (log matching) once per this many delivered messages. */
const LOG_MATCHING_EVERY = 500;

export class TestNode {
  raw: RawNode | null = null;
  sm: StateMachine = { applied: 0, entries: [] };
  conf: ConfState;
  readStates: ReadState[] = [];
  lastSoft: SoftState | null = null;
  /** Snapshot indexes this node installed from a leader, in order. */
  readonly installedSnapshots: number[] = [];
  /** Number of times this node was (re)started. */
  lives = 0;
  /** A Ready taken whose write has not completed yet (see Network.asyncPersist). */
  pendingWrite: Ready | null = null;
  /**
   * When set, the host applies a Ready's committed entries only on `completeApply`, after
   * `advance()`, as src/node applies its late entries: the core keeps stepping messages
   * meanwhile and no new Ready is taken.
   */
  holdApply = false;
  /** A Ready persisted and advanced whose committed entries wait for `completeApply`. */
  pendingApply: Ready | null = null;

  constructor(
    readonly id: NodeId,
    readonly storage: MemoryStorage,
  ) {
    this.conf = storage.snapshot().meta.conf;
  }

  get up(): boolean {
    return this.raw !== null;
  }

  /** The RawNode; throws when the node is down. */
  get rn(): RawNode {
    if (!this.raw) throw new Error(`node ${this.id} is down`);
    return this.raw;
  }

  status(): Status {
    return this.rn.status();
  }

  get role(): SoftState['role'] | 'down' {
    return this.raw ? this.raw.status().softState.role : 'down';
  }

  get term(): number {
    return this.raw ? this.raw.status().hardState.term : this.storage.initialState().hardState.term;
  }

  get committed(): number {
    return this.rn.status().hardState.commit;
  }

  get lastIndex(): number {
    return this.rn.status().lastIndex;
  }

  /** The terms of the entries from firstIndex to lastIndex, as this node's log holds them. */
  logTerms(): number[] {
    const st = this.rn.status();
    const out: number[] = [];
    for (let i = st.firstIndex; i <= st.lastIndex; i++) {
      const t = this.rn.termAt(i);
      out.push(typeof t === 'number' ? t : -1);
    }
    return out;
  }

  /** Data of the normal, non-empty entries applied so far. */
  appliedData(): string[] {
    return this.sm.entries.filter((e) => e.type === 'normal' && e.data !== '').map((e) => e.data);
  }
}

export interface NetworkOptions extends RawNodeOptions {
  readonly voters: readonly NodeId[];
  readonly learners?: readonly NodeId[];
  readonly seed?: number;
  /** Compact a node's log after applying once this many entries sit above its snapshot (0: never). */
  readonly compactEvery?: number;
  /** Keep a trace of every message put on the wire in `sent` (default true). */
  readonly record?: boolean;
  /** A prepared storage (a log, a hard state) for some nodes; the others start empty. */
  readonly storageFor?: (id: NodeId) => MemoryStorage | undefined;
}

interface LinkLoss {
  readonly from: NodeId | '*';
  readonly to: NodeId | '*';
  readonly prob: number;
}

export class Network {
  readonly nodes = new Map<NodeId, TestNode>();
  readonly rng: SeededRandom;
  readonly opts: NetworkOptions;
  /** Messages sent and not yet delivered, oldest first. */
  queue: Message[] = [];
  /** Every message put on the wire (when `record`), before faults are applied. */
  sent: Message[] = [];
  record: boolean;
  /**
   * When on, a node's write takes time: `drive` hands out a Ready and its messages, and
   * the node keeps stepping messages until `completeWrite` (as a host with a real disk).
   */
  asyncPersist = false;
  /** Messages delivered to a live node. */
  delivered = 0;
  /**
   * Called for each message as it is sent; returns what really goes onto the wire (drop
   * it with [], duplicate it, or hold it back to re-inject later).
   */
  intercept: ((m: Message) => readonly Message[]) | null = null;

  private readonly cuts = new LinkCuts();
  private losses: LinkLoss[] = [];
  /** Raft's safety properties, checked as the nodes step (shared with the simulator). */
  readonly checker = new SafetyChecker();

  /** The leader of each term seen so far. */
  get leaders(): ReadonlyMap<number, NodeId> {
    return this.checker.leaders;
  }

  /** Every index applied anywhere, with the entry applied there. */
  get committedLog(): ReadonlyMap<number, AppliedEntry> {
    return this.checker.committed;
  }

  get maxCommitted(): number {
    return this.checker.maxCommitted;
  }

  constructor(opts: NetworkOptions) {
    this.opts = opts;
    this.rng = new SeededRandom(opts.seed ?? 1);
    this.record = opts.record ?? true;
    const conf: ConfState = { voters: [...opts.voters], learners: [...(opts.learners ?? [])] };
    for (const id of [...conf.voters, ...conf.learners]) {
      const n = new TestNode(id, opts.storageFor?.(id) ?? new MemoryStorage(conf));
      this.nodes.set(id, n);
      this.start(n);
    }
  }

  // ---- membership of the test network ----------------------------------------------------

  /**
   * Adds a brand-new node with an empty log and starts it. `conf` is the membership the
   * host starts it with: the cluster's membership when the node was added. (The core
   * keeps the bootstrap membership only in each node's initial snapshot at index 0, which
   * is never sent, so a joiner started with an empty membership would never learn it.)
   */
  addNode(id: NodeId, conf: ConfState): TestNode {
    if (this.nodes.has(id)) throw new Error(`node ${id} exists`);
    const n = new TestNode(id, new MemoryStorage({ voters: [...conf.voters], learners: [...conf.learners] }));
    this.nodes.set(id, n);
    this.start(n);
    return n;
  }

  /** Adds a node with a storage prepared by the test (e.g. with a log), and starts it. */
  addNodeWithStorage(id: NodeId, storage: MemoryStorage): TestNode {
    const n = new TestNode(id, storage);
    this.nodes.set(id, n);
    this.start(n);
    return n;
  }

  node(id: NodeId): TestNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  ids(): NodeId[] {
    return [...this.nodes.keys()];
  }

  upIds(): NodeId[] {
    return this.ids().filter((id) => this.node(id).up);
  }

  private start(n: TestNode): void {
    const snap = n.storage.snapshot();
    n.sm = decodeStateMachine(snap.data);
    if (n.sm.applied !== snap.meta.index) n.sm = { applied: snap.meta.index, entries: n.sm.entries };
    n.conf = snap.meta.conf;
    n.readStates = [];
    n.lastSoft = null;
    n.pendingWrite = null;
    n.pendingApply = null;
    n.raw = makeRawNode(n.id, n.storage, this.rng.next(), this.opts, n.sm.applied);
    n.lives++;
    this.checkLeader(n);
  }

  // ---- faults ----------------------------------------------------------------------------

  /** Drops every message between a and b, both ways. */
  cut(a: NodeId, b: NodeId): void {
    this.cuts.cutBoth(a, b);
  }

  /** Drops messages from → to only. */
  cutOneWay(from: NodeId, to: NodeId): void {
    this.cuts.cutOneWay(from, to);
  }

  /** Cuts `id` off from every other node. */
  isolate(id: NodeId): void {
    this.cuts.isolate(id, this.nodes.keys());
  }

  /** Splits the nodes into groups that cannot talk to each other. */
  partition(...groups: readonly (readonly NodeId[])[]): void {
    this.cuts.partition(groups);
  }

  /** Loses messages from → to ('*' for any) with probability `prob`. */
  drop(from: NodeId | '*', to: NodeId | '*', prob: number): void {
    this.losses.push({ from, to, prob });
  }

  /** Heals every cut and loss (crashed nodes stay down). */
  recover(): void {
    this.cuts.heal();
    this.losses = [];
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cuts.isCut(from, to);
  }

  /** The node stops: its RawNode (and everything not durable) is gone; its storage stays. */
  crash(id: NodeId): void {
    const n = this.node(id);
    n.raw = null;
    n.pendingWrite = null; // a write in progress is lost
    n.pendingApply = null;
    n.readStates = [];
  }

  /**
   * The node crashes in the middle of a Ready: it sent `rd.messages`, then died before
   * its write finished. Nothing of the Ready is persisted and its acknowledgements never
   * leave.
   */
  crashMidReady(id: NodeId): Ready | null {
    const n = this.node(id);
    const raw = n.rn;
    let rd: Ready | null = n.pendingWrite;
    if (rd === null && raw.hasReady()) {
      rd = raw.ready();
      this.send(rd.messages);
    }
    this.crash(id);
    return rd;
  }

  /** Restarts a crashed node from its storage alone. */
  restart(id: NodeId): void {
    const n = this.node(id);
    if (n.up) throw new Error(`node ${id} is up`);
    this.start(n);
    this.drive(id);
  }

  /** Takes a snapshot of the node's state machine and compacts its log up to what it applied. */
  compact(id: NodeId): void {
    const n = this.node(id);
    n.storage.compact(n.sm.applied, n.conf, encodeStateMachine(n.sm));
  }

  // ---- the Ready cycle -----------------------------------------------------------------

  send(msgs: readonly Message[]): void {
    for (const m of msgs) {
      if (this.record) this.sent.push(m);
      const wire = this.intercept ? this.intercept(m) : [m];
      for (const w of wire) this.queue.push(w);
    }
  }

  /**
   * Does one node's whole Ready cycle, as many times as it has work. With
   * `asyncPersist` on, it only takes a Ready and sends its messages; the write (and what
   * follows it) waits for `completeWrite(id)`, while the node keeps stepping messages.
   */
  drive(id: NodeId): void {
    const n = this.node(id);
    for (let guard = 0; ; guard++) {
      const raw = n.raw;
      if (!raw || n.pendingWrite !== null || n.pendingApply !== null || !raw.hasReady()) return;
      if (guard > 10_000) throw new Error(`drive ${id}: Ready never settles`);
      const rd = raw.ready();
      if (rd.softState) n.lastSoft = rd.softState;
      this.send(rd.messages);
      n.pendingWrite = rd;
      if (this.asyncPersist) return;
      this.completeWrite(id);
    }
  }

  /** Finishes the node's outstanding Ready: persist, advance, send the acks, apply. */
  completeWrite(id: NodeId): void {
    const n = this.node(id);
    const raw = n.raw;
    const rd = n.pendingWrite;
    if (!raw || !rd) return;
    n.pendingWrite = null;
    persistReady(n.storage, rd);
    const acks = raw.advance(rd);
    this.send(acks);
    if (rd.snapshot) this.installSnapshot(n, rd.snapshot);
    if (n.holdApply && rd.committedEntries.length > 0) {
      n.pendingApply = rd;
      return;
    }
    this.finishApply(n, raw, rd);
    if (this.asyncPersist) this.drive(id);
  }

  /** Applies the committed entries of a Ready held back by `holdApply`, then drives the node on. */
  completeApply(id: NodeId): void {
    const n = this.node(id);
    const raw = n.raw;
    const rd = n.pendingApply;
    if (!raw || !rd) return;
    n.pendingApply = null;
    this.finishApply(n, raw, rd);
    this.drive(id);
  }

  private finishApply(n: TestNode, raw: RawNode, rd: Ready): void {
    for (const e of rd.committedEntries) {
      if (n.raw !== raw) return;
      this.apply(n, raw, e);
    }
    n.readStates.push(...rd.readStates);
    this.checkLeader(n);
    const every = this.opts.compactEvery ?? 0;
    if (every > 0 && n.sm.applied - n.storage.firstIndex() + 1 >= every) this.compact(n.id);
  }

  /** Switches asynchronous writes on or off; switching off finishes every outstanding write. */
  setAsyncPersist(on: boolean): void {
    this.asyncPersist = on;
    if (on) return;
    for (const id of this.ids()) {
      this.completeWrite(id);
      this.drive(id);
    }
  }

  /** Completes each outstanding write with probability `prob` (asynchronous disks finish at random). */
  completeSomeWrites(prob: number): void {
    for (const id of this.ids())
      if (this.node(id).pendingWrite !== null && this.rng.float() < prob) this.completeWrite(id);
  }

  private installSnapshot(n: TestNode, snap: Snapshot): void {
    this.checker.onSnapshotInstalled(n.id, snap.meta.index, snap.meta.term, n.sm.applied);
    const last = n.installedSnapshots[n.installedSnapshots.length - 1];
    if (last !== undefined && snap.meta.index < last)
      throw new Error(`${n.id}: snapshot index moved backward ${last} → ${snap.meta.index}`);
    n.installedSnapshots.push(snap.meta.index);
    const sm = decodeStateMachine(snap.data);
    for (const e of sm.entries) this.checker.onApplied(n.id, e, n.rn.softState().term);
    n.sm = sm;
    n.conf = snap.meta.conf;
  }

  private apply(n: TestNode, raw: RawNode, e: Entry): void {
    this.checker.checkApplyOrder(n.id, e.index, n.sm.applied);
    const applied = recordedEntry(e);
    this.checker.onApplied(n.id, applied, raw.softState().term);
    if (e.type === 'conf') n.conf = raw.applyConfChange(decodeConfChange(e.data));
    n.sm.entries.push(applied);
    n.sm.applied = e.index;
    raw.appliedTo(e.index);
  }

  /** Election Safety and Leader Completeness, checked whenever a node may have become leader. */
  private checkLeader(n: TestNode): void {
    const raw = n.raw;
    if (!raw) return;
    const soft = raw.softState();
    if (soft.role === 'leader') this.checker.onLeader(n.id, soft.term, (i) => raw.termAt(i));
  }

  /** Log Matching (§5.3) over every pair of durable logs. */
  checkLogMatching(): void {
    const logs = [];
    for (const n of this.nodes.values()) {
      const log = durableLog(n.id, n.storage);
      if (log) logs.push(log);
    }
    this.checker.checkLogMatching(logs);
  }

  // ---- delivery --------------------------------------------------------------------------

  private lost(m: Message): boolean {
    if (this.isCut(m.from, m.to)) return true;
    for (const l of this.losses) {
      if ((l.from === '*' || l.from === m.from) && (l.to === '*' || l.to === m.to) && this.rng.float() < l.prob)
        return true;
    }
    return false;
  }

  /** Hands one message to its receiver (unless lost) and drives the receiver. */
  deliverOne(m: Message): void {
    if (this.lost(m)) return;
    const n = this.nodes.get(m.to);
    if (!n?.raw) return;
    this.delivered++;
    n.raw.step(m);
    this.drive(m.to);
    if (this.delivered % LOG_MATCHING_EVERY === 0) this.checkLogMatching();
  }

  /** Delivers queued messages in order, and whatever they cause, until the network is quiet. */
  deliver(limit = 1_000_000): void {
    let count = 0;
    while (this.queue.length > 0) {
      count += this.queue.length;
      if (count > limit) throw new Error(`deliver: more than ${limit} messages; livelock?`);
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) this.deliverOne(m);
    }
  }

  /**
   * Delivers up to `count` queued messages picked at random (so they arrive out of order,
   * some much later than others); each is lost with probability `loss` and duplicated
   * with probability `dup`.
   */
  deliverRandom(count: number, loss = 0, dup = 0): void {
    for (let i = 0; i < count && this.queue.length > 0; i++) {
      const k = this.rng.int(this.queue.length);
      const m = this.queue[k]!;
      this.queue[k] = this.queue[this.queue.length - 1]!;
      this.queue.pop();
      if (loss > 0 && this.rng.float() < loss) continue;
      if (dup > 0 && this.rng.float() < dup) this.queue.push(m);
      this.deliverOne(m);
    }
  }

  /** Throws away every message in flight. */
  dropQueued(): void {
    this.queue = [];
  }

  // ---- driving ---------------------------------------------------------------------------

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) {
      const n = this.node(id);
      if (!n.raw) return;
      n.raw.tick();
      this.drive(id);
      this.deliver();
    }
  }

  /** Ticks every live node once (and delivers), `times` times. */
  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) {
      for (const n of this.nodes.values()) {
        if (!n.raw) continue;
        n.raw.tick();
        this.drive(n.id);
      }
      this.deliver();
    }
  }

  /** Ticks everyone until `pred` holds; returns the number of rounds it took. */
  tickUntil(pred: () => boolean, maxRounds: number, what = 'condition'): number {
    for (let i = 0; i <= maxRounds; i++) {
      if (pred()) return i;
      this.tickAll();
    }
    throw new Error(`${what} not reached within ${maxRounds} ticks`);
  }

  /** Makes `id` campaign at once (skipping pre-vote) and delivers. */
  campaign(id: NodeId): void {
    this.node(id).rn.campaign();
    this.drive(id);
    this.deliver();
  }

  /** Campaigns `id` and asserts it won. */
  elect(id: NodeId): void {
    this.campaign(id);
    const st = this.node(id).rn.status();
    if (st.softState.role !== 'leader')
      throw new Error(`elect(${id}): ended as ${st.softState.role} in term ${st.softState.term}`);
  }

  propose(id: NodeId, data: string): Result<{ firstIndex: number; lastIndex: number; term: number }> {
    const r = this.node(id).rn.propose(enc(data));
    this.drive(id);
    this.deliver();
    return r;
  }

  /** Proposes on `id` and throws if it was refused. */
  mustPropose(id: NodeId, data: string): number {
    const r = this.propose(id, data);
    if (!r.ok) throw new Error(`propose on ${id} refused: ${r.error.code} ${r.error.message}`);
    return r.value.lastIndex;
  }

  // ---- views -----------------------------------------------------------------------------

  /** Live nodes that consider themselves leader. */
  leadersNow(): NodeId[] {
    return this.upIds().filter((id) => this.node(id).role === 'leader');
  }

  /** The live leader with the highest term, or null. */
  leader(): NodeId | null {
    let best: NodeId | null = null;
    let bestTerm = -1;
    for (const id of this.leadersNow()) {
      const t = this.node(id).term;
      if (t > bestTerm) {
        best = id;
        bestTerm = t;
      }
    }
    return best;
  }

  /** Ticks until exactly one live leader exists among `among` (default: all live nodes) that they all know. */
  waitLeader(maxRounds = 200, among?: readonly NodeId[]): NodeId {
    const group = among ?? this.upIds();
    let found: NodeId | null = null;
    this.tickUntil(
      () => {
        const ls = group.filter((id) => this.node(id).up && this.node(id).role === 'leader');
        if (ls.length !== 1) return false;
        const l = ls[0]!;
        const term = this.node(l).term;
        const agree = group.every((id) => {
          const n = this.node(id);
          if (!n.up) return true;
          const s = n.rn.status().softState;
          return s.leader === l && s.term === term;
        });
        if (agree) found = l;
        return agree;
      },
      maxRounds,
      `a single leader among [${group.join(', ')}]`,
    );
    return found!;
  }

  /** Number of live nodes (of `among`) that have applied `index`. */
  appliedCount(index: number, among?: readonly NodeId[]): number {
    return (among ?? this.upIds()).filter((id) => this.node(id).sm.applied >= index).length;
  }

  /** Ticks until every node of `among` (default all live) applied at least `index`. */
  waitApplied(index: number, maxRounds = 200, among?: readonly NodeId[]): void {
    const group = among ?? this.upIds();
    this.tickUntil(
      () => group.every((id) => this.node(id).sm.applied >= index),
      maxRounds,
      `all of [${group.join(', ')}] applying ${index}`,
    );
  }

  /** Messages in the trace, filtered. */
  count(pred: (m: Message) => boolean): number {
    let n = 0;
    for (const m of this.sent) if (pred(m)) n++;
    return n;
  }
}

export const ids3: readonly NodeId[] = ['n1', 'n2', 'n3'];
export const ids5: readonly NodeId[] = ['n1', 'n2', 'n3', 'n4', 'n5'];
