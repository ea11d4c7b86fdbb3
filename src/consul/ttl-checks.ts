/**
 * TTL checks on Rollcall sessions.
 *
 * A TTL check is a session with the check's TTL, its id derived from the namespace and the
 * check id (check-record.ts), so a pass on any node finds it without agent-local state:
 *
 *   pass / warn / fail / update   keepalive of the session (any node; the leader keeps the
 *                                 deadline), then, only when the status changes, an `update`
 *                                 of the instance's check record (compare-and-set on its
 *                                 version): a steady stream of passes never touches the log.
 *   TTL lapses                    the leader expires the session: the instance is removed
 *                                 (Consul would mark it critical and keep it; expiry
 *                                 protection may hold it as `suspect`, which shows passing).
 *
 * The status is decided after a read barrier, so a pass that follows a fail taken by another
 * node always sees that fail and writes.
 */
import type { FastifyRequest } from 'fastify';
import type { Instance } from '../registry/index.js';
import { sessionDecision } from '../server/session-scope.js';
import { type CheckRecord, type ConsulStatus, readRecord, sessionIdForCheck, withRecord } from './check-record.js';
import { ConsulError } from './errors.js';
import { barrier, keepalive, propose, Refused } from './node-calls.js';
import type { TtlCheck } from './registration.js';
import type { ConsulContext } from './request.js';

/** Compare-and-set attempts before giving up on an instance that keeps changing. */
const CAS_ATTEMPTS = 5;

/** A namespace-limited token may act only on sessions whose instances are all in its namespaces. */
function checkScope(ctx: ConsulContext, req: FastifyRequest, sessionId: string): void {
  const decision = sessionDecision(req.principal, ctx.node.registry, sessionId);
  if (!decision.ok) throw new ConsulError(403, `Permission denied: ${decision.message}`);
}

/**
 * The session for a TTL check registered now: renewed when it exists with this TTL,
 * opened (again) otherwise. A session cannot change its TTL: one with another TTL is closed
 * first (its instances go with it and the registration that follows puts them back).
 */
export async function ensureCheckSession(ctx: ConsulContext, req: FastifyRequest, ns: string, check: TtlCheck): Promise<string> {
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
 * `PUT /v1/agent/check/{pass,warn,fail,update}/:checkId`: renews the TTL and records the
 * status. 404 when no such check (never registered, deregistered, or its TTL lapsed).
 */
export async function updateCheck(ctx: ConsulContext, req: FastifyRequest, ns: string, checkId: string, status: ConsulStatus, output: string | undefined): Promise<void> {
  const sessionId = sessionIdForCheck(ns, checkId);
  checkScope(ctx, req, sessionId);
  const [outcome] = await Promise.all([keepalive(ctx, sessionId), barrier(ctx)]);
  if (outcome === 'unknown') throw new ConsulError(404, `Unknown check ID ${JSON.stringify(checkId)}`);
  for (const first of ctx.node.registry.sessionInstances(sessionId)) {
    let instance: Instance | undefined = first;
    for (let attempt = 1; instance !== undefined; attempt++) {
      const record = readRecord(instance);
      if (record.check === null || record.check.id !== checkId || record.check.status === status) break;
      const check: CheckRecord = { ...record.check, status, output: output ?? '' };
      try {
        await propose(ctx, {
          type: 'update',
          namespace: instance.namespace,
          service: instance.service,
          id: instance.id,
          expectedVersion: instance.version,
          patch: { metadata: withRecord(instance.metadata, { ...record, check }) },
        });
        break;
      } catch (err) {
        if (!(err instanceof Refused)) throw err;
        if (err.error.code === 'INSTANCE_NOT_FOUND') break;
        if (err.error.code !== 'VERSION_MISMATCH' || attempt >= CAS_ATTEMPTS) throw err;
      }
      // Changed meanwhile (a health change, another update): read it again and decide again.
      await barrier(ctx);
      instance = ctx.node.registry.getInstance(instance.namespace, instance.service, instance.id);
    }
  }
}
