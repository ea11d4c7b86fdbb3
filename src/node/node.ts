/**
 * A Rollcall node: the Raft core, its storage (src/storage), the registry state machine
 * and the peer transport, driven by one Ready loop. This file is the composition root: it
 * wires the parts to each other, starts and stops them, and hands each public call to the
 * part that does it. What each part does is in its own file:
 *
 *   open-data.ts        the data directory: storage, bootstrap, registry, version gate, cluster id, peer book
 *   ready-loop.ts       persist, send, apply, compact, install snapshots; disk-waits.ts: the disk-stall rule
 *   client-requests.ts  writes, keepalives and cluster operations, routed to the leader (leader-router.ts)
 *   reads.ts            linearizable read barriers (ReadIndex)
 *   leader-duties.ts    session deadlines, expiry, health decisions, raising the cluster version
 *   keepalive-relays.ts which follower relayed each session's keepalives; credit while it is silent
 *   timers.ts           the Raft tick and the duty timer; loop-block-meter.ts: how long the event loop was held
 *   membership.ts       adding, removing and promoting members, handing leadership over
 *   peer-inbox.ts       where each peer message goes; forwarding.ts: waiting for the answers
 *   peer-connections.ts what a connection coming up, dropping or refused means; the early election
 *   member-status.ts    what members say about themselves, the version every member supports
 *   corruption-check.ts this node's part in the corruption check
 *   status.ts           what the node tells about itself; version-gate.ts, clock.ts (time, virtual in tests)
 */
import { randomInt } from 'node:crypto';
import type { ConfState, Message, SoftState } from '../../raft/index.js';
import { RawNode, SeededRandom } from '../../raft/index.js';
import { encode } from '../codec/index.js';
import type { HealthReport, TrackedHealth } from '../health/index.js';
import { HealthTracker, PolicyResolver } from '../health/index.js';
import type { Logger } from '../log/index.js';
import { type BackupOrigin, type OpenBackup, openBackup as openBackupStream } from '../ops/backup-stream.js';
import type { CheckReport, CorruptionChecker, DisarmReport } from '../ops/corruption-check.js';
import type { ClientCommand, KeepaliveOutcome, Registry } from '../registry/index.js';
import { SessionTracker } from '../registry/index.js';
import type { NodeDatabase, NodeStorage } from '../storage/index.js';
import { type ClusterIdentity, PeerTransport } from '../transport/index.js';
import { ClientRequests, NO_LEADER_WAIT_MS } from './client-requests.js';
import type { NodeClock } from './clock.js';
import { systemClock } from './clock.js';
import { CorruptionCheck } from './corruption-check.js';
import { fromCoreRefusal, NodeError } from './errors.js';
import { ForwardedRequests } from './forwarding.js';
import { describeFounding } from './founding-guard.js';
import { KeepaliveRelays } from './keepalive-relays.js';
import { LeaderDuties } from './leader-duties.js';
import { LeaderRouter } from './leader-router.js';
import { LeaderChangeWaiters } from './leader-watch.js';
import { LoopBlockMeter } from './loop-block-meter.js';
import { MemberPublication } from './member-publication.js';
import { MemberStatus } from './member-status.js';
import { Membership } from './membership.js';
import { openNodeData } from './open-data.js';
import type { NodeFaults, NodeObserver, NodeOptions } from './options.js';
import type { PeerBook } from './peer-book.js';
import { PeerConnections } from './peer-connections.js';
import { PeerInbox } from './peer-inbox.js';
import type { AdminResult, PeerMessage, ProposalResult } from './peer-messages.js';
import { peerMessageKind } from './peer-messages.js';
import { PendingProposals } from './proposals.js';
import { LocalProposer } from './proposer.js';
import { ReadBarriers } from './reads.js';
import { ReadyLoop } from './ready-loop.js';
import { detachSnapshotChunk, SnapshotPacer } from './snapshot-pacer.js';
import { readMemberAddresses } from './state-store.js';
import type { NodeStatus } from './status.js';
import { nodeStatus } from './status.js';
import { NodeTimers } from './timers.js';
import { buildVersionOf } from './version-gate.js';

export type { NodeFaults, NodeObserver, NodeOptions } from './options.js';
export type { MemberView, NodeStatus } from './status.js';

export class RollcallNode {
  readonly id: string;
  /** The state-machine version this build implements (src/registry/version.ts). */
  readonly buildVersion: number;
  /**
   * State-machine hashes compared across members (src/ops/corruption-check.ts), and whether
   * this node was found corrupt. The server's read refusal, readiness and alerts, the Consul
   * API and DNS read it through NodeApi['integrity'] (src/server/node-api.ts), typed.
   */
  readonly integrity: CorruptionChecker;
  private readonly log: Logger;
  private readonly clock: NodeClock;
  private readonly raw: RawNode;
  private readonly tracker: SessionTracker;
  private readonly proposals: PendingProposals;
  private readonly forwards: ForwardedRequests;
  private readonly leaderWatch: LeaderChangeWaiters;
  /** Which follower relayed each session's last keepalive (the transport tells it of dropped connections). */
  private readonly relays: KeepaliveRelays;
  private readonly reads: ReadBarriers;
  /** Batches the leader's proposals per event-loop turn. */
  private readonly proposer: LocalProposer;
  /** Snapshot chunks go out a few MiB per turn of the event loop. */
  private readonly snapshots: SnapshotPacer;
  /** Drives the core: persist, send, apply, compact. */
  private readonly ready: ReadyLoop;
  /** Cluster operations on the leader, member addresses on every node. */
  private readonly membership: Membership;
  /** Leader only, once caught up: deadlines, keepalives, expiry, health decisions. */
  private readonly duties: LeaderDuties;
  private readonly requests: ClientRequests;
  private readonly connections: PeerConnections;
  private readonly memberStatus: MemberStatus;
  /** This node's part in the corruption check: answering peers, the periodic check, the mark. */
  private readonly corruptionCheck: CorruptionCheck;
  private readonly inbox: PeerInbox;
  /** The Raft tick and the duty timer. */
  private readonly timers: NodeTimers;
  /** How long the event loop was held: neither the disk nor a session is blamed for it. */
  private readonly loopBlocks: LoopBlockMeter;
  private soft: SoftState = { role: 'follower', leader: null, term: 0 };
  private conf: ConfState;
  private closed = false;
  private failure: Error | null = null;
  private observer: NodeObserver = {};

  private constructor(
    private readonly options: NodeOptions,
    /** The addresses this node dials: its flags first, then those members were added with (peer-book.ts). */
    peers: PeerBook,
    private readonly db: NodeDatabase,
    private readonly storage: NodeStorage,
    readonly registry: Registry,
    readonly transport: PeerTransport<PeerMessage>,
    /** Which cluster this node belongs to, as the peer handshake checks it. */
    private readonly cluster: ClusterIdentity,
  ) {
    this.id = options.id;
    this.log = options.logger;
    const clock = options.clock ?? systemClock;
    this.clock = clock;
    this.buildVersion = buildVersionOf(options.stateMachineVersion);
    this.tracker = new SessionTracker(options.tracker);
    this.loopBlocks = new LoopBlockMeter(clock, this.log);
    // Leader only: provider reports and the health they decide (src/health/tracker.ts).
    const health = new HealthTracker({
      thresholds: new PolicyResolver(options.healthPolicy ?? (() => null)).thresholds,
    });
    this.conf = registry.conf ?? storage.initialState().confState;
    this.raw = new RawNode({
      id: options.id,
      storage,
      electionTick: options.electionTicks ?? 10,
      heartbeatTick: options.heartbeatTicks ?? 1,
      random: new SeededRandom(randomInt(0x7fffffff)),
      applied: registry.appliedIndex,
      confState: this.conf,
      snapshotChunkBytes: options.snapshotChunkBytes ?? 1024 * 1024,
      onFollowerLostEntries: (follower, match, followerLastIndex) =>
        options.logger.error(
          { follower, match, followerLastIndex },
          `${follower} lost acknowledged entries: its data was wiped? Remove it and add it back with --join (docs/operations.md)`,
        ),
    });
    const send = (to: string, m: PeerMessage): boolean => transport.send(to, m);
    const soft = (): SoftState => this.soft;
    const kick = (): void => this.kick();
    this.proposals = new PendingProposals(clock);
    this.forwards = new ForwardedRequests(clock);
    this.leaderWatch = new LeaderChangeWaiters(clock);
    this.proposer = new LocalProposer(this.raw, this.proposals, kick);
    this.snapshots = new SnapshotPacer({
      send: (msg) => transport.send(msg.to, { kind: 'raft', msg }),
      backlog: (to) => transport.pendingBytes(to),
      leadsIn: (term) => this.soft.role === 'leader' && this.soft.term === term,
      clock,
    });
    this.membership = new Membership({
      id: options.id,
      raw: this.raw,
      proposals: this.proposals,
      log: this.log,
      clock,
      book: peers,
      setPeers: (addresses) => transport.setPeers(addresses),
      soft,
      conf: () => this.conf,
      kick,
    });
    this.memberStatus = new MemberStatus({
      id: options.id,
      raw: this.raw,
      clock,
      buildVersion: this.buildVersion,
      advertiseHttp: options.advertiseHttp ?? null,
      appliedIndex: () => registry.appliedIndex,
      slowestRecentWriteMs: () => this.ready.slowestRecentWriteMs(),
      send,
    });
    const tickMs = options.tickMs ?? 50;
    const electionTicks = options.electionTicks ?? 10;
    const relays = (this.relays = new KeepaliveRelays({
      clock,
      isConnected: (peer) => transport.isConnected(peer),
      loopBlockedMs: () => this.loopBlocks.blockedMs(),
      // Followers answer every heartbeat: five missed are a silence, not jitter.
      silenceMs: 5 * tickMs * (options.heartbeatTicks ?? 1),
      // Back from a block, a follower may stand for election before it follows the leader again.
      catchUpMs: 2 * electionTicks * tickMs,
    }));
    this.duties = new LeaderDuties({
      raw: this.raw,
      registry,
      tracker: this.tracker,
      health,
      log: this.log,
      clock,
      soft,
      kick,
      wakeWaiters: () => this.leaderWatch.wake(),
      proposed: (kind) => this.observer.leaderProposed?.(kind, 1),
      membersVersion: () => this.memberStatus.supportedVersion(),
      unrecordedMemberAddresses: () => peers.unrecorded(this.conf),
      loopBlockedMs: () => this.loopBlocks.blockedMs(),
      relays,
    });
    this.reads = new ReadBarriers(
      {
        requestReadIndex: (ctx) => {
          const res = this.raw.readIndex(ctx);
          this.kick();
          return res.ok ? { ok: true } : { ok: false, error: fromCoreRefusal(res.error) };
        },
        appliedIndex: () => registry.appliedIndex,
        hasLeader: () => this.soft.leader !== null,
        leader: () => this.soft.leader,
        noLeaderWaitMs: NO_LEADER_WAIT_MS,
      },
      clock,
    );
    this.ready = new ReadyLoop({
      raw: this.raw,
      storage,
      db,
      registry,
      proposals: this.proposals,
      reads: this.reads,
      log: this.log,
      clock,
      dataDir: options.dataDir,
      compactEvery: options.compactEvery ?? 10_000,
      stallLimitMs: options.stallLimitMs ?? 5000,
      loopBlockedMs: () => this.loopBlocks.blockedMs(),
      observer: () => this.observer,
      closed: () => this.closed || this.failure !== null,
      fail: (err) => this.fail(err),
      onSoftState: (s) => this.onSoftState(s),
      send: (messages) => this.sendRaft(messages),
      flushSends: () => this.transport.flush(),
      applyConfChange: (cc, index) => {
        const before = this.conf;
        this.conf = this.raw.applyConfChange(cc);
        if (this.conf !== before) this.membership.onApplied(cc, index);
        return this.conf;
      },
      conf: () => this.conf,
      compactionFloor: (to) => {
        const progress = this.raw.status().progress;
        return this.snapshots.compactionFloor(to, (peer) => progress.find((p) => p.id === peer)?.match);
      },
      encodedMemberAddresses: () => peers.encodeAnnounced(),
      resetMemberAddresses: () => peers.resetAnnounced(),
      fillMemberAddresses: (addresses) => {
        const changed = peers.fill(addresses, this.conf);
        if (changed) transport.setPeers(peers.current);
        return changed;
      },
      buildVersion: this.buildVersion,
      onAppliedInMemory: (outcome) => this.duties.recordExpiries(outcome.events),
      onApplied: (applied, outcome) => {
        this.duties.update();
        this.duties.onApplied(applied, outcome.results);
        if (outcome.events.length > 0) options.onEvents?.(outcome.events);
      },
      onSnapshotInstalled: async () => {
        this.conf = registry.conf ?? this.conf;
        // The leader's record of added members, not its own address book: see peer-book.ts.
        peers.reload(await readMemberAddresses(db), this.conf);
        transport.setPeers(peers.current);
      },
    });
    this.corruptionCheck = new CorruptionCheck({
      id: options.id,
      log: this.log,
      clock,
      db,
      forwards: this.forwards,
      intervalMs: options.corruptionCheckIntervalMs ?? 0,
      members: () => [...this.conf.voters, ...this.conf.learners],
      appliedIndex: () => registry.appliedIndex,
      waitApplied: (index, ms) => this.ready.waitApplied(index, ms),
      isLeader: () => this.soft.role === 'leader' && !this.closed,
      assertOpen: () => this.assertOpen(),
      send,
      isConnected: (peer) => transport.isConnected(peer),
      // Woken when a peer link comes up (PeerConnections.onConnection), among other things.
      whenLinksChange: (ms) => this.leaderWatch.wait(ms),
    });
    this.integrity = this.corruptionCheck.checker;
    this.requests = new ClientRequests({
      clock,
      router: new LeaderRouter({
        id: options.id,
        clock,
        assertOpen: () => this.assertOpen(),
        leader: () => this.soft.leader,
        isConnected: (peer) => transport.isConnected(peer),
        whenLeaderMayHaveChanged: (ms) => this.leaderWatch.wait(ms),
      }),
      proposer: this.proposer,
      forwards: this.forwards,
      duties: this.duties,
      membership: this.membership,
      soft,
      send,
      // Answered from memory (reads-your-writes on this node), not after its LevelDB write.
      waitApplied: (index, ms) => this.ready.waitAppliedInMemory(index, ms),
    });
    this.connections = new PeerConnections({
      id: options.id,
      raw: this.raw,
      log: this.log,
      forwards: this.forwards,
      soft,
      conf: () => this.conf,
      isConnected: (peer) => transport.isConnected(peer),
      wakeWaiters: () => this.leaderWatch.wake(),
      kick,
      closed: () => this.closed,
    });
    this.inbox = new PeerInbox({
      raw: this.raw,
      forwards: this.forwards,
      proposer: this.proposer,
      duties: this.duties,
      relays,
      membership: this.membership,
      memberStatus: this.memberStatus,
      corruptionCheck: this.corruptionCheck,
      soft,
      send,
      kick,
      closed: () => this.closed,
    });
    this.timers = new NodeTimers({
      raw: this.raw,
      clock,
      membership: this.membership,
      duties: this.duties,
      publication: new MemberPublication({
        id: options.id,
        registry,
        clock,
        log: this.log,
        soft,
        conf: () => this.conf,
        submit: (command, ms) => this.requests.submit(command, ms),
        closed: () => this.closed || this.failure !== null,
      }),
      tickMs,
      electionTicks,
      dutyMs: options.expiryCheckMs ?? 200,
      kick,
      closed: () => this.closed,
    });
  }

  /** Opens storage (refusing a damaged log), loads the registry, joins the peers and starts ticking. */
  static async start(options: NodeOptions): Promise<RollcallNode> {
    let node: RollcallNode | null = null;
    const { db, storage, registry, cluster, peers } = await openNodeData(options, (err) => {
      if (node !== null && !node.closed) node.fail(err);
    });
    try {
      const transport = new PeerTransport<PeerMessage>({
        id: options.id,
        listen: options.peerListen,
        peers: peers.current,
        secret: options.secret,
        cluster,
        ...(options.peerTls === undefined ? {} : { tls: options.peerTls }),
        logger: options.logger,
        onMessage: (from, m) => node?.inbox.receive(from, m),
        onPeerStatus: (ev) => {
          node?.connections.onConnection(ev.peer, ev.connected);
          if (!ev.connected) node?.relays.connectionDropped(ev.peer);
        },
        onPeerRefused: (peer) => node?.connections.onRefused(peer),
        describeFounding: (asker) => describeFounding(storage, registry, asker),
        detachBinary: detachSnapshotChunk,
        ...(options.faults ? { faults: true, faultKind: peerMessageKind } : {}),
      });
      node = new RollcallNode(options, peers, db, storage, registry, transport, cluster);
      await node.corruptionCheck.restoreMark();
      await transport.start();
      node.startTimers();
      node.connections.maybeCampaignAtStart();
      node.kick();
      options.logger.info(
        {
          applied: registry.appliedIndex,
          revision: registry.revision,
          lastIndex: storage.lastIndex(),
          clusterId: cluster.current,
          tablesChecked: db.tableCheck,
        },
        'node started',
      );
      return node;
    } catch (err) {
      await storage.close().catch(() => undefined);
      throw err;
    }
  }

  // ---- views ------------------------------------------------------------------------

  get leader(): string | null {
    return this.soft.leader;
  }

  /** The cluster this node belongs to (null: a cluster without an id, or a joiner not yet added). */
  get clusterId(): string | null {
    return this.cluster.current;
  }

  status(): NodeStatus {
    return nodeStatus({
      id: this.id,
      raw: this.raw,
      clock: this.clock,
      registry: this.registry,
      tracker: this.tracker,
      memberStatus: this.memberStatus,
      transport: this.transport,
      buildVersion: this.buildVersion,
    });
  }

  /** The leader's view of provider reports; null on a follower (reports go to the leader only). */
  healthReports(): readonly TrackedHealth[] | null {
    return this.duties.healthReports();
  }

  /** Work waiting in this node (proposals, requests forwarded to the leader, reads): what load shedding bounds. */
  pendingWork(): number {
    return this.proposer.queued + this.proposals.size + this.forwards.size + this.reads.waiting;
  }

  // ---- client work ------------------------------------------------------------------

  /**
   * Replicates a client command and resolves once it is committed and applied on this
   * node (so a read here right after sees it). On a follower the command is forwarded
   * to the leader. Rejects with NodeError (NO_LEADER, TIMEOUT, PROPOSAL_DROPPED, ...).
   */
  submit(command: ClientCommand, timeoutMs: number): Promise<ProposalResult> {
    return this.requests.submit(command, timeoutMs);
  }

  /**
   * A heartbeat for a session; any node takes it and the leader keeps the deadline. A
   * health report riding on it goes to the leader's HealthTracker for the session's instances.
   */
  keepalive(sessionId: string, timeoutMs: number, report?: HealthReport): Promise<KeepaliveOutcome> {
    return this.requests.keepalive(sessionId, timeoutMs, report);
  }

  /** Resolves once this node may serve a linearizable read from its applied state. */
  readBarrier(timeoutMs: number): Promise<number> {
    this.assertOpen();
    return this.reads.barrier(timeoutMs);
  }

  /**
   * Adds a member as a learner (it receives the log but does not vote); the leader
   * promotes it to voter once it has caught up. Forwarded to the leader from followers.
   */
  addMember(id: string, address: string, timeoutMs: number): Promise<AdminResult> {
    return this.requests.admin({ type: 'addMember', id, address }, timeoutMs);
  }

  removeMember(id: string, timeoutMs: number): Promise<AdminResult> {
    return this.requests.admin({ type: 'removeMember', id }, timeoutMs);
  }

  /** Hands leadership to `to`, or (undefined) to the best-placed other voter. */
  transferLeadershipTo(to: string | undefined, timeoutMs: number): Promise<AdminResult> {
    return this.requests.admin(to === undefined ? { type: 'transfer' } : { type: 'transfer', to }, timeoutMs);
  }

  // ---- operations -------------------------------------------------------------------

  /**
   * A consistent backup of this node's applied state (GET /v1/snapshot, `rollcall snapshot
   * save`): one LevelDB snapshot of the state machine in the backup file format
   * (src/ops/backup-stream.ts), stamped with this node and its cluster id.
   */
  async openBackup(now?: BackupOrigin['now']): Promise<OpenBackup> {
    this.assertOpen();
    // Writes are answered once applied in memory, while their LevelDB write may still run:
    // a backup asked for after an answer must include it.
    await this.ready.whenStateWritten();
    this.assertOpen();
    return openBackupStream(this.db, {
      node: this.id,
      clusterId: this.clusterId,
      ...(now === undefined ? {} : { now }),
    });
  }

  /** Compares every member's state-machine hash now (POST /v1/cluster/check). */
  checkCorruption(timeoutMs: number): Promise<CheckReport> {
    this.assertOpen();
    return this.integrity.run(timeoutMs);
  }

  /** Clears the corruption mark of one member, or of all (POST /v1/cluster/check/disarm). */
  disarmCorruption(member: string | undefined, timeoutMs: number): Promise<DisarmReport> {
    return this.corruptionCheck.disarm(member, timeoutMs);
  }

  /** Receives timings and events for metrics; replaces any earlier observer. */
  setObserver(observer: NodeObserver): void {
    this.observer = observer;
  }

  /**
   * Test-only: drop peer messages to and from these nodes, optionally only some kinds (the
   * transport's fault hook), and make each log compaction take `compactDelayMs` longer and
   * each Raft write `persistDelayMs` longer (a slow fsync), and each state-machine write
   * `stateWriteDelayMs` longer (a slow LevelDB write).
   */
  setFaults(faults: NodeFaults): void {
    this.transport.setFaults(faults);
    this.ready.compactDelayMs = faults.compactDelayMs ?? 0;
    this.ready.persistDelayMs = faults.persistDelayMs ?? 0;
    this.ready.stateWriteDelayMs = faults.stateWriteDelayMs ?? 0;
  }

  /** Test-only (PUT /v1/test/faults): writes a record into the state machine behind the log's back. */
  async corruptStateForTest(key: string, value: string): Promise<void> {
    await this.db.sm.put(new TextEncoder().encode(key), encode(value));
  }

  // ---- wiring -----------------------------------------------------------------------

  private kick(): void {
    this.ready.kick();
  }

  private sendRaft(messages: readonly Message[]): void {
    for (const msg of messages) {
      if (msg.type === 'snapshot') {
        if (msg.offset === 0)
          this.log.info(
            { to: msg.to, index: msg.meta.index, bytes: msg.total },
            'sending a snapshot: the follower is behind the compacted log',
          );
        this.snapshots.push(msg);
      } else {
        this.transport.send(msg.to, { kind: 'raft', msg });
      }
    }
  }

  private onSoftState(soft: SoftState): void {
    const prev = this.soft;
    this.soft = soft;
    if (soft.leader !== null) this.connections.leaderKnown();
    if (soft.leader !== prev.leader) {
      // The old leader will not answer what was forwarded to it (or, if it lost leadership,
      // answers it dropped): fail it now and let submit() retry where that is safe.
      if (prev.leader !== null && prev.leader !== this.id)
        this.forwards.failPeer(prev.leader, `leadership moved from ${prev.leader}`, 'leader-bound');
      this.leaderWatch.wake();
    }
    if (soft.leader !== prev.leader || soft.term !== prev.term) {
      this.log.info(
        { term: soft.term, leader: soft.leader, role: soft.role },
        soft.leader ? 'leader known' : 'no leader',
      );
      if (soft.leader !== null) this.observer.leaderChanged?.(soft.leader, soft.term);
    }
    this.duties.update();
  }

  // ---- lifecycle --------------------------------------------------------------------

  private startTimers(): void {
    this.loopBlocks.start();
    this.timers.start();
    this.memberStatus.start();
    this.corruptionCheck.start();
  }

  private assertOpen(): void {
    if (this.closed) throw new NodeError('SHUTTING_DOWN', 'the node is shutting down');
    if (this.failure)
      throw new NodeError('SHUTTING_DOWN', `the node stopped after a storage failure: ${this.failure.message}`);
  }

  /** A persist or apply failure leaves memory and disk out of step: stop serving at once. */
  private fail(err: unknown): void {
    this.failure = err instanceof Error ? err : new Error(String(err));
    this.log.fatal({ err: this.failure }, 'storage failure in the Ready loop; the node stops serving');
    this.options.onFatal?.(this.failure);
  }

  /** Stops timers, fails waiting requests, closes the transport, waits for writes, closes LevelDB. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timers.close();
    this.loopBlocks.close();
    this.memberStatus.close();
    this.corruptionCheck.close();
    this.snapshots.close();
    const err = new NodeError('SHUTTING_DOWN', 'the node is shutting down');
    this.proposer.close(err);
    this.proposals.close(err);
    this.forwards.close(err);
    this.leaderWatch.wake();
    this.reads.close(err);
    this.ready.close(err);
    await this.transport.close();
    // Let an in-flight Ready finish so nothing half-written is left behind.
    await this.ready.idle();
    await this.storage.close();
  }
}
