/** What a node tells about itself and the members it knows (GET /v1/cluster, metrics, probes). */
import type { ConfState, RawNode, SoftState } from '../../raft/index.js';
import type { Registry, SessionTracker } from '../registry/index.js';
import type { PeerTransport } from '../transport/index.js';
import type { NodeClock } from './clock.js';
import { toWall } from './clock.js';
import type { MemberStatus } from './member-status.js';
import type { PeerMessage, PeerStatus } from './peer-messages.js';

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
  /** In the started-member record as of this node's applied index (cluster version 6; docs/registry.md). */
  readonly started?: boolean;
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

/** What the node's status is read from. */
export interface StatusSources {
  readonly id: string;
  readonly raw: RawNode;
  readonly clock: NodeClock;
  readonly registry: Registry;
  readonly tracker: SessionTracker;
  readonly memberStatus: MemberStatus;
  readonly transport: Pick<PeerTransport<PeerMessage>, 'stats'>;
  readonly buildVersion: number;
}

/** The node's status now: the core's view, the applied state, and each member as this node sees it. */
export function nodeStatus(s: StatusSources): NodeStatus {
  const st = s.raw.status();
  const tstats = s.transport.stats();
  const progress = new Map(st.progress.map((p) => [p.id, p]));
  const ids = [...st.conf.voters, ...st.conf.learners];
  const members: MemberView[] = ids.map((id) => {
    const peer = tstats.peers[id];
    return {
      id,
      isLearner: st.conf.learners.includes(id),
      match: id === s.id ? st.lastIndex : (progress.get(id)?.match ?? null),
      lastContact: id === s.id ? s.clock.wallNow() : (peer?.lastContact ?? null),
      connected: id === s.id ? true : (peer?.connected ?? false),
      reported: s.memberStatus.reported(id),
      started: s.registry.hasStarted(id),
    };
  });
  return {
    id: s.id,
    role: st.softState.role,
    leader: st.softState.leader,
    term: st.hardState.term,
    commitIndex: st.hardState.commit,
    appliedIndex: s.registry.appliedIndex,
    lastIndex: st.lastIndex,
    firstIndex: st.firstIndex,
    revision: s.registry.revision,
    conf: st.conf,
    clusterVersion: s.registry.clusterVersion,
    buildVersion: s.buildVersion,
    supportedVersion: s.memberStatus.supportedVersion(),
    members,
    protection: s.tracker.protection().map((p) => ({
      ...p,
      enteredAt: toWall(s.clock, p.enteredAt),
      settledSince: p.settledSince === null ? null : toWall(s.clock, p.settledSince),
    })),
  };
}
