/**
 * The HTTP error catalogue: every error body is `{"error": {"code", "message", "field"?}}`
 * with a stable code. See docs/api.md for the list.
 */
import type { FastifyReply } from 'fastify';
import { NodeError } from '../node/index.js';
import type { CommandError } from '../registry/index.js';

export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly field?: string; readonly [k: string]: unknown };
}

export function errorBody(code: string, message: string, extra: Record<string, unknown> = {}): ErrorBody {
  return { error: { code, message, ...extra } };
}

const COMMAND_STATUS: Record<CommandError['code'], number> = {
  INVALID_COMMAND: 400,
  INVALID_ARGUMENT: 400,
  SESSION_NOT_FOUND: 404,
  SESSION_EXISTS: 409,
  INSTANCE_NOT_FOUND: 404,
  VERSION_MISMATCH: 412,
  KIND_MISMATCH: 409,
  INSTANCE_SUSPECT: 409,
  STALE_TERM: 409,
  STALE_REQUEST: 409,
};

export function sendCommandError(reply: FastifyReply, err: CommandError): FastifyReply {
  const extra: Record<string, unknown> = {};
  if (err.field !== undefined) extra.field = err.field;
  if (err.currentVersion !== undefined) extra.currentVersion = err.currentVersion;
  return reply.code(COMMAND_STATUS[err.code] ?? 400).send(errorBody(err.code, err.message, extra));
}

/** Maps a node failure to a status: unavailable and retryable (503), or unknown outcome (504). */
export function sendNodeError(reply: FastifyReply, err: unknown): FastifyReply {
  if (!(err instanceof NodeError)) throw err;
  const extra: Record<string, unknown> = err.leader ? { leader: err.leader } : {};
  switch (err.code) {
    case 'NO_LEADER':
    case 'PROPOSAL_DROPPED':
    case 'TRANSFER_IN_PROGRESS':
    case 'SHUTTING_DOWN':
      return reply.code(503).header('retry-after', '1').send(errorBody(err.code, err.message, extra));
    case 'TIMEOUT':
      return reply.code(504).header('retry-after', '1').send(errorBody(err.code, err.message, extra));
    case 'CONF_CHANGE_PENDING':
      return reply.code(409).send(errorBody(err.code, err.message, extra));
    case 'CONF_CHANGE_INVALID':
    case 'NOT_MEMBER':
      return reply.code(400).send(errorBody(err.code, err.message, extra));
  }
}
