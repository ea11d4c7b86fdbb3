/**
 * What the HTTP layer uses of a node. A structural slice of RollcallNode, so the routes can
 * be exercised in-process against a registry without Raft (test/api-fake-node.ts).
 */
import type { RollcallNode } from '../node/index.js';

export type NodeApi = Pick<
  RollcallNode,
  'id' | 'leader' | 'submit' | 'readBarrier' | 'keepalive' | 'status' | 'registry'
> & { readonly setObserver?: RollcallNode['setObserver']; readonly pendingWork?: RollcallNode['pendingWork'] };
