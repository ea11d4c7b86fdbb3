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

  /** Whether a client may safely retry (with the same client id and sequence). */
  get retryable(): boolean {
    return this.code !== 'CONF_CHANGE_INVALID' && this.code !== 'NOT_MEMBER';
  }
}
