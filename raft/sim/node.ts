/**
 * One simulated host: a RawNode over a MemoryStorage that plays the node's disk, a
 * disk that takes virtual time to write, and a key/value state machine.
 *
 * A crash throws away everything but the storage, including a write in progress
 * (unsynced data is lost); a restart builds a new RawNode from what was durable.
 */
import { bootstrapEntries, bootstrapHardState } from '../bootstrap.js';
import { decodeConfChange } from '../confchange.js';
import type { ConfState, Entry, Message, NodeId, ReadState, SoftState } from '../messages.js';
import type { SeededRandom } from '../rand.js';
import { RawNode } from '../rawnode.js';
import { MemoryStorage } from '../storage.js';
import { persistReady } from './host.js';

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What a simulated client writes: a unique proposal id, a key and a value. */
export interface SimCommand {
  readonly id: number;
  readonly key: string;
  readonly value: number;
}

export function encodeCommand(c: SimCommand): Uint8Array {
  return encoder.encode(JSON.stringify(c));
}

export function decodeCommand(data: Uint8Array): SimCommand | null {
  if (data.byteLength === 0) return null; // the leader's no-op
  return JSON.parse(decoder.decode(data)) as SimCommand;
}

export interface SimStateMachine {
  applied: number;
  kv: Map<string, number>;
}

/** Callbacks into the simulator, which owns time, the network and the invariant checks. */
export interface SimHost {
  now(): number;
  schedule(delay: number, run: () => void): void;
  send(from: NodeId, messages: readonly Message[]): void;
  /** Checks `entry` may be applied next (the state machine has not changed yet). */
  beforeApply(node: SimNode, entry: Entry): void;
  onApply(node: SimNode, entry: Entry): void;
  /** `applied`: what the state machine had applied before the snapshot replaced it. */
  onSnapshotRestored(node: SimNode, index: number, term: number, applied: number): void;
  onReadState(node: SimNode, rs: ReadState): void;
  onSoftState(node: SimNode, soft: SoftState): void;
  onConfApplied(node: SimNode, conf: ConfState): void;
}

export interface SimNodeOptions {
  readonly electionTick: number;
  readonly heartbeatTick: number;
  readonly tickMs: number;
  readonly diskMs: number;
  readonly compactEvery: number;
  readonly snapshotChunkBytes: number;
  readonly maxMessageBytes: number;
}

export class SimNode {
  readonly storage: MemoryStorage;
  raw: RawNode | null = null;
  sm: SimStateMachine = { applied: 0, kv: new Map() };
  conf: ConfState;
  paused = false;
  /** Set when the node applied its own removal: it shuts down for good, like a real server. */
  removed = false;
  private diskBusy = false;
  /** Incremented on every crash so callbacks of an older life are ignored. */
  private epoch = 0;
  private inbox: Message[] = [];
  private lastSoft: SoftState | null = null;

  /** `initialVoters` bootstraps a founding member; a node that joins later starts empty. */
  constructor(
    readonly id: NodeId,
    initialVoters: readonly NodeId[] | null,
    private readonly host: SimHost,
    private readonly random: SeededRandom,
    private readonly opts: SimNodeOptions,
  ) {
    this.storage = new MemoryStorage();
    if (initialVoters) {
      this.storage.append(bootstrapEntries(initialVoters));
      this.storage.setHardState(bootstrapHardState(initialVoters));
    }
    this.conf = { voters: [], learners: [] };
  }

  get up(): boolean {
    return this.raw !== null;
  }

  start(): void {
    if (this.raw || this.removed) return;
    // Rebuild the state machine from the durable snapshot; the log replays the rest.
    const snap = this.storage.snapshot();
    this.sm = snap.meta.index > 0 ? decodeSnapshotData(snap.data) : { applied: 0, kv: new Map() };
    this.conf = snap.meta.conf;
    this.raw = new RawNode({
      id: this.id,
      storage: this.storage,
      electionTick: this.opts.electionTick,
      heartbeatTick: this.opts.heartbeatTick,
      random: this.random,
      applied: this.sm.applied,
      snapshotChunkBytes: this.opts.snapshotChunkBytes,
      maxMessageBytes: this.opts.maxMessageBytes,
    });
    this.lastSoft = null;
    this.diskBusy = false;
    this.inbox = [];
    const epoch = this.epoch;
    // Ticks start at a random phase so nodes do not tick in lockstep.
    this.host.schedule(1 + this.random.int(this.opts.tickMs), () => this.tickLoop(epoch));
  }

  crash(): void {
    this.raw = null;
    this.epoch++;
    this.diskBusy = false;
    this.inbox = [];
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const queued = this.inbox;
    this.inbox = [];
    for (const m of queued) this.deliver(m);
    this.process();
  }

  deliver(m: Message): void {
    if (!this.raw) return;
    if (this.paused) {
      this.inbox.push(m); // a stopped process's socket buffers keep filling
      return;
    }
    this.raw.step(m);
    this.process();
  }

  private tickLoop(epoch: number): void {
    if (epoch !== this.epoch || !this.raw) return;
    if (!this.paused) {
      this.raw.tick();
      this.process();
    }
    this.host.schedule(this.opts.tickMs, () => this.tickLoop(epoch));
  }

  /** Runs one Ready cycle if one is due and the disk is free. */
  process(): void {
    const raw = this.raw;
    if (!raw || this.paused || this.diskBusy || !raw.hasReady()) return;
    const rd = raw.ready();
    if (rd.softState) {
      this.lastSoft = rd.softState;
      this.host.onSoftState(this, rd.softState);
    }
    this.host.send(this.id, rd.messages);
    this.diskBusy = true;
    const epoch = this.epoch;
    const diskDelay = rd.mustSync || rd.entries.length > 0 || rd.snapshot ? this.opts.diskMs : 0;
    this.host.schedule(diskDelay, () => {
      if (epoch !== this.epoch || this.raw !== raw) return; // crashed meanwhile: the write is lost
      persistReady(this.storage, rd);
      if (rd.snapshot) {
        const applied = this.sm.applied;
        this.sm = decodeSnapshotData(rd.snapshot.data);
        this.conf = rd.snapshot.meta.conf;
        this.host.onSnapshotRestored(this, rd.snapshot.meta.index, rd.snapshot.meta.term, applied);
      }
      const acks = raw.advance(rd);
      this.host.send(this.id, acks);
      for (const e of rd.committedEntries) {
        if (this.raw !== raw) return; // removed while applying
        this.apply(raw, e);
      }
      for (const rs of rd.readStates) this.host.onReadState(this, rs);
      this.maybeCompact();
      this.diskBusy = false;
      this.process();
    });
  }

  private apply(raw: RawNode, e: Entry): void {
    this.host.beforeApply(this, e);
    let removedSelf = false;
    if (e.type === 'conf') {
      const cc = decodeConfChange(e.data);
      const wasMember = this.conf.voters.includes(this.id) || this.conf.learners.includes(this.id);
      this.conf = raw.applyConfChange(cc);
      removedSelf = wasMember && cc.type === 'removeNode' && cc.node === this.id;
      this.host.onConfApplied(this, this.conf);
    } else {
      const c = decodeCommand(e.data);
      if (c) this.sm.kv.set(c.key, c.value);
    }
    this.sm.applied = e.index;
    raw.appliedTo(e.index);
    this.host.onApply(this, e);
    if (removedSelf && !this.removed) {
      // Removed: linger for two election timeouts so that, as leader, this node hands
      // over and tells the remaining voters the removal is committed; then shut down.
      this.removed = true;
      const epoch = this.epoch;
      this.host.schedule(2 * this.opts.electionTick * this.opts.tickMs, () => {
        if (epoch === this.epoch) this.crash();
      });
    }
  }

  private maybeCompact(): void {
    const first = this.storage.firstIndex();
    if (this.opts.compactEvery <= 0 || this.sm.applied - first + 1 < this.opts.compactEvery) return;
    this.storage.compact(this.sm.applied, this.conf, encodeSnapshotData(this.sm));
  }

  softState(): SoftState | null {
    return this.raw ? this.lastSoft : null;
  }

  isLeader(): boolean {
    return this.raw !== null && !this.paused && this.raw.status().softState.role === 'leader';
  }
}

export function encodeSnapshotData(sm: SimStateMachine): Uint8Array {
  return encoder.encode(JSON.stringify({ applied: sm.applied, kv: [...sm.kv] }));
}

export function decodeSnapshotData(data: Uint8Array): SimStateMachine {
  const v = JSON.parse(decoder.decode(data)) as { applied: number; kv: [string, number][] };
  return { applied: v.applied, kv: new Map(v.kv) };
}
