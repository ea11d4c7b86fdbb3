/**
 * A Rollcall node: the Raft core, its LevelDB storage, the registry state machine and
 * the peer transport, driven by one Ready loop.
 *
 * The loop, per Ready: send what may leave now; persist entries and hard state in one
 * synced batch (every proposal that arrived meanwhile shares that fsync: group commit);
 * send the acknowledgements the core releases only after that; apply committed entries
 * in one atomic LevelDB batch together with the applied index; release reads.
 */
import { randomInt } from 'node:crypto';
import type { ConfState, Message, SoftState } from '../../raft/index.js';
import { bootstrapEntries, bootstrapHardState, RawNode, SeededRandom } from '../../raft/index.js';
import { encode } from '../codec/index.js';
import type { HealthPolicy, HealthReport, TrackedHealth } from '../health/index.js';
import { HealthTracker, PolicyResolver } from '../health/index.js';
import type { Logger } from '../log/index.js';
import { type BackupOrigin, type OpenBackup, openBackup } from '../ops/backup-stream.js';
import {
  type CheckReport,
  CorruptionChecker,
  hashStateMachine,
  readCorruptionMark,
  type StateHash,
  writeCorruptionMark,
} from '../ops/corruption-check.js';
import type { ClientCommand, KeepaliveOutcome, RegistryEvent, SessionTrackerOptions } from '../registry/index.js';
import {
  BASE_CLUSTER_VERSION,
  buildStateMachineVersion,
  Registry,
  SessionTracker,
  StateMachineVersionError,
} from '../registry/index.js';
import type { NodeDatabase } from '../storage/index.js';
import { NodeStorage, openNodeDatabase, readClusterId, writeClusterId } from '../storage/index.js';
import type { PeerAddress } from '../transport/index.js';
import { ClusterIdentity, type PeerTlsOptions, PeerTransport } from '../transport/index.js';
import type { NodeClock, Timer } from './clock.js';
import { systemClock, toWall } from './clock.js';
import { fromCoreRefusal, NodeError, notLeader } from './errors.js';
import { ForwardedRequests, ForwardFailure, toOutcome } from './forwarding.js';
import { LeaderDuties } from './leader-duties.js';
import { LeaderRouter } from './leader-router.js';
import { Membership } from './membership.js';
import { PeerBook } from './peer-book.js';
import type { AdminOp, AdminResult, PeerMessage, PeerStatus, ProposalResult } from './peer-messages.js';
import { PendingProposals } from './proposals.js';
import { LocalProposer } from './proposer.js';
import { ReadBarriers } from './reads.js';
import { ReadyLoop } from './ready-loop.js';
import { SnapshotPacer } from './snapshot-pacer.js';
import { readLegacyPeers, readMemberAddresses, smStore } from './state-store.js';

/** How long a request waits for a leader to appear before it is answered with NO_LEADER. */
const NO_LEADER_WAIT_MS = 2000;
/** A member's reported build counts toward raising the cluster version only this long (statuses go out every 500 ms). */
const STATUS_FRESH_MS = 3000;

export interface NodeOptions {
  readonly id: string;
  readonly dataDir: string;
  /** How this node reaches its peers (`--peers`), its own entry included; wins over the addresses members were added with (peer-book.ts). */
  readonly peers: ReadonlyMap<string, PeerAddress>;
  readonly peerListen: PeerAddress;
  /** The state-machine version this build implements; default buildStateMachineVersion() (src/registry/version.ts). */
  readonly stateMachineVersion?: number;
  readonly secret: string;
  /** Mutual TLS between nodes (`--peer-tls-*`); absent: plain TCP. `transport.setTls` reloads it. */
  readonly peerTls?: PeerTlsOptions;
  readonly logger: Logger;
  /** Start empty and wait to be added by the leader, instead of bootstrapping the founding members. */
  readonly join?: boolean;
  /** Milliseconds per Raft tick; election timeout is `electionTicks` ticks (randomized up to twice that). */
  readonly tickMs?: number;
  readonly electionTicks?: number;
  readonly heartbeatTicks?: number;
  /** Compact the log once this many entries are applied beyond the last snapshot. */
  readonly compactEvery?: number;
  readonly snapshotChunkBytes?: number;
  readonly tracker?: SessionTrackerOptions;
  /** How often the leader looks for expired sessions. */
  readonly expiryCheckMs?: number;
  /** Enables the transport's fault hook (tests only). */
  readonly faults?: boolean;
  readonly onEvents?: (events: readonly RegistryEvent[]) => void;
  /** This node's HTTP address as peers should show it (gossiped for /v1/cluster). */
  readonly advertiseHttp?: string;
  /** The node stopped serving after a storage failure; the process should exit. */
  readonly onFatal?: (err: Error) => void;
  /** The health policy in force (thresholds per namespace/service); null or absent: defaults. */
  readonly healthPolicy?: () => HealthPolicy | null;
  /** Monotonic and wall time, and the timers node logic waits on (tests drive it); the system clock by default. */
  readonly clock?: NodeClock;
  /** How long one write may hang before this node stops sending heartbeats (default 5 s): see ReadyLoop. */
  readonly stallLimitMs?: number;
  /** The leader runs the corruption check this often (ms); 0 or absent: only on demand. */
  readonly corruptionCheckIntervalMs?: number;
}

/** Timings and events a metrics exporter wants from the node (all optional). */
export interface NodeObserver {
  /** One Ready made durable: seconds spent in the synced LevelDB write, entries in it. */
  persisted?(seconds: number, entries: number): void;
  /** One batch of committed entries applied (state machine + its LevelDB batch). */
  applied?(seconds: number, entries: number): void;
  /** This node saw a new leader or term. */
  leaderChanged?(leader: string | null, term: number): void;
  /** The leader proposed commands of its own (expiry, suspect marks, promotions). */
  leaderProposed?(kind: string, count: number): void;
}

export interface MemberView {
  readonly id: string;
  readonly isLearner: boolean;
  /** The leader's view of the member's log (null unless this node leads). */
  readonly match: number | null;
  /** When this node last heard from the member (ms since epoch). */
  readonly lastContact: number | null;
  readonly connected: boolean;
  /** What the member last said about itself (null if never heard). */
  readonly reported: (PeerStatus & { readonly at: number }) | null;
}

export interface NodeStatus {
  readonly id: string;
  readonly role: SoftState['role'];
  readonly leader: string | null;
  readonly term: number;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly firstIndex: number;
  readonly revision: number;
  readonly conf: ConfState;
  /** The state-machine version the cluster runs at, as of this node's applied index (src/registry/version.ts). */
  readonly clusterVersion: number;
  /** The state-machine version this node's build implements. */
  readonly buildVersion: number;
  /** The highest version every member supports, as this node last heard (the leader raises the cluster version to it). */
  readonly supportedVersion: number;
  readonly members: readonly MemberView[];
  readonly protection: ReturnType<SessionTracker['protection']>;
}

export class RollcallNode {
  readonly id: string;
  private readonly raw: RawNode;
  private readonly tracker: SessionTracker;
  /** Leader only: provider reports and the health they decide (src/health/tracker.ts). */
  private readonly health: HealthTracker;
  private readonly proposals: PendingProposals;
  private readonly forwards: ForwardedRequests;
  private readonly reads: ReadBarriers;
  /** Client work to this node or to the leader, across leader changes. */
  private readonly router: LeaderRouter;
  private soft: SoftState = { role: 'follower', leader: null, term: 0 };
  private conf: ConfState;
  private closed = false;
  private failure: Error | null = null;
  private tickTimer: Timer | null = null;
  private expiryTimer: Timer | null = null;
  /** Batches the leader's proposals per event-loop turn. */
  private readonly proposer: LocalProposer;
  /** Snapshot chunks go out a few MiB per turn of the event loop. */
  private readonly snapshots: SnapshotPacer;
  /** Until a leader is first known: see maybeCampaignAtStart. */
  private startElectionPending = true;
  /** Callers of whenLeaderMayHaveChanged(), woken on a leader change or a peer connection. */
  private readonly leaderChangeWaiters = new Set<() => void>();
  private readonly peerStatus = new Map<string, PeerStatus & { at: number }>();
  /** The state-machine version this build implements (src/registry/version.ts). */
  readonly buildVersion: number;
  private statusTimer: Timer | null = null;
  private readonly log: Logger;
  private readonly clock: NodeClock;
  private readonly expiryCheckMs: number;
  /** The addresses this node dials: its flags first, then those members were added with (peer-book.ts). */
  private readonly peers: PeerBook;
  /** Drives the core: persist, send, apply, compact. */
  private readonly ready: ReadyLoop;
  /** Cluster operations on the leader, member addresses on every node. */
  private readonly membership: Membership;
  /** Leader only, once caught up: deadlines, keepalives, expiry, health decisions. */
  private readonly duties: LeaderDuties;
  private observer: NodeObserver = {};
  /** Which cluster this node belongs to, as the peer handshake checks it (set in start()). */
  private cluster: ClusterIdentity = ClusterIdentity.of(null);
  /** State-machine hashes compared across members (src/ops/corruption-check.ts). */
  readonly integrity: CorruptionChecker;
  private integrityTimer: Timer | null = null;

  private constructor(
    private readonly options: NodeOptions,
    peers: PeerBook,
    private readonly db: NodeDatabase,
    private readonly storage: NodeStorage,
    readonly registry: Registry,
    readonly transport: PeerTransport<PeerMessage>,
  ) {
    this.id = options.id;
    this.log = options.logger;
    this.clock = options.clock ?? systemClock;
    this.proposals = new PendingProposals(this.clock);
    this.forwards = new ForwardedRequests(this.clock);
    this.expiryCheckMs = options.expiryCheckMs ?? 200;
    this.buildVersion = options.stateMachineVersion ?? buildStateMachineVersion();
    this.tracker = new SessionTracker(options.tracker);
    this.health = new HealthTracker({
      thresholds: new PolicyResolver(options.healthPolicy ?? (() => null)).thresholds,
    });
    this.conf = registry.conf ?? storage.initialState().confState;
    this.peers = peers;
    this.raw = new RawNode({
      id: options.id,
      storage,
      electionTick: options.electionTicks ?? 10,
      heartbeatTick: options.heartbeatTicks ?? 1,
      random: new SeededRandom(randomInt(0x7fffffff)),
      applied: registry.appliedIndex,
      confState: this.conf,
      snapshotChunkBytes: options.snapshotChunkBytes ?? 1024 * 1024,
    });
    this.proposer = new LocalProposer(this.raw, this.proposals, () => this.kick());
    this.integrity = new CorruptionChecker({
      id: options.id,
      log: this.log,
      now: () => this.clock.wallNow(),
      members: () => [...this.conf.voters, ...this.conf.learners],
      appliedIndex: () => this.registry.appliedIndex,
      selfHash: (index, timeoutMs) => this.stateHash(index, timeoutMs),
      askHash: (peer, index, timeoutMs) =>
        this.forwards.request<StateHash>(
          peer,
          timeoutMs,
          (req) => this.transport.send(peer, { kind: 'hashRequest', req, index }),
          false,
        ),
      tellCorrupt: (peer, detail) => void this.transport.send(peer, { kind: 'corrupt', detail }),
      persistMark: (mark) => writeCorruptionMark(db, mark),
    });
    this.snapshots = new SnapshotPacer({
      send: (msg) => this.transport.send(msg.to, { kind: 'raft', msg }),
      backlog: (to) => this.transport.pendingBytes(to),
      leadsIn: (term) => this.soft.role === 'leader' && this.soft.term === term,
      clock: this.clock,
    });
    this.membership = new Membership({
      id: options.id,
      raw: this.raw,
      proposals: this.proposals,
      log: this.log,
      clock: this.clock,
      book: peers,
      setPeers: (addresses) => this.transport.setPeers(addresses),
      soft: () => this.soft,
      conf: () => this.conf,
      kick: () => this.kick(),
    });
    this.duties = new LeaderDuties({
      raw: this.raw,
      registry,
      tracker: this.tracker,
      health: this.health,
      log: this.log,
      clock: this.clock,
      soft: () => this.soft,
      kick: () => this.kick(),
      wakeWaiters: () => this.notifyLeaderMayHaveChanged(),
      proposed: (kind) => this.observer.leaderProposed?.(kind, 1),
      membersVersion: () => this.membersVersion(),
    });
    this.router = new LeaderRouter({
      id: options.id,
      clock: this.clock,
      assertOpen: () => this.assertOpen(),
      leader: () => this.soft.leader,
      isConnected: (peer) => this.transport.isConnected(peer),
      whenLeaderMayHaveChanged: (ms) => this.whenLeaderMayHaveChanged(ms),
    });
    this.reads = new ReadBarriers(
      {
        requestReadIndex: (ctx) => {
          const res = this.raw.readIndex(ctx);
          this.kick();
          return res.ok ? { ok: true } : { ok: false, error: fromCoreRefusal(res.error) };
        },
        appliedIndex: () => this.registry.appliedIndex,
        hasLeader: () => this.soft.leader !== null,
        leader: () => this.soft.leader,
        noLeaderWaitMs: NO_LEADER_WAIT_MS,
      },
      this.clock,
    );
    this.ready = new ReadyLoop({
      raw: this.raw,
      storage,
      db,
      registry,
      proposals: this.proposals,
      reads: this.reads,
      log: this.log,
      clock: this.clock,
      dataDir: options.dataDir,
      compactEvery: options.compactEvery ?? 10_000,
      stallLimitMs: options.stallLimitMs ?? 5000,
      observer: () => this.observer,
      closed: () => this.closed || this.failure !== null,
      fail: (err) => this.fail(err),
      onSoftState: (soft) => this.onSoftState(soft),
      send: (messages) => this.sendRaft(messages),
      applyConfChange: (cc, index) => {
        const before = this.conf;
        this.conf = this.raw.applyConfChange(cc);
        if (this.conf !== before) this.membership.onApplied(cc, index);
        return this.conf;
      },
      conf: () => this.conf,
      encodedMemberAddresses: () => this.peers.encodeAnnounced(),
      resetMemberAddresses: () => this.peers.resetAnnounced(),
      buildVersion: this.buildVersion,
      onAppliedInMemory: (outcome) => this.duties.recordExpiries(outcome.events),
      onApplied: (applied, outcome) => {
        this.duties.update();
        this.duties.onApplied(applied, outcome.results);
        if (outcome.events.length > 0) this.options.onEvents?.(outcome.events);
      },
      onSnapshotInstalled: async () => {
        this.conf = this.registry.conf ?? this.conf;
        // The leader's record of added members, not its own address book: see peer-book.ts.
        this.peers.reload(await readMemberAddresses(this.db), this.conf);
        this.transport.setPeers(this.peers.current);
      },
    });
  }

  /** Opens storage (refusing a damaged log), loads the registry, joins the peers and starts ticking. */
  static async start(options: NodeOptions): Promise<RollcallNode> {
    const db = await openNodeDatabase(options.dataDir);
    let storage: NodeStorage | null = null;
    try {
      storage = await NodeStorage.open(db, {
        onSnapshotError: (err) => options.logger.error({ err }, 'preparing a snapshot failed'),
        // A crash left something half-done that open() finished: worth a line for whoever restarts it.
        onRecovery: (what) => options.logger.warn({ dataDir: options.dataDir }, `storage recovered at open: ${what}`),
      });
      const fresh = storage.lastIndex() === 0 && storage.initialState().hardState.term === 0;
      if (fresh && !options.join) {
        // Founding member of a new cluster: the membership is the first entries of the log.
        const ids = [...options.peers.keys()].sort();
        await storage.persist({ entries: bootstrapEntries(ids), hardState: bootstrapHardState(ids) });
        options.logger.info({ members: ids }, 'bootstrapped a new cluster');
      }
      const registry = await Registry.open(smStore(db));
      const buildVersion = options.stateMachineVersion ?? buildStateMachineVersion();
      if (registry.clusterVersion > buildVersion)
        throw new StateMachineVersionError(buildVersion, registry.clusterVersion);
      // A restored member has a cluster id; a joiner takes on the id of the cluster that adds it.
      const storedClusterId = await readClusterId(db);
      const cluster =
        storedClusterId === null && fresh && options.join
          ? ClusterIdentity.unassigned((id) => node?.adoptClusterId(id))
          : ClusterIdentity.of(storedClusterId);
      // --peers wins for the ids it names; the stored records only fill in the rest.
      const book = new PeerBook(
        options.id,
        options.peers,
        await readMemberAddresses(db),
        await readLegacyPeers(db),
        registry.conf ?? storage.initialState().confState,
      );
      let node: RollcallNode | null = null;
      const transport = new PeerTransport<PeerMessage>({
        id: options.id,
        listen: options.peerListen,
        peers: book.current,
        secret: options.secret,
        cluster,
        ...(options.peerTls === undefined ? {} : { tls: options.peerTls }),
        logger: options.logger,
        onMessage: (from, m) => node?.onPeerMessage(from, m),
        onPeerStatus: (ev) => {
          node?.onPeerConnection(ev.peer, ev.connected);
        },
        onPeerRefused: (peer) => node?.onPeerRefused(peer),
        ...(options.faults ? { faults: true, faultKind: peerMessageKind } : {}),
      });
      node = new RollcallNode(options, book, db, storage, registry, transport);
      node.cluster = cluster;
      const corruption = await readCorruptionMark(db);
      if (corruption !== null) node.integrity.restoreMark(corruption);
      await transport.start();
      node.startTimers();
      node.maybeCampaignAtStart();
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
      if (storage) await storage.close().catch(() => undefined);
      else await db.db.close().catch(() => undefined);
      throw err;
    }
  }

  // ---- views ------------------------------------------------------------------------

  get leader(): string | null {
    return this.soft.leader;
  }

  get role(): SoftState['role'] {
    return this.soft.role;
  }

  /** The cluster this node belongs to (null: a cluster without an id, or a joiner not yet added). */
  get clusterId(): string | null {
    return this.cluster.current;
  }

  /**
   * A consistent backup of this node's applied state (GET /v1/snapshot): one LevelDB
   * snapshot of the state machine, streamed in the backup file format (src/ops/).
   */
  openBackup(now?: BackupOrigin['now']): Promise<OpenBackup> {
    this.assertOpen();
    return openBackup(this.db, { node: this.id, clusterId: this.clusterId, ...(now === undefined ? {} : { now }) });
  }

  /** A joiner took on the cluster id of the cluster that added it: keep it across restarts. */
  private adoptClusterId(id: string): void {
    this.log.info({ clusterId: id }, 'joined a cluster with an id; storing it');
    writeClusterId(this.db, id).catch((err: unknown) => {
      if (!this.closed) this.fail(err);
    });
  }

  get appliedIndex(): number {
    return this.registry.appliedIndex;
  }

  status(): NodeStatus {
    const st = this.raw.status();
    const tstats = this.transport.stats();
    const progress = new Map(st.progress.map((p) => [p.id, p]));
    const ids = [...st.conf.voters, ...st.conf.learners];
    const members: MemberView[] = ids.map((id) => {
      const peer = tstats.peers[id];
      return {
        id,
        isLearner: st.conf.learners.includes(id),
        match: id === this.id ? st.lastIndex : (progress.get(id)?.match ?? null),
        lastContact: id === this.id ? this.clock.wallNow() : (peer?.lastContact ?? null),
        connected: id === this.id ? true : (peer?.connected ?? false),
        reported:
          id === this.id ? { ...this.selfStatus(), at: this.clock.wallNow() } : (this.peerStatus.get(id) ?? null),
      };
    });
    return {
      id: this.id,
      role: st.softState.role,
      leader: st.softState.leader,
      term: st.hardState.term,
      commitIndex: st.hardState.commit,
      appliedIndex: this.registry.appliedIndex,
      lastIndex: st.lastIndex,
      firstIndex: st.firstIndex,
      revision: this.registry.revision,
      conf: st.conf,
      clusterVersion: this.registry.clusterVersion,
      buildVersion: this.buildVersion,
      supportedVersion: this.membersVersion(),
      members,
      protection: this.tracker.protection().map((p) => ({
        ...p,
        enteredAt: toWall(this.clock, p.enteredAt),
        settledSince: p.settledSince === null ? null : toWall(this.clock, p.settledSince),
      })),
    };
  }

  // ---- client work ------------------------------------------------------------------

  /**
   * Replicates a client command and resolves once it is committed and applied on this
   * node (so a read here right after sees it). On a follower the command is forwarded
   * to the leader. Rejects with NodeError (NO_LEADER, TIMEOUT, PROPOSAL_DROPPED, ...).
   */
  async submit(command: ClientCommand, timeoutMs: number): Promise<ProposalResult> {
    const data = encode(command);
    return this.router.route<ProposalResult>(
      {
        here: () => this.soft.role === 'leader',
        runHere: (left) => this.proposer.propose(data, left),
        forward: async (leader, left) => {
          const deadline = this.clock.now() + left;
          const res = await this.forwards.request<ProposalResult>(leader, left, (req) =>
            this.transport.send(leader, { kind: 'propose', req, data }),
          );
          // Read-your-writes on this node: wait until we have applied it too.
          await this.waitApplied(res.index, Math.max(1, deadline - this.clock.now()));
          return res;
        },
        // Only what cannot apply twice: a refusal before anything was proposed, a request
        // that never left this node, and (exactly-once ids make the replay harmless) one
        // whose leader went away. Anything else goes back to the client.
        retryable: (err) =>
          (err instanceof NodeError && err.code === 'NO_LEADER') ||
          (err instanceof ForwardFailure && (err.kind === 'not-sent' || command.client !== undefined)),
        onDeadline: (unknown) =>
          new NodeError(
            'TIMEOUT',
            unknown
              ? 'the leader went away and no successor took the write in time; it may have been applied'
              : 'no leader accepted the write in time',
            this.soft.leader,
          ),
        waitMs: 200,
        // With no leader at all, wait only briefly: the client gets 503 and retries elsewhere.
        noLeaderMs: NO_LEADER_WAIT_MS,
      },
      timeoutMs,
    );
  }

  /** Work waiting in this node (proposals, requests forwarded to the leader, reads): what load shedding bounds. */
  pendingWork(): number {
    return this.proposer.queued + this.proposals.size + this.forwards.size + this.reads.waiting;
  }

  /** Resolves once this node may serve a linearizable read from its applied state. */
  readBarrier(timeoutMs: number): Promise<number> {
    this.assertOpen();
    return this.reads.barrier(timeoutMs);
  }

  /** This node's state-machine hash once it has applied `index` (the corruption check). */
  async stateHash(index: number, timeoutMs: number): Promise<StateHash> {
    this.assertOpen();
    await this.waitApplied(index, timeoutMs);
    return hashStateMachine(this.db);
  }

  /** Compares every member's state-machine hash now (POST /v1/cluster/check). */
  checkCorruption(timeoutMs: number): Promise<CheckReport> {
    this.assertOpen();
    return this.integrity.run(timeoutMs);
  }

  /** Test-only (PUT /v1/test/faults): writes a record into the state machine behind the log's back. */
  async corruptStateForTest(key: string, value: string): Promise<void> {
    await this.db.sm.put(new TextEncoder().encode(key), encode(value));
  }

  /** Resolves once this node has applied `index` (or rejects with TIMEOUT). */
  waitApplied(index: number, timeoutMs: number): Promise<void> {
    return this.ready.waitApplied(index, timeoutMs);
  }

  /**
   * Waits until the leader or a peer connection changes, or `ms` passes, whichever is
   * first: a write waiting for a new leader goes the moment there is one.
   */
  private whenLeaderMayHaveChanged(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.leaderChangeWaiters;
      const done = (): void => {
        t.cancel();
        waiters.delete(done);
        resolve();
      };
      const t = this.clock.setTimeout(done, Math.max(1, ms), { keepAlive: false });
      waiters.add(done);
    });
  }

  private notifyLeaderMayHaveChanged(): void {
    if (this.leaderChangeWaiters.size === 0) return;
    for (const w of [...this.leaderChangeWaiters]) w();
  }

  /** The transport saw a stream to or from `peer` come up or go down. */
  private onPeerConnection(peer: string, connected: boolean): void {
    if (connected) {
      this.maybeCampaignAtStart();
      this.notifyLeaderMayHaveChanged();
      return;
    }
    // Answers come back on the peer's own stream and requests go out on ours: with either
    // down, requests waiting on that peer would otherwise wait out their deadline.
    this.forwards.failPeer(peer, `the connection to ${peer} dropped`);
  }

  /**
   * Just started, no leader heard from, and a quorum of voters reachable (counting this
   * node): elect within a few ticks rather than a whole election timeout (a restarted
   * cluster is writable sooner). Once per process: after the first leader, silence is what
   * the election timeout is for.
   */
  private maybeCampaignAtStart(): void {
    if (!this.startElectionPending || this.closed) return;
    if (this.soft.leader !== null) {
      this.startElectionPending = false;
      return;
    }
    const voters = this.conf.voters;
    const reachable = voters.filter((v) => v === this.id || this.transport.isConnected(v)).length;
    if (reachable <= voters.length / 2) return;
    this.startElectionPending = false;
    this.log.debug({ reachable, voters: voters.length }, 'no leader yet and a quorum reachable: electing early');
    this.raw.campaignSoon();
    this.kick();
  }

  /**
   * A dial to `peer` was refused: its process is gone. If it was our leader, elect now
   * rather than after a full election timeout, and fail what waits on it.
   */
  private onPeerRefused(peer: string): void {
    if (this.closed) return;
    this.forwards.failPeer(peer, `${peer} is down (connection refused)`);
    if (this.soft.role !== 'leader' && this.soft.leader === peer) {
      this.log.info({ leader: peer }, 'leader is down (connection refused); electing early');
      this.raw.leaderUnreachable(peer);
      this.kick();
    }
  }

  /**
   * A heartbeat for a session; any node takes it and the leader keeps the deadline. A
   * health report riding on it goes to the leader's HealthTracker for the session's instances.
   */
  async keepalive(sessionId: string, timeoutMs: number, report?: HealthReport): Promise<KeepaliveOutcome> {
    return this.router.route<KeepaliveOutcome>(
      {
        // A new leader answers only once caught up with its predecessors (dutiesTerm).
        here: () => this.duties.active(),
        runHere: () => this.duties.keepalive(sessionId, report),
        forward: (leader, left) =>
          this.forwards.request<KeepaliveOutcome>(leader, left, (req) =>
            this.transport.send(
              leader,
              report === undefined
                ? { kind: 'keepalive', req, sessionId }
                : { kind: 'keepalive', req, sessionId, report },
            ),
          ),
        // A keepalive is idempotent: try again whatever became of it while the deadline allows.
        retryable: (err) =>
          err instanceof ForwardFailure ||
          (err instanceof NodeError && (err.code === 'TIMEOUT' || err.code === 'NO_LEADER')),
        onDeadline: () => new NodeError('NO_LEADER', 'no leader to take the keepalive', null),
        waitMs: 50,
        // Short attempts: if the leader just died, the next attempt goes to its successor
        // well within the session's TTL.
        attemptMs: 1000,
      },
      timeoutMs,
    );
  }

  /** The leader's view of provider reports; null on a follower (reports go to the leader only). */
  healthReports(): readonly TrackedHealth[] | null {
    return this.duties.healthReports();
  }

  /** Receives timings and events for metrics; replaces any earlier observer. */
  setObserver(observer: NodeObserver): void {
    this.observer = observer;
  }

  /**
   * Test-only: drop peer messages to and from these nodes, optionally only some kinds (the
   * transport's fault hook), and make each log compaction take `compactDelayMs` longer and
   * each Raft write `persistDelayMs` longer (a slow fsync).
   */
  setFaults(faults: {
    dropTo?: readonly string[];
    dropFrom?: readonly string[];
    kinds?: readonly string[];
    compactDelayMs?: number;
    persistDelayMs?: number;
  }): void {
    this.transport.setFaults(faults);
    this.ready.compactDelayMs = faults.compactDelayMs ?? 0;
    this.ready.persistDelayMs = faults.persistDelayMs ?? 0;
  }

  // ---- membership -------------------------------------------------------------------

  /**
   * Adds a member as a learner (it receives the log but does not vote); the leader
   * promotes it to voter once it has caught up. Forwarded to the leader from followers.
   */
  addMember(id: string, address: string, timeoutMs: number): Promise<AdminResult> {
    return this.admin({ type: 'addMember', id, address }, timeoutMs);
  }

  removeMember(id: string, timeoutMs: number): Promise<AdminResult> {
    return this.admin({ type: 'removeMember', id }, timeoutMs);
  }

  /** Hands leadership to `to`, or (undefined) to the best-placed other voter. */
  transferLeadershipTo(to: string | undefined, timeoutMs: number): Promise<AdminResult> {
    return this.admin(to === undefined ? { type: 'transfer' } : { type: 'transfer', to }, timeoutMs);
  }

  private admin(op: AdminOp, timeoutMs: number): Promise<AdminResult> {
    return this.router.route<AdminResult>(
      {
        here: () => this.soft.role === 'leader',
        runHere: (left) => this.membership.run(op, left),
        // Not leader-bound: a transfer moves leadership itself, and must not fail for it.
        forward: (leader, left) =>
          this.forwards.request<AdminResult>(
            leader,
            left,
            (req) => this.transport.send(leader, { kind: 'admin', req, op }),
            false,
          ),
        // Only a request that never left this node (the transport refused it) goes again.
        retryable: (err) => err instanceof ForwardFailure && err.kind === 'not-sent',
        onDeadline: () => new NodeError('NO_LEADER', 'no leader to take the cluster operation', null),
        waitMs: 100,
      },
      timeoutMs,
    );
  }

  // ---- peers ------------------------------------------------------------------------

  private onPeerMessage(from: string, m: PeerMessage): void {
    if (this.closed) return;
    switch (m.kind) {
      case 'raft':
        this.raw.step(m.msg);
        this.kick();
        return;
      case 'propose':
        this.handleForwardedProposal(from, m.req, m.data);
        return;
      case 'proposeResult':
        this.forwards.settle(m.req, m.outcome);
        return;
      case 'keepalive': {
        if (!this.duties.active()) {
          // The sender retries (a new leader catching up answers within a round trip or two).
          const why = this.soft.role === 'leader' ? 'the new leader is still applying earlier entries' : undefined;
          this.transport.send(from, { kind: 'keepaliveResult', req: m.req, outcome: notLeader(this.soft.leader, why) });
          return;
        }
        const outcome = this.duties.keepalive(m.sessionId, m.report);
        this.transport.send(from, { kind: 'keepaliveResult', req: m.req, outcome: { ok: true, value: outcome } });
        return;
      }
      case 'keepaliveResult':
        this.forwards.settle(m.req, m.outcome);
        return;
      case 'status':
        this.peerStatus.set(from, { ...m.status, at: this.clock.wallNow() });
        return;
      case 'admin':
        if (this.soft.role !== 'leader') {
          this.transport.send(from, { kind: 'adminResult', req: m.req, outcome: notLeader(this.soft.leader) });
          return;
        }
        this.membership.run(m.op, 10_000).then(
          (value) => this.transport.send(from, { kind: 'adminResult', req: m.req, outcome: { ok: true, value } }),
          (err: unknown) => this.transport.send(from, { kind: 'adminResult', req: m.req, outcome: toOutcome(err) }),
        );
        return;
      case 'adminResult':
        this.forwards.settle(m.req, m.outcome);
        return;
      case 'hashRequest':
        this.stateHash(m.index, 10_000).then(
          (value) => this.transport.send(from, { kind: 'hashResult', req: m.req, outcome: { ok: true, value } }),
          (err: unknown) => this.transport.send(from, { kind: 'hashResult', req: m.req, outcome: toOutcome(err) }),
        );
        return;
      case 'hashResult':
        this.forwards.settle(m.req, m.outcome);
        return;
      case 'corrupt':
        this.integrity.markSelfCorrupt(from, m.detail);
        return;
    }
  }

  private handleForwardedProposal(from: string, req: number, data: Uint8Array): void {
    if (this.soft.role !== 'leader') {
      this.transport.send(from, { kind: 'proposeResult', req, outcome: notLeader(this.soft.leader) });
      return;
    }
    // A view, not a copy: the transport's decoded binary values already own their memory.
    this.proposer.propose(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10_000).then(
      (value) => this.transport.send(from, { kind: 'proposeResult', req, outcome: { ok: true, value } }),
      (err: unknown) => this.transport.send(from, { kind: 'proposeResult', req, outcome: toOutcome(err) }),
    );
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

  // ---- the Ready loop ---------------------------------------------------------------

  private kick(): void {
    this.ready.kick();
  }

  // ---- leadership and sessions ------------------------------------------------------

  private onSoftState(soft: SoftState): void {
    const prev = this.soft;
    this.soft = soft;
    if (soft.leader !== null) this.startElectionPending = false;
    if (soft.leader !== prev.leader) {
      // The old leader will not answer what was forwarded to it (or, if it lost leadership,
      // answers it dropped): fail it now and let submit() retry where that is safe.
      if (prev.leader !== null && prev.leader !== this.id)
        this.forwards.failPeer(prev.leader, `leadership moved from ${prev.leader}`, 'leader-bound');
      this.notifyLeaderMayHaveChanged();
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

  /** Every expiryCheckMs: one call per duty. */
  private onDutyTimer(): void {
    if (this.closed || this.retireIfRemoved()) return;
    this.membership.maybePromoteLearners();
    this.duties.checkExpiry();
    this.duties.checkClusterVersion();
  }

  /** Removed and handed over (two election timeouts since): stop taking part; the process should be stopped. */
  private retireIfRemoved(): boolean {
    if (!this.membership.retired(2 * (this.options.electionTicks ?? 10) * (this.options.tickMs ?? 50))) return false;
    this.tickTimer?.cancel();
    this.tickTimer = null;
    return true;
  }

  private startTimers(): void {
    const tickMs = this.options.tickMs ?? 50;
    this.tickTimer = this.clock.setInterval(() => {
      this.raw.tick();
      this.kick();
    }, tickMs);
    this.expiryTimer = this.clock.setInterval(() => this.onDutyTimer(), this.expiryCheckMs);
    this.statusTimer = this.clock.setInterval(() => this.gossipStatus(), 500);
    const checkEvery = this.options.corruptionCheckIntervalMs ?? 0;
    if (checkEvery > 0) {
      this.integrityTimer = this.clock.setInterval(() => {
        if (this.soft.role !== 'leader' || this.closed) return;
        this.integrity
          .run(Math.min(checkEvery, 30_000))
          .catch((err: unknown) => this.log.warn({ err }, 'corruption check failed to run'));
      }, checkEvery);
    }
  }

  private selfStatus(): PeerStatus {
    const st = this.raw.status();
    return {
      role: st.softState.role,
      term: st.hardState.term,
      commitIndex: st.hardState.commit,
      appliedIndex: this.registry.appliedIndex,
      http: this.options.advertiseHttp ?? null,
      slowestWriteMs: this.ready.slowestRecentWriteMs(),
      stateMachineVersion: this.buildVersion,
    };
  }

  /**
   * What every current member supports, for raising the cluster version: the lowest version
   * reported, a member not heard from within STATUS_FRESH_MS (or reporting none: an older
   * build) counting as 1, so a member just restarted on an older build holds it back.
   */
  private membersVersion(): number {
    const conf = this.raw.status().conf;
    const now = this.clock.wallNow();
    let lowest = this.buildVersion;
    for (const id of [...conf.voters, ...conf.learners]) {
      if (id === this.id) continue;
      const st = this.peerStatus.get(id);
      const v =
        st !== undefined && now - st.at <= STATUS_FRESH_MS
          ? (st.stateMachineVersion ?? BASE_CLUSTER_VERSION)
          : BASE_CLUSTER_VERSION;
      lowest = Math.min(lowest, v);
    }
    return lowest;
  }

  private gossipStatus(): void {
    const status = this.selfStatus();
    const conf = this.raw.status().conf;
    for (const id of [...conf.voters, ...conf.learners])
      if (id !== this.id) this.transport.send(id, { kind: 'status', status });
  }

  // ---- lifecycle --------------------------------------------------------------------

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
    this.tickTimer?.cancel();
    this.expiryTimer?.cancel();
    this.statusTimer?.cancel();
    this.integrityTimer?.cancel();
    this.snapshots.close();
    const err = new NodeError('SHUTTING_DOWN', 'the node is shutting down');
    this.proposer.close(err);
    this.proposals.close(err);
    this.forwards.close(err);
    this.notifyLeaderMayHaveChanged();
    this.reads.close(err);
    this.ready.close(err);
    await this.transport.close();
    // Let an in-flight Ready finish so nothing half-written is left behind.
    await this.ready.idle();
    await this.storage.close();
  }
}

/** A peer message's kind for the test fault hook: `raft:<type>` or the node message's kind. */
function peerMessageKind(m: PeerMessage): string {
  return m.kind === 'raft' ? `raft:${m.msg.type}` : m.kind;
}
