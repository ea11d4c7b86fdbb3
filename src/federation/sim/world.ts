/**
 * An in-process federation for simulation: many FederationEngines on one virtual clock,
 * joined by a seeded lossy network (loss, per-pair latency and jitter, partitions between
 * datacenters), with nodes that can be killed and restarted from their durable knowledge
 * only. Everything random comes from the seed, so a run is a pure function of its options.
 *
 * The world also keeps the ground truth (which nodes are up, which datacenters are cut off
 * from which) and counts the verdicts engines reach against it: a member declared
 * unreachable while it is up and reachable is a false verdict.
 */
import { SeededRandom } from '../../../raft/rand.js';
import { EventQueue } from '../../../raft/sim/event-queue.js';
import type { Clock } from '../../node/clock.js';
import type { GossipTuning } from '../config.js';
import { FederationEngine } from '../engine.js';
import type { DatacenterStatus, FederationEvent, FederationKnowledge, LocalView, ReceiveResult } from '../types.js';

export interface WorldOptions {
  readonly seed: number;
  /** Probability that any one message is lost. */
  readonly loss?: number;
  /** One-way latency between datacenters, drawn once per pair from this range (ms). */
  readonly interDatacenterMs?: readonly [number, number];
  readonly intraDatacenterMs?: number;
  /** Extra uniform delay per message, 0..jitterMs (also reorders). */
  readonly jitterMs?: number;
  readonly tuning?: Partial<GossipTuning>;
  readonly secret?: string;
}

export interface SimNode {
  readonly datacenter: string;
  readonly id: string;
  readonly address: string;
  /** Null while the node is down. */
  engine: FederationEngine | null;
  /** What the node's cluster tells it (`setView`); null: every node of its datacenter, n1 the leader. */
  view: LocalView | null;
  /** What the node's cluster would have stored: the last knowledge it reported. */
  knowledge: FederationKnowledge;
  bytesSent: number;
  messagesSent: number;
  restarts: number;
  wakeToken: number;
}

export interface VerdictCounts {
  /** Member declared unreachable by an up node while the member was up and not partitioned away. */
  falseMemberVerdicts: number;
  /** Datacenter declared unreachable while one of its nodes was up and reachable. */
  falseDatacenterVerdicts: number;
  /** Suspicions of up, reachable members (harmless if refuted; shows how hard the detector works). */
  falseSuspicions: number;
  refutations: number;
}

const EPOCH_MS = Date.UTC(2026, 0, 1);
const PORT = 7300;

export class FederationWorld {
  readonly queue = new EventQueue();
  readonly nodes = new Map<string, SimNode>();
  readonly datacenters = new Map<string, SimNode[]>();
  readonly counts: VerdictCounts = {
    falseMemberVerdicts: 0,
    falseDatacenterVerdicts: 0,
    falseSuspicions: 0,
    refutations: 0,
  };
  /**
   * Messages refused as forged-datacenter because the receiver's cluster had not told it of a
   * member of its own datacenter yet (`setView`); a real node logs these at debug.
   */
  ownMemberRefusals = 0;
  /** The first false verdicts, to explain a failure. */
  readonly falseVerdictLog: string[] = [];
  /** Sees every message as it is sent (before loss): a test captures one to replay it later. */
  tap: ((from: SimNode, to: string, bytes: Uint8Array) => void) | null = null;
  readonly roundMs: number;
  private readonly net: SeededRandom;
  private readonly pairDelay = new Map<string, number>();
  private readonly cut = new Set<string>();
  private readonly loss: number;
  private readonly clock: Clock;

  constructor(readonly options: WorldOptions) {
    this.net = new SeededRandom(options.seed);
    this.loss = options.loss ?? 0;
    this.roundMs = options.tuning?.probeIntervalMs ?? 1_000;
    this.clock = { now: () => this.queue.now, wallNow: () => EPOCH_MS + this.queue.now };
  }

  get now(): number {
    return this.queue.now;
  }

  /** Adds a datacenter of `size` nodes, all started; node n1 of it joins through `joinVia`. */
  addDatacenter(name: string, size: number, joinVia: readonly string[] = []): SimNode[] {
    const nodes: SimNode[] = [];
    for (let i = 1; i <= size; i++) {
      const address = `http://${name}-n${i}:${PORT}`;
      const node: SimNode = {
        datacenter: name,
        id: `n${i}`,
        address,
        engine: null,
        view: null,
        knowledge: { datacenters: [] },
        bytesSent: 0,
        messagesSent: 0,
        restarts: 0,
        wakeToken: 0,
      };
      nodes.push(node);
      this.nodes.set(address, node);
    }
    this.datacenters.set(name, nodes);
    for (const [i, n] of nodes.entries()) this.start(n, i === 0 ? joinVia : []);
    return nodes;
  }

  /** A node's cluster view: every node of its datacenter a voter, n1 the leader. */
  view(datacenter: string): LocalView {
    const members = (this.datacenters.get(datacenter) ?? []).map((n) => ({
      id: n.id,
      address: n.address,
      role: 'voter' as const,
    }));
    return { members, leader: 'n1', revision: 1, term: 1 };
  }

  /**
   * What `node`'s cluster tells it from now on (and after a restart), as a host would pass
   * it on: e.g. members appearing one by one as their status reports arrive.
   */
  setView(node: SimNode, view: LocalView): void {
    node.view = view;
    node.engine?.setLocalView(view);
  }

  /** Starts (or restarts) a node from its durable knowledge only. */
  start(node: SimNode, join: readonly string[] = []): void {
    const rand = new SeededRandom(mix(this.options.seed, node.address, node.restarts));
    node.engine = new FederationEngine({
      datacenter: node.datacenter,
      nodeId: node.id,
      address: node.address,
      secret: this.options.secret ?? 'sim-secret',
      clock: this.clock,
      random: rand,
      send: (to, bytes) => this.send(node, to, bytes),
      view: node.view ?? this.view(node.datacenter),
      knowledge: node.knowledge,
      join,
      ...(this.options.tuning ? { tuning: this.options.tuning } : {}),
    });
    this.schedule(node);
  }

  kill(node: SimNode): void {
    node.engine = null;
    node.restarts++;
    node.wakeToken++;
  }

  /**
   * The node's data directory wiped: it forgets the federation. Its cluster (a new one, after a
   * rebuild) is the caller's to set with `view` before it starts again.
   */
  wipe(node: SimNode): void {
    node.knowledge = { datacenters: [] };
  }

  /** Hands `bytes` to the node at `to` at once, as if from `from` (a replayed capture); its answer, or null if it is down. */
  deliver(from: SimNode, to: string, bytes: Uint8Array): ReceiveResult | null {
    const dest = this.nodes.get(to);
    if (dest?.engine == null) return null;
    const result = dest.engine.receive(from.address, bytes);
    this.afterCall(dest);
    return result;
  }

  killDatacenter(name: string): void {
    for (const n of this.datacenters.get(name) ?? []) this.kill(n);
  }

  restartDatacenter(name: string): void {
    for (const n of this.datacenters.get(name) ?? []) if (n.engine === null) this.start(n);
  }

  /** Cuts every link between the two groups of datacenters (both directions). */
  partition(a: readonly string[], b: readonly string[]): void {
    for (const x of a) for (const y of b) this.cut.add(pairKey(x, y));
  }

  heal(): void {
    this.cut.clear();
  }

  isCut(a: string, b: string): boolean {
    return this.cut.has(pairKey(a, b));
  }

  upNodes(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.engine !== null);
  }

  runFor(ms: number): void {
    const until = this.queue.now + ms;
    while (this.queue.runNext(until)) {
      /* events run */
    }
    this.queue.now = until;
  }

  /**
   * Runs until `done()` holds (checked every `checkMs`) or `maxMs` passes. Returns the
   * elapsed virtual ms, or null if it never held.
   */
  runUntil(done: () => boolean, maxMs: number, checkMs = this.roundMs / 10): number | null {
    const start = this.queue.now;
    while (this.queue.now - start <= maxMs) {
      if (done()) return this.queue.now - start;
      this.runFor(checkMs);
    }
    return null;
  }

  /** Whether every up node outside `datacenter` sees it with `status` (any status: just knows it). */
  allSee(datacenter: string, status: DatacenterStatus | 'known'): boolean {
    for (const n of this.nodes.values()) {
      if (n.engine === null || n.datacenter === datacenter) continue;
      const route = n.engine.route(datacenter);
      if (route === null) return false;
      if (status === 'known' ? route.members.length === 0 && route.status === 'suspect' : route.status !== status)
        return false;
    }
    return true;
  }

  /** Whether every up node knows every datacenter that has an up node. */
  fullyJoined(): boolean {
    for (const dc of this.datacenters.keys()) if (!this.allSee(dc, 'known')) return false;
    return true;
  }

  totalBytes(): number {
    let b = 0;
    for (const n of this.nodes.values()) b += n.bytesSent;
    return b;
  }

  private send(from: SimNode, to: string, bytes: Uint8Array): void {
    from.bytesSent += bytes.byteLength;
    from.messagesSent++;
    this.tap?.(from, to, bytes);
    const dest = this.nodes.get(to);
    if (dest === undefined || this.isCut(from.datacenter, dest.datacenter)) return;
    if (this.loss > 0 && this.net.float() < this.loss) return;
    const delay = this.delay(from.datacenter, dest.datacenter) + this.net.float() * (this.options.jitterMs ?? 5);
    this.queue.schedule(delay, () => {
      const engine = dest.engine;
      if (engine === null) return;
      const result = engine.receive(from.address, bytes);
      if (result.kind === 'refused' && result.reason === 'forged-datacenter' && from.datacenter === dest.datacenter) {
        this.ownMemberRefusals++;
        return;
      }
      if (result.kind === 'refused')
        throw new Error(`sim: ${dest.address} refused a message from ${from.address}: ${result.reason}`);
      this.afterCall(dest);
    });
  }

  private delay(a: string, b: string): number {
    if (a === b) return this.options.intraDatacenterMs ?? 1;
    const key = pairKey(a, b);
    let d = this.pairDelay.get(key);
    if (d === undefined) {
      const [lo, hi] = this.options.interDatacenterMs ?? [10, 150];
      d = lo + new SeededRandom(mix(this.options.seed, key, 0)).float() * (hi - lo);
      this.pairDelay.set(key, d);
    }
    return d;
  }

  private schedule(node: SimNode): void {
    const engine = node.engine;
    if (engine === null) return;
    const token = ++node.wakeToken;
    const at = Math.max(engine.nextWakeup(), this.queue.now + 1);
    this.queue.schedule(at - this.queue.now, () => {
      if (node.wakeToken !== token || node.engine === null) return;
      node.engine.tick(this.queue.now);
      this.afterCall(node);
    });
  }

  private afterCall(node: SimNode): void {
    const engine = node.engine;
    if (engine === null) return;
    for (const e of engine.drainEvents()) this.observe(node, e);
    this.schedule(node);
  }

  private observe(observer: SimNode, e: FederationEvent): void {
    switch (e.kind) {
      case 'knowledge-changed':
        observer.knowledge = e.knowledge;
        return;
      case 'refuted':
        this.counts.refutations++;
        return;
      case 'member-status': {
        const target = this.datacenters.get(e.datacenter)?.find((n) => n.id === e.id);
        const reachable =
          target !== undefined && target.engine !== null && !this.isCut(observer.datacenter, e.datacenter);
        if (!reachable) return;
        if (e.to === 'suspect') this.counts.falseSuspicions++;
        if (e.to === 'unreachable') {
          this.counts.falseMemberVerdicts++;
          if (this.falseVerdictLog.length < 20)
            this.falseVerdictLog.push(
              `t=${this.now.toFixed(0)}ms ${observer.address} declared ${e.datacenter}/${e.id} unreachable (incarnation ${e.incarnation})`,
            );
        }
        return;
      }
      case 'datacenter-status': {
        if (e.to !== 'unreachable') return;
        const up = (this.datacenters.get(e.datacenter) ?? []).some((n) => n.engine !== null);
        if (up && !this.isCut(observer.datacenter, e.datacenter)) this.counts.falseDatacenterVerdicts++;
        return;
      }
      case 'datacenter-discovered':
        return;
    }
  }
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

/** A 32-bit seed from a run seed, a name and a counter (FNV-1a). */
export function mix(seed: number, name: string, n: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (const ch of `${name}#${n}`) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return h;
}
