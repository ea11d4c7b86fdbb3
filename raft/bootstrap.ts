/**
 * Bootstrapping a new cluster, as etcd does: the initial membership is written into
 * the log as committed conf change entries at term 1, so every node, including one
 * that joins much later and replays the log from the start, derives the same
 * membership from the log alone (or from a snapshot, which carries it).
 */
import { encodeConfChange } from './confchange.js';
import type { Entry, HardState, NodeId } from './messages.js';

export function bootstrapEntries(voters: readonly NodeId[]): Entry[] {
  return voters.map((node, i) => ({
    index: i + 1,
    term: 1,
    type: 'conf' as const,
    data: encodeConfChange({ type: 'addVoter', node }),
  }));
}

/** The hard state that goes with {@link bootstrapEntries}: term 1, all of them committed. */
export function bootstrapHardState(voters: readonly NodeId[]): HardState {
  return { term: 1, vote: null, commit: voters.length };
}
