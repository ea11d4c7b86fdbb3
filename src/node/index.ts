/** A Rollcall node: Raft core + LevelDB storage + registry + peer transport, driven by one Ready loop. */

export { type NodeClock, systemClock, type Timer } from './clock.js';
export { NodeError, type NodeErrorCode } from './errors.js';
export {
  DEFAULT_FOUNDING_PROBE_MS,
  MEMBER_BOOTSTRAPPED_EXIT_CODE,
  MemberBootstrappedError,
} from './founding-guard.js';
export { RollcallNode } from './node.js';
export type { NodeFaults, NodeObserver, NodeOptions } from './options.js';
export type { PeerMessage, ProposalResult } from './peer-messages.js';
export type { MemberView, NodeStatus } from './status.js';
