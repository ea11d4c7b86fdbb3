/**
 * At open, checks the state machine (LevelDB `sm`) against the Raft state (the WAL): two
 * stores, so a crash can leave them at different points. What each write order allows:
 *
 * - Applied entries are always in the log: an entry is fsynced into the WAL before it can
 *   be committed, and the node applies an entry only once a persist() that wrote it has
 *   returned (the Ready loop applies older entries while the next Ready is written, never
 *   the entries of the Ready being written: src/node/ready-order.ts).
 *   The applied index may be ahead of the durable hardState.commit (commit-only Readies are
 *   not synced): raft takes commit = max(hardState.commit, applied), bounded by lastIndex.
 * - Compaction makes the state machine durable (a synced LevelDB write) before its
 *   snapshot meta is written, so the state machine is never behind the compaction point.
 * - A snapshot install writes the state machine first (synced), then the WAL. A crash in
 *   between leaves a state machine applied to an index the log does not hold (or holds with
 *   another term). The state machine then IS the snapshot: roll the install forward, with
 *   the meta read from its reserved keys.
 *
 * A refusal here is never repaired by emptying the data directory and starting the node
 * again under the same id: the WAL holds its term, its vote and the entries it acknowledged,
 * so that node could vote twice in one term (two leaders) or be counted in a majority for
 * entries it no longer has. The member is removed and added back under a new id with an
 * empty data directory, as etcd does (docs/storage.md, "Replacing a member").
 */
import type { HardState, SnapshotMeta } from '../../raft/messages.js';
import type { SmSublevel } from './database.js';
import { ioError, REPLACE_MEMBER_ADVICE, StorageError } from './errors.js';
import { SM_APPLIED_KEY_BYTES, SM_CONF_KEY_BYTES } from './keys.js';
import { LogStore } from './log-store.js';
import { positionOf } from './snapshot.js';
import type { ReplayedState } from './wal/replay.js';

/** A snapshot install to finish: write `meta` and `hardState` to the WAL, drop the log. */
export interface RollForward {
  readonly meta: SnapshotMeta;
  readonly hardState: HardState;
}

export async function reconcile(
  dir: string,
  sm: SmSublevel,
  state: ReplayedState,
  walEmpty: boolean,
): Promise<RollForward | undefined> {
  let applied: Uint8Array | undefined;
  let conf: Uint8Array | undefined;
  try {
    [applied, conf] = await sm.getMany([SM_APPLIED_KEY_BYTES, SM_CONF_KEY_BYTES]);
  } catch (err) {
    throw ioError(`reading the state machine's applied position in ${dir}`, err);
  }
  const pairs: [Uint8Array, Uint8Array][] = [];
  if (applied !== undefined) pairs.push([SM_APPLIED_KEY_BYTES, applied]);
  if (conf !== undefined) pairs.push([SM_CONF_KEY_BYTES, conf]);
  const position = positionOf(pairs);
  if (position.applied === undefined) return undefined;
  const { index, term } = position.applied;
  if (walEmpty) {
    // An interrupted install always leaves the old segments; no WAL at all means it was
    // lost, and with it the hard state: rolling forward could vote twice in a term.
    throw new StorageError(
      'CORRUPT_STATE',
      `${dir}: the state machine is applied to ${index} but the WAL (Raft log, term and vote) is missing. ${REPLACE_MEMBER_ADVICE}`,
    );
  }
  const { snapMeta, hardState } = state;
  if (index < snapMeta.index) {
    throw new StorageError(
      'INVALID_STATE_MACHINE',
      `${dir}: the state machine is applied to ${index}, but the log was compacted to ${snapMeta.index}: ` +
        'entries in between are lost. ' +
        REPLACE_MEMBER_ADVICE,
    );
  }
  const log = new LogStore(snapMeta.index, snapMeta.term, state.entries);
  const logTerm = log.term(index);
  if (logTerm === term) return undefined;
  if (index === snapMeta.index) {
    throw new StorageError(
      'INVALID_STATE_MACHINE',
      `${dir}: the state machine is applied to ${index} in term ${term}, the log's snapshot is term ${snapMeta.term}. ${REPLACE_MEMBER_ADVICE}`,
    );
  }
  if (position.conf === undefined) {
    throw new StorageError(
      'INVALID_STATE_MACHINE',
      `${dir}: the state machine is applied to ${index}, beyond the log, and records no configuration to recover it with. ${REPLACE_MEMBER_ADVICE}`,
    );
  }
  // A snapshot's term never exceeds the term of the leader that sent it; the term change
  // was in the same Ready as the install, so it was lost with it: take it up, without a vote.
  const raised = term > hardState.term;
  return {
    meta: { index, term, conf: position.conf },
    hardState: {
      term: raised ? term : hardState.term,
      vote: raised ? null : hardState.vote,
      commit: Math.max(hardState.commit, index),
    },
  };
}
