/** A Rollcall node: Raft core + LevelDB storage + registry + peer transport, driven by one Ready loop. */
export { NodeError, type NodeErrorCode } from './errors.js';
export { type MemberView, type NodeObserver, type NodeOptions, type NodeStatus, RollcallNode } from './node.js';
export type { PeerMessage, ProposalResult } from './peer-messages.js';
