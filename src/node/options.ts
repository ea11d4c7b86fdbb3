/** How a node is started (RollcallNode.start), and what a metrics exporter may observe of it. */
import type { HealthPolicy } from '../health/index.js';
import type { Logger } from '../log/index.js';
import type { RegistryEvent, SessionTrackerOptions } from '../registry/index.js';
import type { Faults, PeerAddress, PeerTlsOptions } from '../transport/index.js';
import type { NodeClock } from './clock.js';

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
  /**
   * `--initial-cluster-token`: names the cluster this node founds (an empty data directory,
   * not `join`); its id is derived from it and the founding member ids (foundingClusterId in
   * src/storage/cluster-id.ts). Unused otherwise.
   */
  readonly initialClusterToken?: string;
  /**
   * A founding member (an empty data directory, not `join`) asks its peers for this long
   * whether their cluster is past its founding, and refuses to start if one says so
   * (founding-guard.ts). Default 2000; 0 skips the question.
   */
  readonly foundingProbeMs?: number;
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

/** Test-only faults (RollcallNode.setFaults, PUT /v1/test/faults): the transport's dropped messages, and a slow disk. */
export interface NodeFaults extends Faults {
  /** Each log compaction takes this much longer. */
  readonly compactDelayMs?: number;
  /** Each synced Raft write takes this much longer (a slow fsync). */
  readonly persistDelayMs?: number;
  /** Each write of applied entries to the state machine's LevelDB takes this much longer. */
  readonly stateWriteDelayMs?: number;
}
