/**
 * Membership changes, one server at a time. The core allows one pending change at a
 * time, and only after the leader has committed an entry of its own term, which keeps
 * single-server changes safe (the fix to the bug in the original Raft dissertation).
 */
import type { ConfChange, ConfState } from './messages.js';

export type ConfChangeResult =
  | { readonly ok: true; readonly conf: ConfState }
  | { readonly ok: false; readonly reason: string };

export function applyChange(conf: ConfState, cc: ConfChange): ConfChangeResult {
  const voters = conf.voters.filter((v) => v !== cc.node);
  const learners = conf.learners.filter((l) => l !== cc.node);
  const isVoter = conf.voters.includes(cc.node);
  const isLearner = conf.learners.includes(cc.node);
  switch (cc.type) {
    case 'addVoter':
      if (isVoter) return { ok: false, reason: `${cc.node} is already a voter` };
      return { ok: true, conf: { voters: [...voters, cc.node].sort(), learners } };
    case 'addLearner':
      if (isLearner) return { ok: false, reason: `${cc.node} is already a learner` };
      // Demoting a voter to learner is allowed, but never the last voter.
      if (isVoter && voters.length === 0) return { ok: false, reason: 'cannot demote the last voter' };
      return { ok: true, conf: { voters, learners: [...learners, cc.node].sort() } };
    case 'removeNode':
      if (!isVoter && !isLearner) return { ok: false, reason: `${cc.node} is not a member` };
      if (isVoter && voters.length === 0) return { ok: false, reason: 'cannot remove the last voter' };
      return { ok: true, conf: { voters, learners } };
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Conf change entries carry JSON so the core needs no codec of the host's. */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify(cc));
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const v = JSON.parse(decoder.decode(data)) as { type?: unknown; node?: unknown; context?: unknown };
  if ((v.type === 'addVoter' || v.type === 'addLearner' || v.type === 'removeNode') && typeof v.node === 'string') {
    return typeof v.context === 'string'
      ? { type: v.type, node: v.node, context: v.context }
      : { type: v.type, node: v.node };
  }
  throw new Error('raft: malformed conf change entry');
}
