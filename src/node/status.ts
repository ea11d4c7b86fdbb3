/** What a node tells about itself and the members it knows (GET /v1/cluster, metrics, probes). */
import type { ConfState, SoftState } from '../../raft/index.js';
import type { SessionTracker } from '../registry/index.js';
import type { PeerStatus } from './peer-messages.js';

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
