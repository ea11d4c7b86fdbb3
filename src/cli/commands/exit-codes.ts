/** Exit codes scripts can rely on, and the mapping from an SDK error to one. See docs/cli.md. */
import {
  ApiError,
  ClientClosedError,
  NoInstanceError,
  RollcallError,
  TimeoutError,
  UnavailableError,
  UnsupportedError,
} from '../../client/index.js';
import { UsageError } from './flags.js';
import type { Io } from './output.js';

/** Exit codes scripts can rely on. Documented in docs/cli.md and `rollcall --help`. */
export const EXIT = {
  OK: 0,
  /** An unexpected failure (a bug, an I/O error). */
  ERROR: 1,
  /** Bad flags or arguments. */
  USAGE: 2,
  /** The instance, session or member does not exist. */
  NOT_FOUND: 3,
  /** No node could answer in time (all down, unreachable, or no leader). */
  UNAVAILABLE: 4,
  /** The server refused the request (invalid input, conflict, version mismatch, a route it lacks). */
  REJECTED: 5,
  /** Missing or wrong token (401), or the token may not do this (403). */
  DENIED: 6,
  /** A write timed out and may or may not have been applied. */
  UNKNOWN_OUTCOME: 7,
  /** `health`: the cluster works but is degraded (a node down or disconnected). */
  DEGRADED: 8,
  /** `snapshot`: the file is truncated, corrupt, or not a snapshot file. */
  BAD_SNAPSHOT: 9,
  /** `snapshot restore`: the data directory exists and is not empty. */
  DATA_DIR_NOT_EMPTY: 10,
  /** `check`: a member's state machine differs from the others'. */
  CORRUPT: 11,
} as const;

export const EXIT_CODES_HELP = `Exit codes:
  0  success                       5  rejected by the server (invalid input, conflict)
  1  unexpected error              6  missing or bad token (401), or not allowed (403)
  2  usage error (bad flags)       7  a write timed out: it may or may not have applied
  3  not found                     8  health: degraded (a node down or disconnected)
  4  unavailable (no node answered, or no leader)
  9  snapshot: the file is truncated, corrupt or not a snapshot file
  10 snapshot restore: the data directory is not empty
  11 check: a member's state machine differs from the others' (corrupt)`;

/** Maps an SDK error to an exit code and prints it (as JSON on stderr with --json). */
export function reportError(io: Io, err: unknown, json: boolean): number {
  let code: number = EXIT.ERROR;
  let body: Record<string, unknown>;
  if (err instanceof UsageError) {
    code = EXIT.USAGE;
    body = { code: 'USAGE', message: err.message };
  } else if (err instanceof ApiError) {
    code = err.status === 401 || err.status === 403 ? EXIT.DENIED : err.status === 404 ? EXIT.NOT_FOUND : EXIT.REJECTED;
    body = { ...err.details, code: err.code, message: err.message, status: err.status };
  } else if (err instanceof TimeoutError) {
    code = err.outcomeUnknown ? EXIT.UNKNOWN_OUTCOME : EXIT.UNAVAILABLE;
    body = { code: err.code, message: err.message, outcomeUnknown: err.outcomeUnknown };
  } else if (err instanceof UnavailableError) {
    code = EXIT.UNAVAILABLE;
    body = { code: err.code, message: err.message };
  } else if (err instanceof UnsupportedError) {
    code = EXIT.REJECTED;
    body = { code: err.code, message: err.message };
  } else if (err instanceof NoInstanceError) {
    code = EXIT.NOT_FOUND;
    body = { code: err.code, message: err.message };
  } else if (err instanceof ClientClosedError) {
    code = EXIT.OK;
    return code;
  } else if (err instanceof RollcallError) {
    body = { code: err.code, message: err.message };
  } else {
    body = { code: 'ERROR', message: err instanceof Error ? (err.stack ?? err.message) : String(err) };
  }
  if (json) io.err(`${JSON.stringify({ error: body })}\n`);
  else io.err(`rollcall: ${String(body.message)}${code === EXIT.USAGE ? ' (see --help)' : ''}\n`);
  return code;
}
