/**
 * Majority arithmetic over a configured set of voters. Quorums are always computed over
 * the configuration, never over whoever happened to answer.
 */
import type { NodeId } from './messages.js';

export type VoteResult = 'won' | 'lost' | 'pending';

export function quorumSize(voterCount: number): number {
  return Math.floor(voterCount / 2) + 1;
}

/**
 * The largest index that a majority of voters has matched. With no voters there is no
 * quorum and nothing can be committed, so the answer is 0.
 */
export function committedIndex(voters: readonly NodeId[], match: (id: NodeId) => number): number {
  const n = voters.length;
  if (n === 0) return 0;
  if (n === 1) return match(voters[0]!);
  const matched = new Array<number>(n);
  for (let i = 0; i < n; i++) matched[i] = match(voters[i]!);
  matched.sort((a, b) => b - a);
  // After sorting descending, the quorum-th largest value is matched by a quorum.
  return matched[quorumSize(n) - 1]!;
}

/** Election outcome given the votes received so far (true = granted). */
export function voteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const q = quorumSize(voters.length);
  let granted = 0;
  let rejected = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === true) granted++;
    else if (v === false) rejected++;
  }
  if (granted >= q) return 'won';
  if (rejected > voters.length - q) return 'lost';
  return 'pending';
}

/** Whether `active` voters make up a quorum (CheckQuorum, ReadIndex confirmation). */
export function hasQuorum(voters: readonly NodeId[], active: (id: NodeId) => boolean): boolean {
  let n = 0;
  for (const id of voters) if (active(id)) n++;
  return n >= quorumSize(voters.length);
}
