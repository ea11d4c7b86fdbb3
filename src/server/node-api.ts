/**
 * What the HTTP layer uses of a node. A structural slice of RollcallNode, so the routes can
 * be exercised in-process against a registry without Raft (test/api-fake-node.ts).
 */
import type { RollcallNode } from '../node/index.js';
import type { CorruptionChecker } from '../ops/corruption-check.js';

/**
 * What the corruption check says of this node (src/ops/corruption-check.ts): whether a check
 * marked it corrupt (it refuses reads: the native API, the Consul API, DNS, /readyz) and
 * which members the latest check found corrupt (the `node-corrupt` alerts). Required and
 * typed, so a node without it, or a rename, fails to compile rather than silently serving
 * reads from a corrupt state machine.
 */
export type NodeIntegrity = Pick<CorruptionChecker, 'selfCorruption' | 'corruptMembers'> &
  /** Tells the alert monitor to evaluate at once (a disarm resolves its alert without waiting a tick); absent: it waits for its timer. */
  Partial<Pick<CorruptionChecker, 'onChange'>>;

export type NodeApi = Pick<
  RollcallNode,
  | 'id'
  | 'leader'
  | 'submit'
  | 'readBarrier'
  | 'keepalive'
  | 'status'
  | 'registry'
  | 'addMember'
  | 'removeMember'
  | 'transferLeadershipTo'
> & {
  readonly integrity: NodeIntegrity;
  readonly setObserver?: RollcallNode['setObserver'];
  readonly pendingWork?: RollcallNode['pendingWork'];
  /** GET /v1/snapshot (a node without it, like the in-memory test node, answers INTERNAL). */
  readonly openBackup?: RollcallNode['openBackup'];
  readonly clusterId?: RollcallNode['clusterId'];
  /** POST /v1/cluster/check and its disarm (a node without them, like the in-memory test node, answers INTERNAL). */
  readonly checkCorruption?: RollcallNode['checkCorruption'];
  readonly disarmCorruption?: RollcallNode['disarmCorruption'];
  /** Fault injection (PUT /v1/test/faults); only a node started with `faults: true` has it working. */
  readonly setFaults?: RollcallNode['setFaults'];
};

/** What the monitoring routes (services listing, alerts, health reports and policy) read of a node. */
export type MonitorNode = Pick<NodeApi, 'id' | 'leader' | 'status' | 'readBarrier' | 'registry' | 'integrity'>;
