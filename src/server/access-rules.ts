/**
 * Access rules over HTTP: the fast path that answers obvious refusals without a log entry
 * (the schema of `PUT /v1/access-rules` is in routes/access-rules.ts).
 *
 * The rules themselves (their format, what a rule matches, the verdict on a registration)
 * live in the state machine, src/registry/access.ts: `register` and `update` are judged when
 * they are applied, against the rules in force at that log position, identically on every
 * replica. That verdict is authoritative. The fast path below only saves a round trip
 * through the log for a request the rules refuse, and is built so that it never contradicts
 * the state machine: it calls the same verdict functions, and it refuses only after a read
 * barrier, so the rules and instance it judges by include every write acknowledged before
 * the request arrived (a refusal is then linearized at that read point, as a read would be).
 * A node's applied rules alone may be stale (a follower behind, or a setAccessRules
 * committed but not yet applied): judging by them would refuse what the rules in force admit.
 * What the fast path admits is proposed and judged again by the state machine, which is what
 * closes the check-then-propose race.
 */
import type { FastifyRequest } from 'fastify';
import type { ClientCommand, CommandError } from '../registry/index.js';
import { parseCommand, registerVerdict, updateVerdict } from '../registry/index.js';
import type { ServerContext } from './context.js';
import { clientRef } from './context.js';

/**
 * The fast path for register and update: the refusal the state machine would give, or null
 * to propose. Null whenever in doubt (malformed request, no rules, read barrier failed): the
 * write path then answers, and the state machine judges.
 *
 * Exactly-once: a retry whose seq this node has seen applied is never answered here (the
 * dedup table answers it through the log, with the first answer). One narrow case remains
 * where the fast path and the log can differ: a retry that arrives while its first attempt
 * is still uncommitted, refused here, while an admin loosens the rules so that the first
 * attempt is admitted when it commits.
 */
export async function accessPrecheck(
  ctx: ServerContext,
  req: FastifyRequest,
  command: ClientCommand,
): Promise<CommandError | null> {
  if (command.type !== 'register' && command.type !== 'update') return null;
  const client = clientRef(req);
  if (client !== null && 'error' in client) return null;
  const parsed = parseCommand(client === null ? command : { ...command, client });
  if (!parsed.ok) return null;
  const cmd = parsed.command;
  const judge = (): CommandError | null => {
    const registry = ctx.node.registry;
    if (client !== null && (registry.clientSeq(client.id) ?? 0) >= client.seq) return null;
    if (cmd.type === 'register')
      return registerVerdict(registry.accessRules(), cmd, registry.getInstance(cmd.namespace, cmd.service, cmd.id));
    if (cmd.type === 'update') return updateVerdict(registry.accessRules(), cmd);
    return null;
  };
  // Admitted by this node's (possibly stale) rules: propose, and let the state machine decide.
  if (judge() === null) return null;
  try {
    await ctx.node.readBarrier(ctx.limits.timeoutMs);
  } catch {
    return null;
  }
  return judge();
}
