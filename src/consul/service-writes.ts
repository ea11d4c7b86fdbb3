/**
 * Registering and deregistering a service through the agent API: what a Consul
 * registration becomes in Rollcall commands, proposed through the node (a follower forwards
 * them to the leader). Decided after a read barrier, so the ID check and the session's state
 * include every write acknowledged before the request.
 */
import type { FastifyRequest } from 'fastify';
import type { Instance, Register } from '../registry/index.js';
import { parseCommand } from '../registry/index.js';
import { readRecord, sessionIdForCheck, withRecord } from './check-record.js';
import { ConsulError } from './errors.js';
import { asConsulError, barrier, findById, oneById, propose, REGISTER_FIELDS, Refused } from './node-calls.js';
import type { Registration } from './registration.js';
import { type ConsulContext, requireServiceScope, serviceFilter } from './request.js';
import { ensureCheckSession, settleCheck } from './ttl-checks.js';

/** The caller's address, for a registration without `Address` (Consul would use the agent's). */
function callerAddress(req: FastifyRequest): string {
  return req.ip.startsWith('::ffff:') ? req.ip.slice(7) : req.ip;
}

/**
 * Registers (or re-registers) a service instance. A Consul re-registration replaces: an
 * instance that was persistent and now has a TTL check, or the reverse, is removed and
 * registered again (two changes, one delete and one put).
 */
export async function registerService(
  ctx: ConsulContext,
  req: FastifyRequest,
  ns: string,
  reg: Registration,
): Promise<void> {
  await barrier(ctx);
  const clash = findById(ctx, ns, reg.id, true).find((i) => i.service !== reg.service);
  if (clash !== undefined)
    throw new ConsulError(400, `ID ${JSON.stringify(reg.id)} is already used by service ${clash.service}`);
  try {
    // Consul (addServiceInternal) keeps a check's Status and Output when a re-registration
    // has the same check id: an agent restart re-registering its services must not turn
    // passing checks critical. Read before the session is touched (a TTL change closes it,
    // and the instance with it).
    const previous = ctx.node.registry.getInstance(ns, reg.service, reg.id);
    const kept = previous === undefined ? null : readRecord(previous).check;
    const same = reg.check !== null && kept !== null && kept.id === reg.check.id ? kept : null;
    const sessionId = reg.check === null ? undefined : sessionIdForCheck(ns, reg.check.id);
    const record = {
      check:
        reg.check === null
          ? null
          : {
              id: reg.check.id,
              name: reg.check.name,
              status: same?.status ?? reg.check.status,
              notes: reg.check.notes,
              output: same?.output ?? '',
              ttlMs: reg.check.ttlMs,
            },
      warningWeight: reg.warningWeight,
    };
    const command: Register = {
      type: 'register',
      namespace: ns,
      service: reg.service,
      id: reg.id,
      address: reg.address ?? callerAddress(req),
      port: reg.port,
      tags: reg.tags,
      metadata: withRecord(reg.meta, record),
      ...(reg.weight === null ? {} : { weight: reg.weight }),
      ...(sessionId === undefined ? {} : { sessionId }),
    };
    // Validated before the check's session is opened: a registration refused here (too many
    // Meta keys, Notes too long) must leave no session behind that answers check updates.
    const checked = parseCommand(command, ctx.node.registry.clusterVersion);
    if (!checked.ok) throw new Refused(checked);
    if (reg.check !== null) await ensureCheckSession(ctx, req, ns, reg.check);
    try {
      await propose(ctx, command);
    } catch (err) {
      if (!(err instanceof Refused && err.error.code === 'KIND_MISMATCH')) throw err;
      await propose(ctx, { type: 'unregister', namespace: ns, service: reg.service, id: reg.id });
      await propose(ctx, command);
    }
    // The check's status decides the health too (a new TTL check is critical, so down, until
    // its first pass): a second change, right after the first. A kept status usually agrees
    // with the kept health and writes nothing; it does not when a TTL change re-created the
    // instance (healthy).
    // A check replaced by another id, or dropped: its session, left without instances,
    // would otherwise live on and answer pass/<old id> until its TTL lapses.
    if (kept !== null && same === null) await closeOrphanedCheckSession(ctx, sessionIdForCheck(ns, kept.id));
    const registered = ctx.node.registry.getInstance(ns, reg.service, reg.id);
    if (reg.check !== null && registered !== undefined) {
      await settleCheck(ctx, registered, reg.check.id, record.check!.status, same === null ? undefined : same.output);
    }
  } catch (err) {
    throw asConsulError(err, REGISTER_FIELDS);
  }
}

/** Closes a check's session once no instance is on it (another instance may share the check id). */
async function closeOrphanedCheckSession(ctx: ConsulContext, sessionId: string): Promise<void> {
  const registry = ctx.node.registry;
  if (registry.getSession(sessionId) === undefined || registry.sessionInstances(sessionId).length > 0) return;
  try {
    await propose(ctx, { type: 'closeSession', sessionId });
  } catch (err) {
    if (!(err instanceof Refused && err.error.code === 'SESSION_NOT_FOUND')) throw err;
  }
}

/**
 * Deregisters by Consul service ID. An instance alone on its check's session takes the
 * session with it (closing it removes the instance); otherwise the instance alone goes.
 */
export async function deregisterService(
  ctx: ConsulContext,
  req: FastifyRequest,
  ns: string,
  id: string,
): Promise<void> {
  await barrier(ctx);
  // Among the services the token's prefixes cover first (oneById); one it may not touch is 403.
  const i: Instance = oneById(ctx, ns, id, true, serviceFilter(req));
  requireServiceScope(req, i.service);
  try {
    const s = i.sessionId;
    if (s !== null && readRecord(i).check !== null && ctx.node.registry.sessionInstances(s).length === 1) {
      try {
        await propose(ctx, { type: 'closeSession', sessionId: s });
        return;
      } catch (err) {
        if (!(err instanceof Refused && err.error.code === 'SESSION_NOT_FOUND')) throw err;
      }
    }
    await propose(ctx, { type: 'unregister', namespace: ns, service: i.service, id: i.id });
  } catch (err) {
    throw asConsulError(err);
  }
}
