import type { NodeId } from './messages.js';

/** Stable codes a caller can act on. */
export type RaftErrorCode =
  | 'NOT_LEADER'
  /**
   * ReadIndex on a leader that is no longer a voter (removed or demoted, handing
   * leadership over): it cannot prove that no newer leader exists. Retryable: the
   * hand-over, or the step-down within an election timeout, brings a voter to lead.
   */
  | 'NOT_VOTER'
  | 'PROPOSAL_DROPPED'
  | 'TRANSFER_IN_PROGRESS'
  | 'CONF_CHANGE_PENDING'
  | 'CONF_CHANGE_INVALID'
  | 'NO_LEADER'
  | 'COMPACTED'
  | 'UNAVAILABLE'
  | 'SNAPSHOT_OUT_OF_DATE'
  | 'INVALID_CONFIG';

export class RaftError extends Error {
  override readonly name = 'RaftError';
  constructor(
    readonly code: RaftErrorCode,
    message: string,
    /** Known leader, for NOT_LEADER, so the caller can forward. */
    readonly leader: NodeId | null = null,
  ) {
    super(message);
  }
}

/** Outcome of a call that can be refused; refusals are values, not exceptions. */
export type Result<T = void> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: RaftError };

export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const fail = (code: RaftErrorCode, message: string, leader: NodeId | null = null): Result<never> => ({
  ok: false,
  error: new RaftError(code, message, leader),
});
