/** Errors of a node that the HTTP layer turns into status codes; each has a stable code. */
export type NodeErrorCode =
  | 'NO_LEADER'
  | 'TIMEOUT'
  | 'PROPOSAL_DROPPED'
  | 'TRANSFER_IN_PROGRESS'
  | 'CONF_CHANGE_PENDING'
  | 'CONF_CHANGE_INVALID'
  | 'NOT_MEMBER'
  | 'SHUTTING_DOWN';

export class NodeError extends Error {
  override readonly name = 'NodeError';
  constructor(
    readonly code: NodeErrorCode,
    message: string,
    readonly leader: string | null = null,
  ) {
    super(message);
  }
}

/** A refusal from the Raft core (raft/errors.ts), as far as the node needs it. */
export interface CoreRefusal {
  readonly code: string;
  readonly message: string;
  readonly leader: string | null;
}

/**
 * The one translation of the core's refusals into node errors. Not leading, not a voter
 * any more, or no leader known are all "ask the leader, or retry shortly".
 */
export function fromCoreRefusal(err: CoreRefusal): NodeError {
  switch (err.code) {
    case 'NOT_LEADER':
    case 'NOT_VOTER':
    case 'NO_LEADER':
      return new NodeError('NO_LEADER', err.message, err.leader);
    case 'TRANSFER_IN_PROGRESS':
    case 'CONF_CHANGE_PENDING':
    case 'CONF_CHANGE_INVALID':
      return new NodeError(err.code, err.message, err.leader);
    default:
      return new NodeError('PROPOSAL_DROPPED', err.message, err.leader);
  }
}

/** The answer to work forwarded to a node that does not lead (or is not ready to): the sender retries. */
export function notLeader(
  leader: string | null,
  why = 'not the leader',
): { readonly ok: false; readonly code: 'NO_LEADER'; readonly message: string; readonly leader: string | null } {
  return { ok: false, code: 'NO_LEADER', message: why, leader };
}
