/**
 * A deterministic simulator for the Raft core: seeded randomness, a virtual clock, a
 * faulty network, disks that lose unsynced writes on crash, paused nodes, and clients
 * that propose writes and linearizable reads. After every event it checks Raft's
 * safety properties and throws {@link InvariantViolation} on the first breach.
 *
 * A test kit: our own tests drive it with fast-check, and so can anyone embedding the
 * core.
 */
import type { ConfChange, ConfState, Entry, Message, NodeId, ReadState, SoftState } from '../messages.js';
import { SeededRandom } from '../rand.js';
import type { LogView } from './checker.js';
import { bytesKey, durableLog, InvariantViolation, SafetyChecker } from './checker.js';
import { EventQueue } from './event-queue.js';
import type { LinkFaults } from './network.js';
import { SimNetwork } from './network.js';
import type { SimHost, SimNodeOptions } from './node.js';
import { decodeCommand, encodeCommand, SimNode } from './node.js';

export { InvariantViolation };

export interface SimulatorOptions extends Partial<SimNodeOptions> {
  readonly seed: number;
  /** Every node id that may ever take part; the first `voters` start as the cluster. */
  readonly nodes: readonly NodeId[];
  readonly voters: number;
  /** Check log matching across all nodes every this many events (it is O(log length)). */
  readonly fullCheckEvery?: number;
}

interface Proposal {
  readonly id: number;
  readonly node: NodeId;
  readonly index: number;
  readonly term: number;
  readonly invokedAt: number;
  ackedAt: number | null;
}

interface PendingRead {
  readonly id: number;
  readonly node: NodeId;
  readonly invokedAt: number;
  /** Highest log index of a write acknowledged before this read began. */
  readonly mustSee: number;
  readIndex: number | null;
  servedAt: number | null;
}

export interface SimStats {
  readonly time: number;
  readonly events: number;
  readonly proposed: number;
  readonly acked: number;
  readonly readsServed: number;
  readonly leaderChanges: number;
  readonly snapshotsInstalled: number;
  readonly maxTerm: number;
}

export class Simulator implements SimHost {
  readonly random: SeededRandom;
  readonly queue = new EventQueue();
  readonly network: SimNetwork;
  readonly nodes = new Map<NodeId, SimNode>();
  private readonly opts: SimNodeOptions;
  private readonly fullCheckEvery: number;

  /** Raft's safety properties over everything the hosts do (shared with the other harnesses). */
  readonly checker = new SafetyChecker();
  private readonly proposals = new Map<number, Proposal>();
  private readonly proposalByIndexTerm = new Map<string, Proposal>();
  private readonly reads = new Map<number, PendingRead>();
  private nextId = 1;
  private maxAckedIndex = 0;
  private events = 0;
  private leaderChanges = 0;
  private snapshotsInstalled = 0;
  private readsServed = 0;
  private ackedCount = 0;
  private maxTerm = 0;
  private readonly everStarted = new Set<NodeId>();

  constructor(options: SimulatorOptions) {
    this.random = new SeededRandom(options.seed);
    this.network = new SimNetwork(this.random);
    this.opts = {
      electionTick: options.electionTick ?? 10,
      heartbeatTick: options.heartbeatTick ?? 1,
      tickMs: options.tickMs ?? 10,
      diskMs: options.diskMs ?? 2,
      compactEvery: options.compactEvery ?? 50,
      snapshotChunkBytes: options.snapshotChunkBytes ?? 256,
      maxMessageBytes: options.maxMessageBytes ?? 4096,
    };
    this.fullCheckEvery = options.fullCheckEvery ?? 200;
    const voters = options.nodes.slice(0, options.voters);
    for (const id of options.nodes) {
      const node = new SimNode(
        id,
        voters.includes(id) ? voters : null,
        this,
        new SeededRandom(this.random.next()),
        this.opts,
      );
      this.nodes.set(id, node);
      if (voters.includes(id)) {
        node.start();
        this.everStarted.add(id);
      }
    }
  }

  // ---- SimHost ---------------------------------------------------------------------

  now(): number {
    return this.queue.now;
  }

  schedule(delay: number, run: () => void): void {
    this.queue.schedule(delay, run);
  }

  send(from: NodeId, messages: readonly Message[]): void {
    for (const m of messages) {
      for (const delay of this.network.deliveries(from, m.to)) {
        this.queue.schedule(delay, () => this.nodes.get(m.to)?.deliver(m));
      }
    }
  }

  beforeApply(node: SimNode, e: Entry): void {
    this.checker.checkApplyOrder(node.id, e.index, node.sm.applied);
  }

  onApply(node: SimNode, e: Entry): void {
    this.checker.onApplied(
      node.id,
      { index: e.index, term: e.term, type: e.type, data: bytesKey(e.data) },
      node.raw?.softState().term ?? 0,
    );
    const c = e.type === 'normal' ? decodeCommand(e.data) : null;
    if (c) {
      const p = this.proposals.get(c.id);
      if (p && p.node === node.id && p.ackedAt === null && p.index === e.index) {
        p.ackedAt = this.now();
        this.ackedCount++;
        if (e.index > this.maxAckedIndex) this.maxAckedIndex = e.index;
      }
    }
    this.serveReads(node);
  }

  onSnapshotRestored(node: SimNode, index: number, term: number, applied: number): void {
    this.snapshotsInstalled++;
    this.checker.onSnapshotInstalled(node.id, index, term, applied);
    this.serveReads(node);
  }

  onReadState(node: SimNode, rs: ReadState): void {
    const id = Number(new TextDecoder().decode(rs.context));
    const read = this.reads.get(id);
    if (!read || read.node !== node.id || read.readIndex !== null) return;
    // Linearizability of reads: the read point covers every write acknowledged before the read began.
    if (rs.index < read.mustSee) {
      throw new InvariantViolation(
        'read index',
        `${node.id} read ${id} got index ${rs.index} but a write at ${read.mustSee} was acknowledged before it began`,
      );
    }
    read.readIndex = rs.index;
    this.serveReads(node);
  }

  onSoftState(node: SimNode, soft: SoftState): void {
    if (soft.term > this.maxTerm) this.maxTerm = soft.term;
    if (soft.role !== 'leader') return;
    const raw = node.raw;
    if (!raw) return;
    const known = this.checker.leaders.size;
    this.checker.onLeader(node.id, soft.term, (i) => raw.termAt(i));
    if (this.checker.leaders.size > known) this.leaderChanges++;
  }

  onConfApplied(_node: SimNode, _conf: ConfState): void {}

  private serveReads(node: SimNode): void {
    for (const read of this.reads.values()) {
      if (read.node !== node.id || read.readIndex === null || read.servedAt !== null) continue;
      if (node.sm.applied >= read.readIndex) {
        read.servedAt = this.now();
        this.readsServed++;
        this.reads.delete(read.id);
      }
    }
  }

  // ---- invariants ------------------------------------------------------------------

  /** §5.3 log matching over every pair of durable logs: same (index, term) ⇒ same prefix. */
  checkLogMatching(): void {
    const logs: LogView[] = [];
    for (const n of this.nodes.values()) {
      const log = durableLog(n.id, n.storage);
      if (log) logs.push(log);
    }
    this.checker.checkLogMatching(logs);
  }

  // ---- driving ---------------------------------------------------------------------

  /** Runs events until virtual time `ms` from now has passed. */
  runFor(ms: number): void {
    const until = this.now() + ms;
    while (this.queue.runNext(until)) {
      this.events++;
      if (this.events % this.fullCheckEvery === 0) this.checkLogMatching();
    }
    this.queue.now = until;
  }

  /** Runs until `done()` holds or `ms` passes; returns whether it held. */
  runUntil(done: () => boolean, ms: number): boolean {
    const until = this.now() + ms;
    while (!done()) {
      if (!this.queue.runNext(until)) {
        this.queue.now = until;
        return done();
      }
      this.events++;
      if (this.events % this.fullCheckEvery === 0) this.checkLogMatching();
    }
    return true;
  }

  leader(): SimNode | null {
    let best: SimNode | null = null;
    for (const n of this.nodes.values()) {
      if (!n.isLeader()) continue;
      if (!best || n.raw!.status().hardState.term > best.raw!.status().hardState.term) best = n;
    }
    return best;
  }

  liveNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.up);
  }

  /** A client write on `node` (or the current leader). Returns the proposal id, or null if refused. */
  propose(nodeId?: NodeId): number | null {
    const node = nodeId ? this.nodes.get(nodeId) : this.leader();
    if (!node?.raw || node.paused) return null;
    const id = this.nextId++;
    const res = node.raw.propose(encodeCommand({ id, key: `k${id % 7}`, value: id }));
    if (!res.ok) return null;
    const p: Proposal = {
      id,
      node: node.id,
      index: res.value.lastIndex,
      term: res.value.term,
      invokedAt: this.now(),
      ackedAt: null,
    };
    this.proposals.set(id, p);
    this.proposalByIndexTerm.set(`${p.index}/${p.term}`, p);
    node.process();
    return id;
  }

  /** A linearizable read on `node`. Returns the read id, or null if refused at once. */
  read(nodeId: NodeId): number | null {
    const node = this.nodes.get(nodeId);
    if (!node?.raw || node.paused) return null;
    const id = this.nextId++;
    const res = node.raw.readIndex(new TextEncoder().encode(String(id)));
    if (!res.ok) return null;
    this.reads.set(id, {
      id,
      node: node.id,
      invokedAt: this.now(),
      mustSee: this.maxAckedIndex,
      readIndex: null,
      servedAt: null,
    });
    node.process();
    return id;
  }

  transfer(to: NodeId): boolean {
    const l = this.leader();
    if (!l?.raw) return false;
    const ok = l.raw.transferLeadership(to).ok;
    l.process();
    return ok;
  }

  confChange(cc: ConfChange): boolean {
    const l = this.leader();
    if (!l?.raw) return false;
    const res = l.raw.proposeConfChange(cc);
    if (!res.ok) return false;
    // A node joining starts its process now, empty; it learns the cluster from the log or a snapshot.
    if (cc.type !== 'removeNode' && !this.everStarted.has(cc.node)) {
      this.nodes.get(cc.node)?.start();
      this.everStarted.add(cc.node);
    }
    l.process();
    return true;
  }

  crash(id: NodeId): void {
    this.nodes.get(id)?.crash();
  }

  restart(id: NodeId): void {
    const n = this.nodes.get(id);
    // Only a node that was started before has a process to restart.
    if (!n || n.up || n.removed || !this.everStarted.has(id)) return;
    n.start();
  }

  setLinkFaults(f: LinkFaults): void {
    this.network.setFaults(f);
  }

  /** Heal everything: network, paused and crashed nodes (except removed ones). */
  healAll(): void {
    this.network.heal();
    for (const n of this.nodes.values()) {
      n.resume();
      if (!n.up && !n.removed && this.everStarted.has(n.id)) n.start();
    }
  }

  /** Is `id` a member in the configuration the latest leader (or any live node) knows? */
  isMember(id: NodeId): boolean {
    const ref = this.leader() ?? this.liveNodes()[0];
    if (!ref) return true;
    return ref.conf.voters.includes(id) || ref.conf.learners.includes(id);
  }

  /**
   * Liveness after healing: a leader within `electionTimeouts` election timeouts, a
   * fresh write commits everywhere, every earlier proposal is resolved (committed, or
   * provably never), and every acknowledged write is applied on every live member.
   */
  checkLiveness(electionTimeouts = 30): void {
    this.healAll();
    const timeout = this.opts.electionTick * this.opts.tickMs;
    if (!this.runUntil(() => this.leader() !== null, electionTimeouts * timeout)) {
      throw new InvariantViolation('liveness', `no leader ${electionTimeouts} election timeouts after healing`);
    }
    let probe: number | null = null;
    const ok = this.runUntil(() => {
      if (probe === null || this.proposals.get(probe)?.ackedAt === null) {
        const p = probe === null ? undefined : this.proposals.get(probe);
        // Re-propose if the probe's leader lost office before committing it.
        if (probe === null || (p && !this.nodes.get(p.node)?.isLeader())) probe = this.propose();
        return false;
      }
      return true;
    }, electionTimeouts * timeout);
    if (!ok || probe === null) throw new InvariantViolation('liveness', 'a write after healing was not committed');
    const final = this.proposals.get(probe)!;
    const members = this.liveNodes().filter((n) => this.isMember(n.id));
    const converged = this.runUntil(
      () => members.every((n) => n.sm.applied >= final.index),
      electionTimeouts * timeout,
    );
    if (!converged) {
      const lag = members.map((n) => `${n.id}@${n.sm.applied}`).join(' ');
      throw new InvariantViolation('liveness', `members did not apply the probe at ${final.index}: ${lag}`);
    }
    for (const p of this.proposals.values()) {
      const c = this.checker.committed.get(p.index);
      if (p.ackedAt !== null && (!c || c.term !== p.term)) {
        throw new InvariantViolation(
          'durability',
          `acknowledged write ${p.id} at ${p.index} is not in the committed log`,
        );
      }
      if (p.term === final.term && p.index <= final.index && (!c || c.term !== p.term)) {
        throw new InvariantViolation('liveness', `proposal ${p.id} of the final term is unresolved`);
      }
    }
    this.checkLogMatching();
  }

  stats(): SimStats {
    return {
      time: this.now(),
      events: this.events,
      proposed: this.proposals.size,
      acked: this.ackedCount,
      readsServed: this.readsServed,
      leaderChanges: this.leaderChanges,
      snapshotsInstalled: this.snapshotsInstalled,
      maxTerm: this.maxTerm,
    };
  }

  get options(): SimNodeOptions {
    return this.opts;
  }
}
