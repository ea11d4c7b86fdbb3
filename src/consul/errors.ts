/**
 * Errors of the Consul-compatible API: plain text with Consul's status codes, as Consul
 * answers them. Clients show a short text body as the error's message (the npm `consul`
 * client does for bodies under 80 characters), so messages are short and name the field.
 *
 *   400  a parameter or body field is wrong (`Check.HTTP: ...`, `Invalid wait time`)
 *   403  the token may not do this (`Permission denied`, `ACL not found`)
 *   404  an unknown service or check ID; an endpoint Rollcall does not serve
 *   405  a served path with another method
 *   413  the body is over the limit
 *   429  too many failed authentications from this address (--auth-failure-limit), with Retry-After
 *   500  no leader, a timeout, or a bug (`No cluster leader`), as Consul answers them
 */
import type { FastifyReply } from 'fastify';
import { NodeError } from '../node/index.js';
import type { CommandError } from '../registry/index.js';

export class ConsulError extends Error {
  override readonly name = 'ConsulError';
  constructor(
    readonly status: number,
    message: string,
    /** Headers the answer carries (`retry-after`). */
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(message);
  }
}

export function sendText(reply: FastifyReply, status: number, message: string): FastifyReply {
  return reply.code(status).header('content-type', 'text/plain; charset=utf-8').send(message);
}

/** Any error a handler threw or returned, as Consul would answer it. */
export function sendConsulError(reply: FastifyReply, err: unknown): FastifyReply {
  if (err instanceof ConsulError) {
    for (const [k, v] of Object.entries(err.headers)) reply.header(k, v);
    return sendText(reply, err.status, err.message);
  }
  if (err instanceof NodeError) {
    const e = fromNodeError(err);
    if (e.status >= 500) reply.header('retry-after', '1');
    return sendText(reply, e.status, e.message);
  }
  throw err;
}

/** Node failures: Consul answers a missing leader and timeouts with 500 and a short line. */
export function fromNodeError(err: NodeError): ConsulError {
  switch (err.code) {
    case 'NO_LEADER':
      return new ConsulError(500, 'No cluster leader');
    case 'TIMEOUT':
      return new ConsulError(500, `Timed out: ${err.message}`.slice(0, 200));
    case 'SHUTTING_DOWN':
      return new ConsulError(503, 'This node is stopping; ask another node');
    default:
      return new ConsulError(500, `${err.code}: ${err.message}`.slice(0, 200));
  }
}

/**
 * A refusal by the state machine, with the field renamed to what the Consul client sent
 * (`service` → `Name`, ...). Conflicts the API resolves itself never get here.
 */
export function fromCommandError(err: CommandError, fields: Readonly<Record<string, string>> = {}): ConsulError {
  const field = err.field === undefined ? undefined : (fields[err.field] ?? err.field);
  const message = field !== undefined && err.field !== undefined ? err.message.replace(err.field, field) : err.message;
  switch (err.code) {
    case 'ACCESS_DENIED':
      return new ConsulError(403, `Permission denied: ${message}`);
    case 'ACCESS_RULES_INVALID':
      return new ConsulError(500, message);
    case 'SESSION_NOT_FOUND':
    case 'INSTANCE_NOT_FOUND':
      return new ConsulError(404, message);
    default:
      return new ConsulError(400, message);
  }
}

/** What Rollcall refuses to imitate, by path prefix, and why (see docs/consul.md). */
const NOT_SERVED: readonly (readonly [RegExp, string])[] = [
  [/^\/v1\/kv(\/|$)/, 'the KV store (/v1/kv): it is a service registry, not a key/value store'],
  [/^\/v1\/session(\/|$)/, 'sessions and locks (/v1/session): use TTL checks'],
  [/^\/v1\/acl(\/|$)/, 'the ACL system (/v1/acl) beyond GET /v1/acl/token/self: make tokens through the Rollcall API'],
  [/^\/v1\/(connect|agent\/connect)(\/|$)/, 'Connect (service mesh)'],
  [/^\/v1\/query(\/|$)/, 'prepared queries (/v1/query)'],
  [/^\/v1\/txn(\/|$)/, 'transactions (/v1/txn)'],
  [/^\/v1\/event(\/|$)/, 'user events (/v1/event)'],
];

/** The text of a 404 for a path this API does not serve. */
export function notServedMessage(method: string, path: string): string {
  for (const [re, what] of NOT_SERVED) if (re.test(path)) return `Rollcall does not serve ${what}`;
  return `Rollcall does not serve ${method} ${path} (see docs/consul.md)`;
}
