/**
 * TTL checks on Rollcall sessions.
 *
 * A TTL check is a session with the check's TTL, its id derived from the namespace and the
 * check id (check-record.ts), so a pass on any node finds it without agent-local state:
 *
 *   pass / warn / fail / update   keepalive of the session (any node; the leader keeps the
 *                                 deadline), then, only when the status or the health the
 *                                 status maps to changes, a `setCheckHealth` of the
 *                                 instance's health and check record together
 *                                 (compare-and-set on its version): a steady stream of
 *                                 passes never touches the log.
 *   TTL lapses                    the leader expires the session: the instance is removed
 *                                 (Consul would mark it critical and keep it; expiry
 *                                 protection may hold it as `suspect`, which shows passing).
 *
 * The status is decided after a read barrier, so a pass that follows a fail taken by another
 * node always sees that fail and writes.
 */
import type { FastifyRequest } from 'fastify';
import type { ClientCommand, Instance } from '../registry/index.js';
import { INTRODUCED_IN } from '../registry/index.js';
import { sessionDecision } from '../server/session-scope.js';
import { type CheckRecord, type ConsulStatus, readRecord, sessionIdForCheck, withRecord } from './check-record.js';
import { ConsulError } from './errors.js';
import { barrier, keepalive, propose, Refused } from './node-calls.js';
import type { TtlCheck } from './registration.js';
import type { ConsulContext } from './request.js';
import { healthOfStatus } from './shapes.js';

/** Compare-and-set attempts before giving up on an instance that keeps changing. */
const CAS_ATTEMPTS = 5;

/**
 * A namespace-limited token may act only on sessions whose instances are all in its
 * namespaces, and a token limited to service prefixes only on those whose instances are all
 * of services they cover (a check's session holds the instances registered with it). Judged
 * on this node's applied state, before the keepalive, as for namespaces (session-scope.ts).
 */
function checkScope(ctx: ConsulContext, req: FastifyRequest, sessionId: string): void {
  // Namespaces and service prefixes both (session-scope.ts); the refusal names neither the
  // other namespaces nor the other services.
  const decision = sessionDecision(req.principal, ctx.node.registry, sessionId);
  if (!decision.ok) throw new ConsulError(403, `Permission denied: ${decision.message}`);
}

/**
 * The session for a TTL check registered now: renewed when it exists with this TTL,
 * opened (again) otherwise. A session cannot change its TTL: one with another TTL is closed
 * first (its instances go with it and the registration that follows puts them back).
 */
export async function ensureCheckSession(
  ctx: ConsulContext,
  req: FastifyRequest,
  ns: string,
  check: TtlCheck,
): Promise<string> {
  const sessionId = sessionIdForCheck(ns, check.id);
  checkScope(ctx, req, sessionId);
  const existing = ctx.node.registry.getSession(sessionId);
  if (existing !== undefined && existing.ttlMs === check.ttlMs) {
    if ((await keepalive(ctx, sessionId)) !== 'unknown') return sessionId;
  } else if (existing !== undefined) {
    try {
      await propose(ctx, { type: 'closeSession', sessionId });
    } catch (err) {
      if (!(err instanceof Refused && err.error.code === 'SESSION_NOT_FOUND')) throw err;
    }
  }
  try {
    await propose(ctx, { type: 'openSession', sessionId, ttlMs: check.ttlMs, now: Date.now() });
  } catch (err) {
    // Opened meanwhile by a registration through another node: the same check, so the same session.
    if (!(err instanceof Refused && err.error.code === 'SESSION_EXISTS')) throw err;
  }
  return sessionId;
}

/**
 * `PUT /v1/agent/check/{pass,warn,fail,update}/:checkId`: renews the TTL and settles the
 * status. 404 when no such check (never registered, deregistered, or its TTL lapsed).
 */
export async function updateCheck(
  ctx: ConsulContext,
  req: FastifyRequest,
  ns: string,
  checkId: string,
  status: ConsulStatus,
  output: string | undefined,
): Promise<void> {
  const sessionId = sessionIdForCheck(ns, checkId);
  checkScope(ctx, req, sessionId);
  const [outcome] = await Promise.all([keepalive(ctx, sessionId), barrier(ctx)]);
  // Judged again on what the barrier caught up with: this node may have been behind, an
  // instance on the session (of a service or namespace outside the token's scope) not applied
  // here yet when first judged. Nothing is settled for it then (the keepalive has gone by).
  checkScope(ctx, req, sessionId);
  // A session no instance holds this check on (left by an older build, or a hashed id
  // shared with another check) is no check: Consul's 404, not a 200 that changes nothing.
  const holders = ctx.node.registry.sessionInstances(sessionId).filter((i) => readRecord(i).check?.id === checkId);
  if (outcome === 'unknown' || holders.length === 0)
    throw new ConsulError(404, `Unknown check ID ${JSON.stringify(checkId)}`);
  for (const instance of holders) await settleCheck(ctx, instance, checkId, status, output);
}

/** Consul keeps at most 4 KB of a check's output; Rollcall keeps less, to fit its metadata value limit with the rest of the record. */
export const MAX_OUTPUT = 1024;

/**
 * Brings an instance's TTL check to `status`: its record (status and `output`, when the status
 * changes) and its Rollcall health (passing → healthy, warning → subhealthy, critical → down,
 * whenever they differ) in one `setCheckHealth`, compare-and-set on the version the decision
 * was made from. Nothing is written when both already agree, so a steady stream of passes
 * never touches the log. A suspect instance (expiry protection) keeps its health: only the
 * record is written, and the next check update after protection lets go settles the health.
 * Call after a read barrier, with the instance as this node holds it.
 */
export async function settleCheck(
  ctx: ConsulContext,
  first: Instance,
  checkId: string,
  status: ConsulStatus,
  output: string | undefined,
): Promise<void> {
  const health = healthOfStatus(status);
  let instance: Instance | undefined = first;
  for (let attempt = 1; instance !== undefined; attempt++) {
    const record = readRecord(instance);
    if (record.check === null || record.check.id !== checkId) return;
    const recordMoves = record.check.status !== status;
    // At cluster version 1 (a rolling upgrade not finished) there is no setCheckHealth: only
    // the check's record moves, as before, and the health follows once the cluster is raised.
    const settable =
      instance.health !== 'suspect' && ctx.node.registry.clusterVersion >= INTRODUCED_IN['setCheckHealth']!;
    const healthMoves = settable && instance.health !== health;
    if (!recordMoves && !healthMoves) return;
    const check: CheckRecord = { ...record.check, status, output: (output ?? '').slice(0, MAX_OUTPUT) };
    const metadata = recordMoves ? withRecord(instance.metadata, { ...record, check }) : undefined;
    const at = {
      namespace: instance.namespace,
      service: instance.service,
      id: instance.id,
      expectedVersion: instance.version,
    };
    const command: ClientCommand = !settable
      ? { type: 'update', ...at, patch: { metadata: metadata! } }
      : { type: 'setCheckHealth', ...at, health, ...(metadata === undefined ? {} : { metadata }) };
    try {
      await propose(ctx, command);
      return;
    } catch (err) {
      if (!(err instanceof Refused)) throw err;
      if (err.error.code === 'INSTANCE_NOT_FOUND') return;
      // Changed meanwhile (a health change, a suspect mark, another update): read it again and decide again.
      const retry = err.error.code === 'VERSION_MISMATCH' || err.error.code === 'INSTANCE_SUSPECT';
      if (!retry || attempt >= CAS_ATTEMPTS) throw err;
    }
    await barrier(ctx);
    instance = ctx.node.registry.getInstance(instance.namespace, instance.service, instance.id);
  }
}
