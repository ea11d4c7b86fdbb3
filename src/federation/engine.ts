/**
 * The federation engine: one node's part in the gossip between datacenters. A pure state
 * machine over injected time, randomness and network, in the style of the Raft core:
 *
 *   tick(now)             probes, syncs and suspicion timeouts that are due
 *   receive(from, bytes)  one message from the network; authenticated, then applied
 *   send(address, bytes)  (injected) every message it wants sent; fire and forget
 *
 * and, for the host: `setLocalView` (its own cluster: members, leader, revision), `join`,
 * `snapshot`/`route`/`datacentersByRtt` (the API and forwarding), `knowledge` (what to
 * persist), `drainEvents` (what to log), `nextWakeup` (when to call `tick` again).
 *
 * The engine never reads a clock except through `Clock`, never draws randomness except from
 * `RandomSource`, and does no I/O; the same code runs in the node and in the deterministic
 * simulation (src/federation/sim). `send` must not call back into the engine synchronously:
 * queue the delivery.
 *
 * @example
 * ```ts
 * const engine = new FederationEngine({
 *   datacenter: 'dc-a', nodeId: 'n1', address: 'http://10.0.0.1:7300', secret,
 *   clock: systemClock, random: new SeededRandom(seed), send: (to, bytes) => post(to, bytes),
 *   knowledge: await loadKnowledge(), join: ['http://10.1.0.1:7300'],
 * });
 * engine.setLocalView({ members, leader: 'n1', revision: 42, term: 3 });
 * setInterval(() => engine.tick(systemClock.now()), 100);
 * // on POST /v1/federation/gossip: const r = engine.receive(req.ip, body);
 * ```
 */
import type { RandomSource } from '../../raft/rand.js';
import type { Clock } from '../node/clock.js';
import {
  type GossipTuning,
  isAddress,
  isDatacenterName,
  isMemberId,
  MAX_DATACENTERS,
  resolveTuning,
} from './config.js';
import { type GossipContext, type Peer, samePeer } from './context.js';
import { FailureDetector } from './detector.js';
import { EnvelopeSealer } from './envelope.js';
import { type Counters, EventQueue, newCounters } from './events.js';
import { LivenessTracker } from './liveness.js';
import { compareDescriptors, compareVersions, type Descriptor, makeDescriptor } from './merge.js';
import { type DatacenterEntry, encodeMessage, type Message, parseMessage } from './messages.js';
import { ReplayGuard } from './replay-guard.js';
import { AntiEntropy } from './sync.js';
import { DatacenterTable, datacenterStatus, memberKey } from './table.js';
import type {
  DatacenterSnapshot,
  DescriptorVersion,
  FederationEvent,
  FederationKnowledge,
  FederationSnapshot,
  FederationStats,
  LocalView,
  MemberInfo,
  MemberRef,
  MemberStatus,
  ReceiveResult,
  RefusalReason,
  Route,
} from './types.js';

export interface FederationOptions {
  readonly datacenter: string;
  readonly nodeId: string;
  /** This node's HTTP address as other datacenters reach it. */
  readonly address: string;
  /** `--federation-secret`, shared by every node of every datacenter. */
  readonly secret: string;
  readonly clock: Clock;
  readonly random: RandomSource;
  readonly send: (address: string, bytes: Uint8Array) => void;
  /** This node's cluster as known at start; until given, the datacenter is this node alone. */
  readonly view?: LocalView;
  /** The durable knowledge stored from a previous run. */
  readonly knowledge?: FederationKnowledge;
  /** Seed addresses of other datacenters (`--federation-join`). */
  readonly join?: readonly string[];
  /**
   * A floor for this process's incarnation, which must exceed every incarnation the node used
   * before: receivers key replay protection on it. The engine starts at the larger of this
   * and the wall clock in ms, which is enough unless the clock stepped back further than the
   * node was down; a host that stores every incarnation (`storeIncarnation`) and passes the
   * last one + 1 here is safe even then.
   */
  readonly startIncarnation?: number;
  /**
   * Makes an incarnation durable (the host writes it to its data directory); resolves true
   * once it is, false if it could not be (the host logs why). Given, the engine sends nothing
   * at an incarnation above the last one stored: messages wait (in order, at most
   * `MAX_HELD_MESSAGES`) until it is, so a restart can never reuse an incarnation that left
   * this node, whichever path raised it (a refutation, a claim about us from before a
   * restart, a leave). Absent (the simulation, tests): nothing waits.
   */
  readonly storeIncarnation?: (incarnation: number) => Promise<boolean>;
  readonly tuning?: Partial<GossipTuning>;
}

/** Members told directly of a graceful leave; gossip carries it to the rest. */
export const LEAVE_FANOUT = 64;

/** Messages waiting for their incarnation to be stored; the oldest are dropped beyond it (gossip tolerates loss). */
export const MAX_HELD_MESSAGES = 1_024;

/** Seed addresses kept per datacenter in the durable knowledge. */
const SEEDS_PER_DATACENTER = 3;
const NO_VERSION: DescriptorVersion = { term: 0, index: 0 };

export class FederationEngine {
  private readonly self: Peer;
  private readonly tuning: GossipTuning;
  private readonly clock: Clock;
  private readonly sendBytes: (address: string, bytes: Uint8Array) => void;
  private readonly table = new DatacenterTable();
  private readonly counters: Counters = newCounters();
  private readonly events: EventQueue;
  private readonly liveness: LivenessTracker;
  private readonly detector: FailureDetector;
  private readonly sync: AntiEntropy;
  private readonly sealer: EnvelopeSealer;
  private readonly replay = new ReplayGuard();
  private readonly boot: number;
  private seq = 0;
  private knowledgeKey: string;
  private knowledgeDirty = false;
  private replayPrunedAt: number;
  /** The highest version heard on another node's description of our own datacenter. */
  private ownVersionHeard: DescriptorVersion = NO_VERSION;
  /** Our cluster's id as the host last told it (undefined: not told). */
  private clusterId: string | null | undefined;
  /** Our Raft term as the host last told it. */
  private viewTerm = 0;
  private readonly storeIncarnation: ((incarnation: number) => Promise<boolean>) | undefined;
  /** The highest incarnation the host has stored (with `storeIncarnation`). */
  private storedIncarnation = 0;
  /** The incarnation being stored now, if any. */
  private storingIncarnation = 0;
  /** After a failed store, the next attempt waits for a tick at or after this time. */
  private storeRetryAt = -Infinity;
  private readonly held: { address: string; to: MemberRef | null; message: Message }[] = [];

  constructor(opts: FederationOptions) {
    if (!isDatacenterName(opts.datacenter))
      throw new RangeError(`datacenter name ${JSON.stringify(opts.datacenter)}: letters, digits and '-', at most 63`);
    if (!isMemberId(opts.nodeId)) throw new RangeError('node id must be 1-256 characters');
    if (!isAddress(opts.address)) throw new RangeError('address must be 1-512 characters');
    this.self = { datacenter: opts.datacenter, id: opts.nodeId, address: opts.address };
    this.tuning = resolveTuning(opts.tuning);
    this.clock = opts.clock;
    this.sendBytes = opts.send;
    this.sealer = new EnvelopeSealer(opts.secret);
    this.events = new EventQueue(this.tuning.maxPendingEvents, this.counters);
    this.boot = Math.max(opts.startIncarnation ?? 0, Math.floor(opts.clock.wallNow()));
    this.storeIncarnation = opts.storeIncarnation;
    this.liveness = new LivenessTracker(this.table, this.self, this.boot, this.tuning, this.events, this.counters);
    const ctx: GossipContext = {
      self: this.self,
      table: this.table,
      liveness: this.liveness,
      random: opts.random,
      tuning: this.tuning,
      counters: this.counters,
      send: (address, to, message) => this.sendMessage(address, to, message),
      observeRtt: (datacenter, ms) => this.observeRtt(datacenter, ms),
      mergeEntry: (entry, now) => this.mergeEntry(entry, now),
    };
    this.detector = new FailureDetector(ctx);
    this.sync = new AntiEntropy(ctx);

    this.table.ensure(this.self.datacenter);
    this.setLocalView(opts.view ?? { members: [], leader: null, revision: 0, term: 0 });
    for (const known of opts.knowledge?.datacenters ?? []) {
      if (!isDatacenterName(known.name) || known.name === this.self.datacenter) continue;
      this.table.ensure(known.name).seeds = known.seeds.filter(isAddress).slice(0, SEEDS_PER_DATACENTER);
    }
    for (const address of opts.join ?? []) this.join(address);
    const now = this.clock.now();
    this.replayPrunedAt = now;
    this.detector.start(now);
    this.sync.start(now);
    this.knowledgeKey = JSON.stringify(this.knowledge());
    this.events.drain(); // the starting state is not news
    this.maybeStoreIncarnation();
  }

  /**
   * Tells the engine what this node's own cluster looks like; call whenever it changes (calling
   * it again with the same content changes nothing). A change of members, addresses, roles or
   * leader gets a new version, above every version of this datacenter this node has published
   * or heard (`DescriptorVersion`), so it replaces every older description everywhere.
   */
  setLocalView(view: LocalView): void {
    for (const m of view.members) {
      if (!isMemberId(m.id) || !isAddress(m.address) || (m.role !== 'voter' && m.role !== 'learner')) {
        throw new RangeError(`local view: bad member ${JSON.stringify(m)}`);
      }
    }
    // A node not yet in its cluster's configuration is at most a learner catching up.
    const members: MemberInfo[] = view.members.some((m) => m.id === this.self.id)
      ? [...view.members]
      : [...view.members, { id: this.self.id, address: this.self.address, role: 'learner' }];
    const own = this.table.get(this.self.datacenter)!;
    this.viewTerm = view.term;
    const clusterChanged = view.clusterId !== undefined && view.clusterId !== this.clusterId;
    if (view.clusterId !== undefined) this.clusterId = view.clusterId;
    const content = makeDescriptor(NO_VERSION, view.leader, members);
    if (own.descriptor === null || content.key !== own.descriptor.key || clusterChanged) this.stampOwn(content);
    this.liveness.writeSelf();
    if (view.revision > own.revision) own.revision = view.revision;
    this.liveness.refreshStatus(own);
  }

  /** Adds a seed address of another datacenter; tried every sync round until it answers. */
  join(address: string): void {
    if (!isAddress(address)) throw new RangeError('join address must be 1-512 characters');
    if (address !== this.self.address) this.sync.join(address);
  }

  /**
   * Graceful leave (`rollcall federation leave`): this node declares itself unreachable at a
   * new incarnation and pushes its datacenter's entry to every live member it knows (at most
   * `LEAVE_FANOUT`), so the others stop routing to it at once instead of after the suspicion
   * timeout. Only this node can say it at that incarnation; when it comes back it refutes
   * the verdict with a higher one, as after any restart. The engine must not be ticked
   * afterwards (the host drops it): a tick would write this node alive again.
   */
  leave(): void {
    this.liveness.leave();
    this.maybeStoreIncarnation();
    this.sync.pushOwnEntry(LEAVE_FANOUT);
  }

  tick(now: number = this.clock.now()): void {
    this.maybeStoreIncarnation();
    this.detector.tick(now);
    this.sync.tick(now);
    this.liveness.expire(now);
    if (now - this.replayPrunedAt > this.tuning.timestampWindowMs) {
      this.replay.forgetIdle(now, 3 * this.tuning.timestampWindowMs);
      this.replayPrunedAt = now;
    }
    this.noteKnowledge();
  }

  /** The earliest monotonic time at which `tick` has something to do. */
  nextWakeup(): number {
    return Math.min(this.detector.nextWakeup(), this.sync.nextWakeup(), this.liveness.nextDeadline());
  }

  /**
   * One message from the network. `from` is the transport's idea of the source (for the
   * caller's logs and rate limits); the sender's identity comes from the authenticated
   * envelope. A refused message changes nothing but the refusal counter.
   */
  receive(_from: string, bytes: Uint8Array): ReceiveResult {
    const now = this.clock.now();
    this.counters.messagesReceived++;
    this.counters.bytesReceived += bytes.byteLength;
    const opened = this.sealer.open(bytes, this.tuning.maxMessageBytes);
    if (opened.kind === 'refused') return this.refuse(opened.reason, null);
    const h = opened.header;
    const sender: MemberRef = { datacenter: h.datacenter, id: h.id };
    if (samePeer(sender, this.self)) return this.refuse('from-self', sender);
    if (h.to !== null && !samePeer(h.to, this.self)) return this.refuse('wrong-recipient', sender);
    if (Math.abs(this.clock.wallNow() - h.ts) > this.tuning.timestampWindowMs) return this.refuse('stale', sender);
    // We know our own cluster first-hand: a stranger claiming to be one of us is lying.
    if (h.datacenter === this.self.datacenter && !this.table.get(this.self.datacenter)!.liveness.has(h.id)) {
      return this.refuse('forged-datacenter', sender);
    }
    const message = parseMessage(opened.body);
    if (message === null) return this.refuse('malformed', sender);
    const key = memberKey(h.datacenter, h.id);
    if (!this.replay.accepts(key, h.boot, h.seq)) return this.refuse('replay', sender);
    this.replay.commit(key, h.boot, h.seq, now);

    const peer: Peer = { ...sender, address: h.address };
    const r = this.table.get(h.datacenter);
    if (r?.liveness.has(h.id)) r.heard.set(h.id, now);
    // The sender vouches for itself: its current incarnation clears older accusations.
    this.liveness.hear(h.datacenter, h.id, { incarnation: h.incarnation, status: 'alive', suspectors: [] }, now);
    this.dispatch(peer, message, h.incarnation, now);
    this.maybeStoreIncarnation();
    this.noteKnowledge();
    return { kind: 'accepted', sender };
  }

  snapshot(): FederationSnapshot {
    const datacenters: DatacenterSnapshot[] = [];
    for (const name of this.table.names()) {
      const r = this.table.get(name)!;
      const local = name === this.self.datacenter;
      const members = (r.descriptor?.members ?? []).map((m) => {
        const l = r.liveness.get(m.id);
        return {
          ...m,
          status: l?.status ?? 'alive',
          incarnation: l?.incarnation ?? 0,
          lastHeard: r.heard.get(m.id) ?? null,
        };
      });
      const heard = members.map((m) => m.lastHeard).filter((t): t is number => t !== null);
      datacenters.push({
        name,
        local,
        status: datacenterStatus(r),
        leader: r.descriptor?.leader ?? null,
        revision: r.revision,
        version: r.descriptor?.version ?? NO_VERSION,
        clusterId: r.descriptor?.cluster ?? null,
        rttMs: local ? 0 : r.rttMs,
        lastHeard: heard.length > 0 ? Math.max(...heard) : null,
        members,
      });
    }
    return {
      datacenter: this.self.datacenter,
      nodeId: this.self.id,
      incarnation: this.liveness.incarnation,
      datacenters,
    };
  }

  /** Known datacenter names, nearest first (`/v1/catalog/datacenters`): local, then by RTT, then unmeasured by name. */
  datacentersByRtt(): string[] {
    const rtt = (name: string): number =>
      name === this.self.datacenter ? -1 : (this.table.get(name)!.rttMs ?? Infinity);
    return this.table.names().sort((a, b) => rtt(a) - rtt(b) || (a < b ? -1 : a > b ? 1 : 0));
  }

  /** Where to forward a request for `datacenter`, or null if it is unknown (the 400 case). */
  route(datacenter: string): Route | null {
    const r = this.table.get(datacenter);
    if (r === undefined) return null;
    const rank = (m: MemberInfo): number => {
      const s: MemberStatus = r.liveness.get(m.id)?.status ?? 'alive';
      return (s === 'alive' ? 0 : 2) + (m.id === r.descriptor?.leader ? 0 : 1);
    };
    const members = (r.descriptor?.members ?? []).filter((m) => r.liveness.get(m.id)?.status !== 'unreachable');
    return { datacenter, status: datacenterStatus(r), members: members.sort((a, b) => rank(a) - rank(b)) };
  }

  /** What the host must persist: every other datacenter and a few addresses to reach it. */
  knowledge(): FederationKnowledge {
    const datacenters = this.table
      .names()
      .filter((n) => n !== this.self.datacenter)
      .map((name) => ({ name, seeds: [...this.table.get(name)!.seeds] }));
    return { datacenters };
  }

  /** Status changes, discoveries, refutations and knowledge changes since the last call. */
  drainEvents(): FederationEvent[] {
    return this.events.drain();
  }

  stats(): FederationStats {
    return { ...this.counters, refused: { ...this.counters.refused } };
  }

  get incarnation(): number {
    return this.liveness.incarnation;
  }

  /** Seed addresses given to `join` that have not answered yet. */
  pendingJoins(): string[] {
    return this.sync.pendingJoins();
  }

  private dispatch(peer: Peer, m: Message, senderIncarnation: number, now: number): void {
    switch (m.kind) {
      case 'ping':
        return this.detector.onPing(peer, m.probe, m.you, now);
      case 'ack':
        return this.detector.onAck(peer, m.probe, m.relayed, senderIncarnation, now);
      case 'ping-req':
        return this.detector.onPingReq(peer, m.probe, m.target, now);
      case 'sync':
        return this.sync.onSync(peer, m.exchange, m.digest);
      case 'sync-reply':
        return this.sync.onSyncReply(peer, m.exchange, m.entries, m.wanted, m.revisions, now);
      case 'sync-push':
        return this.sync.onSyncPush(m.entries, now);
    }
  }

  /**
   * Another node's account of a datacenter. For our own, our cluster tells us the members and
   * leader; what we take from the entry is its version (see `noteOwnDescriptor`) and what it
   * says about our members' liveness. For others, the newer description wins, then each
   * member's liveness merges by the SWIM rules.
   *
   * The revision belongs to one description (one stamp): a newer description brings its own,
   * and an entry adds to the revision only if it carries the description we hold. So the
   * revision of a datacenter rebuilt from empty data starts again with its new description,
   * rather than staying at the old cluster's larger one forever (issue 18).
   */
  private mergeEntry(entry: DatacenterEntry, now: number): void {
    if (entry.name === this.self.datacenter) {
      this.noteOwnDescriptor(entry.descriptor);
    } else {
      let r = this.table.get(entry.name);
      if (r === undefined && this.table.size() >= MAX_DATACENTERS) return;
      const discovered = r?.descriptor == null;
      r = this.table.ensure(entry.name);
      if (r.descriptor === null || compareDescriptors(entry.descriptor, r.descriptor) > 0) {
        this.table.setDescriptor(r, entry.descriptor);
        r.revision = entry.revision;
        const seeds = entry.descriptor.members
          .map((m) => m.address)
          .sort()
          .slice(0, SEEDS_PER_DATACENTER);
        if (seeds.length > 0) r.seeds = seeds;
        this.knowledgeDirty = true;
      }
      if (discovered) this.events.push({ kind: 'datacenter-discovered', datacenter: entry.name });
    }
    const r = this.table.get(entry.name)!;
    for (const [id, l] of entry.liveness) if (r.liveness.has(id)) this.liveness.hear(entry.name, id, l, now);
    if (
      entry.revision > r.revision &&
      r.descriptor !== null &&
      compareDescriptors(entry.descriptor, r.descriptor) === 0
    )
      r.revision = entry.revision;
    this.liveness.refreshStatus(r);
  }

  /**
   * Another node's description of our own datacenter (another member's view, relayed). Its
   * version raises the floor of our next one, so our next change beats it (Lamport). If it
   * says what we say at a newer version, we take the version: the nodes of one datacenter
   * then publish the same entry, and their digests stop differing.
   *
   * If it would beat ours but is a leftover (`isLeftover`: another cluster's, or stamped by a
   * process of ours that no longer runs), we stamp our own view again above it at once, as a
   * member refutes a suspicion with a higher incarnation: only the datacenter's live members
   * speak for it, and they need not wait for their view to change (issue 18: a datacenter
   * rebuilt from empty data, its Raft term back at 1, stayed described by its old cluster).
   * Nothing else makes us restamp, so two live members whose views differ for a while do not
   * outbid each other; and a leftover cannot come back later, because the new stamp is above
   * it in the order every node uses.
   */
  private noteOwnDescriptor(heard: Descriptor): void {
    if (compareVersions(heard.version, this.ownVersionHeard) > 0) this.ownVersionHeard = heard.version;
    const own = this.table.get(this.self.datacenter)!;
    if (own.descriptor === null || compareDescriptors(heard, own.descriptor) <= 0) return;
    if (this.isLeftover(heard)) {
      this.counters.ownRestamps++;
      this.stampOwn(own.descriptor);
    } else if (heard.key === own.descriptor.key && compareVersions(heard.version, own.descriptor.version) > 0) {
      this.table.setDescriptor(own, { ...own.descriptor, version: heard.version });
    }
  }

  /**
   * Whether a description of our datacenter comes from a cluster or a process that is gone:
   *
   * - another cluster: it names a cluster id and ours is a different one (we know ours; a node
   *   of a cluster without an id, or not told its id, judges by the next rule only), or
   * - a process of ours that no longer runs: its publisher is this node in an earlier run
   *   (an earlier boot), or a member from which we have since heard a later boot.
   *
   * Both can only be decided here, by a member of the datacenter: a node elsewhere cannot tell
   * a leftover from a live member's view, so it simply takes the newer version.
   */
  private isLeftover(d: Descriptor): boolean {
    if (typeof this.clusterId === 'string' && d.cluster !== undefined && d.cluster !== this.clusterId) return true;
    const p = d.publisher;
    if (p === undefined) return false;
    // Only an earlier boot: a later one is a process started under our id since (this one is the
    // stale one), and two processes each taking the other's for a leftover would restamp for ever.
    if (p.id === this.self.id) return p.boot < this.boot;
    const boot = this.replay.bootOf(memberKey(this.self.datacenter, p.id));
    return boot !== undefined && boot > p.boot;
  }

  /** Publishes `content` (leader and members) as our datacenter's description, at a new version. */
  private stampOwn(content: Descriptor): void {
    const own = this.table.get(this.self.datacenter)!;
    const origin = {
      ...(this.clusterId !== undefined ? { cluster: this.clusterId } : {}),
      publisher: { id: this.self.id, boot: this.boot },
    };
    this.table.setDescriptor(
      own,
      makeDescriptor(this.nextOwnVersion(this.viewTerm), content.leader, content.members, origin),
    );
  }

  /**
   * The version of a changed description of our own datacenter: strictly above the one we
   * publish now and every one we heard, in both parts, and an index of at least the wall
   * clock, so that it also beats what this node published before a restart.
   */
  private nextOwnVersion(term: number): DescriptorVersion {
    const last = this.table.get(this.self.datacenter)!.descriptor?.version ?? NO_VERSION;
    const heard = this.ownVersionHeard;
    return {
      term: Math.max(term, last.term, heard.term),
      index: Math.max(last.index + 1, heard.index + 1, Math.floor(this.clock.wallNow())),
    };
  }

  private observeRtt(datacenter: string, ms: number): void {
    const r = this.table.get(datacenter);
    if (r === undefined) return;
    r.rttMs = r.rttMs === null ? ms : r.rttMs + this.tuning.rttSmoothing * (ms - r.rttMs);
  }

  private sendMessage(address: string, to: MemberRef | null, message: Message): void {
    if (this.storeIncarnation !== undefined && this.liveness.incarnation > this.storedIncarnation) {
      // Not before the incarnation it carries (in the envelope, and in our own entry) is stored.
      if (this.held.length >= MAX_HELD_MESSAGES) this.held.shift();
      this.held.push({ address, to, message });
      this.maybeStoreIncarnation();
      return;
    }
    const bytes = this.sealer.seal(
      {
        datacenter: this.self.datacenter,
        id: this.self.id,
        address: this.self.address,
        boot: this.boot,
        seq: ++this.seq,
        ts: Math.floor(this.clock.wallNow()),
        incarnation: this.liveness.incarnation,
        to,
      },
      encodeMessage(message),
    );
    this.counters.messagesSent++;
    this.counters.bytesSent += bytes.byteLength;
    this.sendBytes(address, bytes);
  }

  /**
   * Asks the host to store the current incarnation if it is above the stored one and no store
   * is under way; once stored, sends what waited for it. After a failure (the host logged it)
   * the next attempt waits a sync interval, and nothing above the stored incarnation leaves.
   */
  private maybeStoreIncarnation(): void {
    const store = this.storeIncarnation;
    const incarnation = this.liveness.incarnation;
    if (store === undefined || incarnation <= this.storedIncarnation || this.storingIncarnation !== 0) return;
    if (this.clock.now() < this.storeRetryAt) return;
    this.storingIncarnation = incarnation;
    void store(incarnation).then((stored) => {
      this.storingIncarnation = 0;
      if (!stored) {
        this.storeRetryAt = this.clock.now() + this.tuning.syncIntervalMs;
        return;
      }
      if (incarnation > this.storedIncarnation) this.storedIncarnation = incarnation;
      this.sendHeld();
    });
  }

  private sendHeld(): void {
    while (this.held.length > 0 && this.liveness.incarnation <= this.storedIncarnation) {
      const m = this.held.shift()!;
      this.sendMessage(m.address, m.to, m.message);
    }
    // Raised again meanwhile: store that one too.
    if (this.held.length > 0) this.maybeStoreIncarnation();
  }

  private refuse(reason: RefusalReason, sender: MemberRef | null): ReceiveResult {
    this.counters.refused[reason]++;
    return { kind: 'refused', reason, sender };
  }

  private noteKnowledge(): void {
    if (!this.knowledgeDirty) return;
    this.knowledgeDirty = false;
    const knowledge = this.knowledge();
    const key = JSON.stringify(knowledge);
    if (key === this.knowledgeKey) return;
    this.knowledgeKey = key;
    this.events.push({ kind: 'knowledge-changed', knowledge });
  }
}
