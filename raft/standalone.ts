/**
 * Restarting one survivor as a cluster of its own (`--force-new-cluster`), the way etcd's
 * restartAsStandaloneNode does it: the membership is rewritten through the log, never
 * behind its back. The survivor's log gets conf change entries that remove every other
 * member (and make the survivor a voter if it was a learner), appended after its last
 * entry in its current term, and the commit index moves to the last of them. On restart
 * the host applies them like any committed entries, so the state machine, the conf state
 * a later snapshot carries and every member added afterwards (which replays this log or
 * gets a snapshot of it) agree on how the membership became {survivor}.
 *
 * Unlike etcd, which discards the entries past the survivor's commit index, we keep and
 * commit them: the survivor's commit index lags the leader's by up to a heartbeat, so an
 * entry the lost majority committed (and the leader acknowledged) is often in the
 * survivor's log without being known committed there. Entries that were never committed
 * were never acknowledged (a write is acknowledged only once committed and applied), so
 * their clients saw an unknown outcome, which committing them now still honours; a retry
 * carrying the same client request id is applied once.
 *
 * Pure: the host reads its storage, calls standalonePlan, and persists the result before
 * it builds its RawNode.
 */
import { applyChange, decodeConfChange, encodeConfChange } from './confchange.js';
import type { ConfChange, ConfState, Entry, HardState, NodeId } from './messages.js';

export interface StandaloneInput {
  /** The survivor. */
  readonly self: NodeId;
  /** The membership as of the host's applied index (its state machine's, or its snapshot's). */
  readonly appliedConf: ConfState;
  /** Every entry after the applied index up to the last one in the log (committed or not). */
  readonly unapplied: readonly Entry[];
  readonly lastIndex: number;
  readonly hardState: HardState;
}

export interface StandalonePlan {
  /** To append after `lastIndex` (empty when the membership is already {self}). */
  readonly entries: readonly Entry[];
  /** Commit = the last index after the append: every entry in the survivor's log is committed. */
  readonly hardState: HardState;
  /** The membership once everything is applied: {voters: [self], learners: []}. */
  readonly conf: ConfState;
  /** The membership the log held before the rewrite (after its unapplied conf changes). */
  readonly before: ConfState;
}

/**
 * The entries and hard state that turn `self`'s log into a one-member cluster's. A
 * no-op plan (no entries, commit unchanged) means there is nothing to do.
 */
export function standalonePlan(input: StandaloneInput): StandalonePlan {
  const { self, lastIndex, hardState } = input;
  // The membership at the end of the log: the conf changes not yet applied count too.
  let before = input.appliedConf;
  for (const e of input.unapplied) {
    if (e.type !== 'conf') continue;
    const res = applyChange(before, decodeConfChange(e.data));
    // A refused change is a no-op for the host too (it keeps its conf).
    if (res.ok) before = res.conf;
  }
  const changes: ConfChange[] = [];
  // First make self a voter, so that no removal below removes the last voter.
  if (!before.voters.includes(self)) changes.push({ type: 'addVoter', node: self });
  for (const id of [...before.voters, ...before.learners].sort())
    if (id !== self) changes.push({ type: 'removeNode', node: id });
  let conf = before;
  const entries: Entry[] = changes.map((cc, i) => {
    const res = applyChange(conf, cc);
    if (!res.ok) throw new Error(`raft: standalone plan: ${res.reason}`);
    conf = res.conf;
    return { index: lastIndex + 1 + i, term: hardState.term, type: 'conf' as const, data: encodeConfChange(cc) };
  });
  const last = lastIndex + entries.length;
  return { entries, hardState: { ...hardState, commit: Math.max(hardState.commit, last) }, conf, before };
}
