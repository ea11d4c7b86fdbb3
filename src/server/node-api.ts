/**
 * What the HTTP layer uses of a node. A structural slice of RollcallNode, so the routes can
 * be exercised in-process against a registry without Raft (test/api-fake-node.ts).
 */
import type { RollcallNode } from '../node/index.js';

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
  readonly setObserver?: RollcallNode['setObserver'];
  readonly pendingWork?: RollcallNode['pendingWork'];
  /** GET /v1/snapshot (a node without it, like the in-memory test node, answers INTERNAL). */
  readonly openBackup?: RollcallNode['openBackup'];
  readonly clusterId?: RollcallNode['clusterId'];
  /** Fault injection (PUT /v1/test/faults); only a node started with `faults: true` has it working. */
  readonly setFaults?: RollcallNode['setFaults'];
};

/** What the monitoring routes (services listing, alerts, health reports and policy) read of a node. */
export type MonitorNode = Pick<NodeApi, 'id' | 'leader' | 'status' | 'readBarrier' | 'registry'>;
