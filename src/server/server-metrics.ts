/**
 * The metrics of one node, in Prometheus text format at GET /metrics.
 *
 * Read at scrape time from the node and registry: term, role, commit/applied index, apply
 * lag, revision, sessions, instances, watchers, waiting queries, process memory. Counted
 * here: HTTP latency by route pattern, writes proposed through this node's API and their
 * latency until applied here, leader changes (sampled every 100 ms: the node exposes no
 * leader-change hook yet), auth failures. Not available from the node yet (see
 * docs/api.md): fsync latency, apply latency per batch, proposals made by the leader itself.
 */
import type { NodeStatus } from '../node/index.js';
import { total } from './listing/counts.js';
import { InstanceIndex } from './listing/instance-index.js';
import { LoopDelayMonitor, type LoopDelaySnapshot } from './loop-delay.js';
import {
  type Counter,
  type CounterChild,
  type Histogram,
  type HistogramChild,
  LATENCY_BUCKETS,
  MetricsRegistry,
} from './metrics.js';
import type { NodeApi } from './node-api.js';
import type { WatchStats } from './watch/hub.js';

export interface MetricSources {
  readonly watch: () => WatchStats;
  readonly blockingQueries: () => number;
  readonly revisionWaits: () => number;
  /** Refused TLS handshakes on this node's listeners, by listener and reason (none without TLS). */
  readonly tlsRefusals?: () => readonly {
    readonly labels: { listener: string; reason: string };
    readonly value: number;
  }[];
}

/** Fan-out costs run from tens of µs (a few watchers) to tens of ms (thousands). */
const WATCH_FAN_OUT_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
];

const ROLES = ['leader', 'follower', 'candidate', 'precandidate'] as const;

/** The outcome of a write proposed through this node: applied, refused by the state machine, or failed. */
export type ProposalOutcome = 'ok' | 'rejected' | 'error';

/** The bound series of one command: found once per command, then no lookup per write. */
interface CommandSeries {
  readonly duration: HistogramChild;
  readonly ok: CounterChild;
  readonly rejected: CounterChild;
  readonly error: CounterChild;
}

export class ServerMetrics {
  readonly registry = new MetricsRegistry();
  readonly httpDuration: Histogram;
  readonly proposals: Counter;
  readonly proposalDuration: Histogram;
  readonly leaderChanges: Counter;
  readonly authFailures: Counter;
  /** How long each live watch fan-out took (WatchHubOptions.onFanOut feeds it). */
  readonly watchFanOut: HistogramChild;
  private status: NodeStatus | null = null;
  private watch: WatchStats | null = null;
  private loop: LoopDelaySnapshot | null = null;
  private readonly loopDelay = new LoopDelayMonitor();
  private lastLeader: string | null = null;
  private lastTerm = -1;
  /** Null when the node reports leader changes itself (setObserver): then there is nothing to sample. */
  private readonly sampler: NodeJS.Timeout | null;
  /** route pattern → method → status → series of httpDuration, so a request builds no label object or key. */
  private readonly httpSeries = new Map<string, Map<string, Map<number, HistogramChild>>>();
  private readonly commandSeries = new Map<string, CommandSeries>();

  constructor(
    private readonly node: NodeApi,
    sources: MetricSources,
  ) {
    const r = this.registry;
    r.beforeRender(() => {
      this.status = node.status();
      this.watch = sources.watch();
      this.loop = this.loopDelay.snapshot();
    });
    const st = (): NodeStatus => this.status ?? node.status();
    const ws = (): WatchStats => this.watch ?? sources.watch();

    r.gauge('rollcall_term', 'Current Raft term as this node knows it.', () => st().term);
    r.gauge('rollcall_role', "This node's Raft role (1 for the current role).", () =>
      ROLES.map((role) => ({ labels: { role }, value: st().role === role ? 1 : 0 })),
    );
    r.gauge('rollcall_leader_known', '1 when this node knows a leader.', () => (st().leader === null ? 0 : 1));
    this.leaderChanges = r.counter(
      'rollcall_leader_changes_total',
      'Times this node saw a new leader (a new leader id or term), sampled every 100 ms.',
    );
    r.gauge('rollcall_commit_index', 'Highest log index known committed.', () => st().commitIndex);
    r.gauge(
      'rollcall_applied_index',
      'Highest log index applied to the registry on this node.',
      () => st().appliedIndex,
    );
    r.gauge('rollcall_last_index', "Highest index in this node's log, committed or not.", () => st().lastIndex);
    r.gauge('rollcall_apply_lag_entries', 'Committed entries not yet applied on this node.', () =>
      Math.max(0, st().commitIndex - st().appliedIndex),
    );
    r.gauge('rollcall_log_entries', "Entries in this node's log (after compaction).", () =>
      Math.max(0, st().lastIndex - st().firstIndex + 1),
    );
    r.gauge('rollcall_revision', 'Registry revision applied on this node.', () => st().revision);
    r.gauge(
      'rollcall_history_floor_revision',
      'Oldest revision a watch can resume after on this node.',
      () => node.registry.history.floor,
    );
    r.gauge('rollcall_sessions', 'Open sessions.', () => node.registry.sessions().length);
    // From the listing index when the app keeps one (it does): no pass over every service per scrape.
    r.gauge('rollcall_instances', 'Registered instances (disabled and suspect included).', () => {
      const index = InstanceIndex.live(node.registry);
      return index === null
        ? node.registry.listServices().reduce((n, s) => n + s.instanceCount, 0)
        : total(index.namespaceCounts(undefined));
    });
    r.gauge(
      'rollcall_services',
      'Services with at least one instance.',
      () => InstanceIndex.live(node.registry)?.serviceCount(undefined) ?? node.registry.listServices().length,
    );
    this.proposals = r.counter(
      'rollcall_proposals_total',
      "Writes proposed through this node's API, by command and outcome (ok, rejected by the state machine, error).",
      ['command', 'outcome'],
    );
    this.proposalDuration = r.histogram(
      'rollcall_proposal_duration_seconds',
      'Time from proposing a write through this node until it is committed and applied here.',
      LATENCY_BUCKETS,
      ['command'],
    );
    r.gauge('rollcall_watchers', 'Open watch streams by state.', () => {
      const w = ws();
      return [
        { labels: { state: 'live' }, value: w.live },
        { labels: { state: 'catchup' }, value: w.catchup },
        { labels: { state: 'closing' }, value: w.closing },
      ];
    });
    r.gauge(
      'rollcall_watch_buffered_bytes',
      'Bytes written to watch streams and not yet flushed to the network.',
      () => ws().bufferedBytes,
    );
    r.counterFrom('rollcall_watch_opened_total', 'Watch streams opened.', () => ws().opened);
    r.counterFrom('rollcall_watch_frames_sent_total', 'SSE frames written to watchers.', () => ws().framesSent);
    r.counterFrom(
      'rollcall_watch_live_writes_total',
      'Writes of live changes to watchers (frames sent over writes: changes per write).',
      () => ws().liveWrites,
    );
    r.counterFrom('rollcall_watch_overflows_total', 'Watchers cut because they read too slowly.', () => ws().overflows);
    r.counterFrom('rollcall_watch_compacted_total', 'Watchers told their revision is compacted.', () => ws().compacted);
    this.watchFanOut = r
      .histogram(
        'rollcall_watch_fanout_seconds',
        'Time one live watch fan-out took (one write per watcher). Over 2.8 ms at the default fanOutShare 0.1, the next fan-out waits the 25-ms cap, not 9x this.',
        WATCH_FAN_OUT_BUCKETS,
        [],
      )
      .labels();
    r.gauge('rollcall_blocking_queries', 'Blocking queries waiting for a change.', sources.blockingQueries);
    r.gauge('rollcall_min_revision_waits', 'Reads waiting for ?minRevision.', sources.revisionWaits);
    this.authFailures = r.counter('rollcall_auth_failures_total', 'Requests refused by token auth, by reason.', [
      'reason',
    ]);
    const tlsRefusals = sources.tlsRefusals;
    r.counterFrom(
      'rollcall_tls_handshake_failures_total',
      'TLS handshakes this node refused (or that clients gave up), by listener (api, consul, dns, probe, peer) and reason (CERT_HAS_EXPIRED, ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE, ...).',
      () => (tlsRefusals === undefined ? [] : tlsRefusals()),
    );
    this.httpDuration = r.histogram(
      'rollcall_http_request_duration_seconds',
      'HTTP request latency by method, route pattern and status.',
      LATENCY_BUCKETS,
      ['method', 'route', 'status'],
    );
    const loop = (): LoopDelaySnapshot => this.loop ?? this.loopDelay.snapshot();
    r.summaryFrom(
      'rollcall_event_loop_delay_seconds',
      'How late the event loop ran its timers (perf_hooks.monitorEventLoopDelay): quantiles over the last 10-20 s; sum and count since start. A p99 near the Raft tick (50 ms) means some work holds the loop.',
      loop,
    );
    r.gauge(
      'rollcall_event_loop_delay_max_seconds',
      'The longest event-loop delay in the last 10-20 s.',
      () => loop().max,
    );
    r.gauge(
      'rollcall_event_loop_turn_cpu_seconds',
      'CPU time the process used per 10 ms of event-loop timer, by quantile over the last 10-20 s: what our own work costs a turn, unlike the delay, which also counts time the machine gave other processes.',
      () => loop().turnCpu.quantiles.map(([q, v]) => ({ labels: { quantile: String(q) }, value: v })),
    );
    r.gauge(
      'rollcall_event_loop_turn_cpu_max_seconds',
      'The most CPU time used per 10 ms of event-loop timer in the last 10-20 s.',
      () => loop().turnCpu.max,
    );
    r.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.', () => process.memoryUsage.rss());
    r.gauge('nodejs_heap_used_bytes', 'V8 heap in use, in bytes.', () => process.memoryUsage().heapUsed);
    const started = Math.floor(Date.now() / 1000 - process.uptime());
    r.gauge('process_start_time_seconds', 'Start time of the process since the Unix epoch, in seconds.', () => started);

    const fsync = r
      .histogram(
        'rollcall_fsync_duration_seconds',
        'Time to make one Raft Ready durable (one synced LevelDB batch: entries, hard state, snapshot).',
        LATENCY_BUCKETS,
        [],
      )
      .labels();
    const fsyncEntries = r
      .counter(
        'rollcall_persisted_entries_total',
        'Log entries made durable (their count over fsyncs is the group-commit factor).',
        [],
      )
      .labels();
    const apply = r
      .histogram(
        'rollcall_apply_duration_seconds',
        'Time to apply one batch of committed entries, including its LevelDB write.',
        LATENCY_BUCKETS,
        [],
      )
      .labels();
    const applied = r.counter('rollcall_applied_entries_total', 'Committed entries applied on this node.', []).labels();
    const leaderProposals = r.counter(
      'rollcall_leader_proposals_total',
      'Commands the leader proposed itself (expire, markSuspect, clearSuspect), by kind.',
      ['kind'],
    );
    if (node.setObserver) {
      node.setObserver({
        persisted: (seconds, entries) => {
          fsync.observe(seconds);
          fsyncEntries.inc(entries);
        },
        applied: (seconds, entries) => {
          apply.observe(seconds);
          applied.inc(entries);
        },
        leaderChanged: () => this.leaderChanges.inc(),
        leaderProposed: (kind, count) => leaderProposals.inc({ kind }, count),
      });
    }
    // A node without setObserver (a test double) is polled for leader changes; a real node
    // reports them, and a timer that wakes every node 10 times a second to do nothing is
    // not kept.
    if (node.setObserver) this.sampler = null;
    else {
      this.sample();
      this.sampler = setInterval(() => this.sample(), 100);
      this.sampler.unref();
    }
  }

  /**
   * One HTTP request's latency (`route`: the route pattern, undefined when nothing matched).
   * Called for every request: the series is found through maps, without a label object or key.
   */
  observeHttp(method: string, route: string | undefined, status: number, seconds: number): void {
    const r = route ?? 'unmatched';
    let byMethod = this.httpSeries.get(r);
    if (byMethod === undefined) this.httpSeries.set(r, (byMethod = new Map()));
    let byStatus = byMethod.get(method);
    if (byStatus === undefined) byMethod.set(method, (byStatus = new Map()));
    let child = byStatus.get(status);
    if (child === undefined) byStatus.set(status, (child = this.httpDuration.labels(method, r, String(status))));
    child.observe(seconds);
  }

  /** A write proposed through this node's API ended; `seconds` until applied here, null when it failed. */
  proposed(command: string, outcome: ProposalOutcome, seconds: number | null): void {
    let c = this.commandSeries.get(command);
    if (c === undefined) {
      c = {
        duration: this.proposalDuration.labels(command),
        ok: this.proposals.labels(command, 'ok'),
        rejected: this.proposals.labels(command, 'rejected'),
        error: this.proposals.labels(command, 'error'),
      };
      this.commandSeries.set(command, c);
    }
    if (seconds !== null) c.duration.observe(seconds);
    c[outcome].inc();
  }

  /** Metric names in the exposition, for the docs test. */
  render(): string {
    try {
      return this.registry.render();
    } finally {
      this.status = null;
      this.watch = null;
      this.loop = null;
    }
  }

  close(): void {
    if (this.sampler !== null) clearInterval(this.sampler);
    this.loopDelay.close();
  }

  private sample(): void {
    const leader = this.node.leader;
    if (leader === null) return;
    const term = this.node.status().term;
    if (leader !== this.lastLeader || term !== this.lastTerm) {
      this.leaderChanges.inc();
      this.lastLeader = leader;
      this.lastTerm = term;
    }
  }
}
