/**
 * Which sessions a token may act on (issue 22 item 3).
 *
 * A session has no namespace of its own: it belongs to the namespaces of the instances it
 * holds. As etcd does for leases (revoking a lease, or attaching a key to it, needs write
 * access to every key already on it), a namespace-limited token may keep a session alive
 * (with or without a health report), close it, or register an instance under it only if
 * every instance the session holds is in one of the token's namespaces. A session without
 * instances has no namespace yet and is open to every token of the role; a token without
 * `namespaces` reaches every session. A token limited to service prefixes likewise, on
 * the services of the session's instances (a Consul TTL check's session has an id anyone can
 * work out, `consul:<ns>:<check id>`: without this, a `web-` token could close an `orders`
 * instance's session and delete it). A refusal is 403 FORBIDDEN and does not name the
 * other namespaces or services.
 *
 * Judged on this node's applied state. Keepalive and register read the local copy, so a
 * follower a few entries behind may still let through a keepalive for a session that an
 * instance of another namespace joined a moment ago. Close, which deletes instances,
 * checks again after a read barrier: it never deletes an instance of another namespace
 * that was registered before the close was asked. (A register under the session that
 * commits between that check and the close is still deleted with it: the state machine
 * does not know tokens.)
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Decision, Principal } from './auth.js';
import type { ServerContext } from './context.js';
import { sendError, sendNodeError } from './errors.js';
import type { NodeApi } from './node-api.js';

/** Whether `p` is limited to namespaces or service prefixes, so that a session's instances decide. */
function scoped(p: Principal | null): p is Principal {
  return p !== null && (p.namespaces !== null || p.servicePrefixes != null);
}

/** Whether `p` (null: auth is off) may act on session `sessionId` as the registry holds it now. */
export function sessionDecision(
  p: Principal | null,
  registry: Pick<NodeApi['registry'], 'sessionInstances'>,
  sessionId: string,
): Decision {
  if (!scoped(p)) return { ok: true };
  const { namespaces, servicePrefixes } = p;
  const outside = registry
    .sessionInstances(sessionId)
    .some(
      (i) =>
        (namespaces !== null && !namespaces.includes(i.namespace)) ||
        (servicePrefixes != null && !servicePrefixes.some((prefix) => i.service.startsWith(prefix))),
    );
  if (!outside) return { ok: true };
  const limits: string[] = [];
  if (namespaces !== null) limits.push(`namespaces ${namespaces.join(', ')}`);
  if (servicePrefixes != null) limits.push(`services starting with ${servicePrefixes.join(', ')}`);
  return {
    ok: false,
    message: `token ${p.name} is limited to ${limits.join(' and ')}; session ${sessionId} has instances outside them`,
  };
}

/**
 * Answers 403 (or the barrier's error) and returns false when the request's token may not
 * act on the session; `barrier`: confirm with the leader's commit index first (close).
 */
export async function checkSessionScope(
  ctx: ServerContext,
  req: FastifyRequest,
  reply: FastifyReply,
  sessionId: string,
  barrier: boolean,
): Promise<boolean> {
  const p = req.principal;
  if (!scoped(p)) return true;
  let decision = sessionDecision(p, ctx.node.registry, sessionId);
  if (decision.ok && barrier) {
    try {
      await ctx.node.readBarrier(ctx.limits.timeoutMs);
    } catch (err) {
      sendNodeError(reply, err);
      return false;
    }
    decision = sessionDecision(p, ctx.node.registry, sessionId);
  }
  if (decision.ok) return true;
  ctx.metrics.authFailures.inc({ reason: 'forbidden' });
  ctx.logger.debug(
    { principal: p.name, method: req.method, route: req.routeOptions.url, sessionId },
    "request refused: session outside the token's namespaces or service prefixes",
  );
  sendError(reply, 'FORBIDDEN', decision.message);
  return false;
}
