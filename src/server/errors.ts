/**
 * The HTTP error catalogue: every error body is `{"error": {"code", "message", "field"?}}`
 * with a stable code. `ERROR_CATALOGUE` is the one list: the OpenAPI document and
 * docs/api.md are checked against it (test/api-docs.test.ts).
 */
import type { FastifyReply } from 'fastify';
import { NodeError } from '../node/index.js';
import type { CommandError } from '../registry/index.js';

export interface ErrorBody {
  readonly error: {
    readonly code: string;
    readonly message: string;
    readonly field?: string;
    readonly [k: string]: unknown;
  };
}

export interface CatalogueEntry {
  readonly status: number;
  readonly description: string;
}

/** Every code a client can see, its status and what it means. */
export const ERROR_CATALOGUE = {
  INVALID_ARGUMENT: {
    status: 400,
    description: 'A parameter, header or body field is missing or out of range; `field` names it.',
  },
  INVALID_JSON: { status: 400, description: 'The body is not valid JSON (or is empty where JSON is required).' },
  INVALID_COMMAND: { status: 400, description: 'The command is malformed (for example a bad `x-rollcall-client-id`).' },
  LIMIT_EXCEEDED: {
    status: 400,
    description:
      'An unpaginated listing would return more items than one answer may hold (10,000 by default); `limit` names the cap and `count` the size. Pass `limit` and follow `continue`.',
  },
  MALFORMED_REQUEST: {
    status: 400,
    description:
      'The HTTP message itself is malformed (request line, header syntax, framing, no `Host`); the connection is closed.',
  },
  UNAUTHENTICATED: {
    status: 401,
    description:
      'Token auth is on and the request has no bearer token, or an unknown one. Comes with `WWW-Authenticate: Bearer`.',
  },
  FORBIDDEN: {
    status: 403,
    description:
      "The token's role, namespaces or service prefixes do not allow this route (a route acting on the whole cluster needs an admin token without such limits).",
  },
  ACCESS_DENIED: { status: 403, description: 'An access rule refuses this registration; `rule` names it.' },
  ROUTE_NOT_FOUND: { status: 404, description: 'No such route.' },
  SESSION_NOT_FOUND: { status: 404, description: 'The session does not exist (never opened, closed, or expired).' },
  TOKEN_NOT_FOUND: { status: 404, description: 'The access token does not exist (never created, or revoked).' },
  INSTANCE_NOT_FOUND: { status: 404, description: 'The instance does not exist.' },
  SESSION_EXISTS: { status: 409, description: 'A session with this id already exists.' },
  KIND_MISMATCH: {
    status: 409,
    description: 'Register would turn a persistent instance ephemeral or the reverse; unregister it first.',
  },
  INSTANCE_SUSPECT: { status: 409, description: 'The instance is held by expiry protection.' },
  STALE_TERM: {
    status: 409,
    description: 'A leader command from a deposed leader (internal; not expected from the API).',
  },
  STALE_REQUEST: { status: 409, description: '`x-rollcall-seq` is below the last one applied for this client id.' },
  ENVIRONMENT_MISMATCH: {
    status: 409,
    description:
      "The instance's `metadata.environment` differs from the registry's environment label (or is missing where required).",
  },
  CLUSTER_NOT_UPGRADED: {
    status: 409,
    description:
      'The command needs a newer cluster version (docs/operations.md, "Upgrades"): the cluster runs an older state-machine version until every member runs a build that implements the newer one.',
  },
  ACL_BOOTSTRAPPED: {
    status: 409,
    description: "`POST /v1/acl/bootstrap` after the cluster's ACL was bootstrapped (once per cluster).",
  },
  ACL_OFF: { status: 409, description: 'An `/v1/acl` route on a node started without `--acl`.' },
  TOKEN_EXISTS: { status: 409, description: 'A token with this id already exists (ids are random: not expected).' },
  CONF_CHANGE_PENDING: { status: 409, description: 'A membership change is already in progress.' },
  CONF_CHANGE_INVALID: {
    status: 400,
    description: 'The membership or leadership change is not possible (for example an unknown node id).',
  },
  NOT_MEMBER: { status: 400, description: 'The node named is not a member of the cluster.' },
  REQUEST_TIMEOUT: {
    status: 408,
    description: 'The request was not received in time (headers or body too slow); the connection is closed.',
  },
  COMPACTED: {
    status: 410,
    description:
      "A `continue` token's revision is no longer in this node's history (or the node restarted or installed a snapshot since): list again from the first page, or follow the error's `continue` to go on at the current revision.",
  },
  VERSION_MISMATCH: {
    status: 412,
    description:
      '`If-Match` names another version than the instance (or the health policy or access rules: their policyRevision / rulesRevision) has; `currentVersion` carries it.',
  },
  RATE_LIMITED: {
    status: 429,
    description:
      'Too many failed authentications from this address (`--auth-failure-limit` per minute): wait `Retry-After` seconds.',
  },
  BODY_TOO_LARGE: { status: 413, description: 'The body is larger than the limit (256 KiB by default).' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, description: 'The body is not `application/json`.' },
  PRECONDITION_REQUIRED: { status: 428, description: 'PATCH needs `If-Match: <version>` (compare-and-set).' },
  HEADERS_TOO_LARGE: {
    status: 431,
    description: 'The request line and headers are over the limit (16 KiB); the connection is closed.',
  },
  INTERNAL: { status: 500, description: 'A bug: the request failed unexpectedly. The node logs it.' },
  NO_LEADER: {
    status: 503,
    description: 'No leader is known right now (election in progress or no quorum); retry after `Retry-After`.',
  },
  PROPOSAL_DROPPED: {
    status: 503,
    description: 'The leader dropped the write (for example it stepped down); retry with the same client id and seq.',
  },
  TRANSFER_IN_PROGRESS: { status: 503, description: 'Leadership is being transferred; retry shortly.' },
  SHUTTING_DOWN: { status: 503, description: 'This node is stopping.' },
  CORRUPT: {
    status: 503,
    description:
      'A corruption check found this node\'s state machine different from the other members\': it serves no reads until it is replaced (docs/operations.md, "Corruption checks"); read from another node.',
  },
  OVERLOADED: {
    status: 503,
    description:
      'This node sheds load (its event loop lags, or too much work waits in it): nothing was done; retry after `Retry-After` seconds, or on another node. Probes and keepalives are never shed.',
  },
  NOT_READY: { status: 503, description: '`/readyz`: this node should not take traffic yet; `reasons` says why.' },
  STALLED: {
    status: 503,
    description:
      '`/healthz` on the probe listener (`--probe-listen`): the main event loop has not run for longer than `--probe-stall-limit-ms`; `stalledMs` says how long.',
  },
  ACCESS_RULES_INVALID: {
    status: 503,
    description:
      'The stored access rules cannot be read by this build (version skew); registrations are refused until they are replaced.',
  },
  UNKNOWN_DATACENTER: {
    status: 400,
    description:
      '`?dc=` names a datacenter this federation does not know (or federation is off on this node); `datacenter` names it. `GET /v1/federation` lists the known ones.',
  },
  FEDERATION_OFF: {
    status: 409,
    description:
      'A federation route on a node started without `--federation-secret` (or, for gossip, one that left the federation).',
  },
  DATACENTER_UNREACHABLE: {
    status: 503,
    description:
      "`?dc=` names a known datacenter none of whose members answered within the request's deadline (or all are unreachable to the failure detector); `datacenter` names it. Retry after `Retry-After`.",
  },
  TIMEOUT: {
    status: 504,
    description:
      'The outcome is unknown (write) or the wait ran out (read point, minRevision, leader transfer); retry idempotently.',
  },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof ERROR_CATALOGUE;

export function errorBody(code: string, message: string, extra: Record<string, unknown> = {}): ErrorBody {
  return { error: { code, message, ...extra } };
}

/** Sends a catalogue error with its status. */
export function sendError(
  reply: FastifyReply,
  code: ErrorCode,
  message: string,
  extra: Record<string, unknown> = {},
): FastifyReply {
  return reply.code(ERROR_CATALOGUE[code].status).send(errorBody(code, message, extra));
}

export function sendCommandError(reply: FastifyReply, err: CommandError): FastifyReply {
  const extra: Record<string, unknown> = {};
  if (err.field !== undefined) extra.field = err.field;
  if (err.currentVersion !== undefined) extra.currentVersion = err.currentVersion;
  if (err.rule !== undefined) extra.rule = err.rule;
  return reply.code(ERROR_CATALOGUE[err.code]?.status ?? 400).send(errorBody(err.code, err.message, extra));
}

/** Maps a node failure to a status: unavailable and retryable (503), or unknown outcome (504). */
export function sendNodeError(reply: FastifyReply, err: unknown): FastifyReply {
  if (!(err instanceof NodeError)) throw err;
  const extra: Record<string, unknown> = err.leader ? { leader: err.leader } : {};
  if (ERROR_CATALOGUE[err.code].status >= 500) reply.header('retry-after', '1');
  return sendError(reply, err.code, err.message, extra);
}
