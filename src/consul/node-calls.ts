/**
 * The node's API as the Consul handlers call it: propose a command (validated first, as
 * the native API does), keep a session alive, reach a read barrier; failures as Consul
 * errors. Nothing here keeps state.
 */
import { NodeError } from '../node/index.js';
import type { ClientCommand, CommandError, CommandOk, Instance, KeepaliveOutcome } from '../registry/index.js';
import { parseCommand } from '../registry/index.js';
import { ConsulError, fromCommandError, fromNodeError } from './errors.js';
import type { ConsulContext } from './request.js';

/** What the state machine refused, for callers that resolve some refusals themselves. */
export class Refused extends Error {
  override readonly name = 'Refused';
  constructor(readonly error: CommandError) {
    super(error.message);
  }
}

function nodeFailure(err: unknown): never {
  if (err instanceof NodeError) throw fromNodeError(err);
  throw err;
}

/** Proposes `command`; resolves once applied here, throws Refused for a refusal. */
export async function propose(ctx: ConsulContext, command: ClientCommand): Promise<CommandOk> {
  const checked = parseCommand(command, ctx.node.registry.clusterVersion);
  if (!checked.ok) throw new Refused(checked);
  try {
    const { result } = await ctx.node.submit(command, ctx.timeoutMs);
    if (!result.ok) throw new Refused(result);
    return result;
  } catch (err) {
    if (err instanceof Refused) throw err;
    return nodeFailure(err);
  }
}

/** Rollcall field names as a Consul registration spells them. */
export const REGISTER_FIELDS: Readonly<Record<string, string>> = {
  service: 'Name',
  id: 'ID',
  address: 'Address',
  port: 'Port',
  tags: 'Tags',
  metadata: 'Meta',
  weight: 'Weights.Passing',
  ttlMs: 'Check.TTL',
};

/** A refusal as the Consul error to answer with. */
export function asConsulError(err: unknown, fields?: Readonly<Record<string, string>>): unknown {
  return err instanceof Refused ? fromCommandError(err.error, fields) : err;
}

export async function keepalive(ctx: ConsulContext, sessionId: string): Promise<KeepaliveOutcome> {
  try {
    return await ctx.node.keepalive(sessionId, ctx.timeoutMs);
  } catch (err) {
    return nodeFailure(err);
  }
}

export async function barrier(ctx: ConsulContext): Promise<void> {
  try {
    await ctx.node.readBarrier(ctx.timeoutMs);
  } catch (err) {
    nodeFailure(err);
  }
}

/**
 * Instances of namespace `ns` with this id, in any service. Consul service IDs are unique
 * on an agent; Rollcall ids only within a service, so the agent endpoints look across the
 * namespace's services.
 */
export function findById(ctx: ConsulContext, ns: string, id: string, includeDisabled: boolean): Instance[] {
  const registry = ctx.node.registry;
  const out: Instance[] = [];
  // The feed's ID index, not a walk of every service: this runs on every register and deregister.
  for (const service of ctx.feed.ids.services(ns, id)) {
    const i = registry.getInstance(ns, service, id);
    if (i !== undefined && (includeDisabled || i.enabled)) out.push(i);
  }
  return out;
}

/**
 * One instance by Consul service ID, or 404 (400 when the ID is ambiguous). `inScope`: the
 * services the request's token may touch (serviceFilter; null: every one). The ID is looked
 * for among those first, so an ID that a service outside them shares is the token's own
 * instance, and an ambiguity never lists a service the token may not see. An ID that only
 * services outside them use gives the first of those, which the caller refuses with 403
 * (requireServiceScope), as Consul refuses a service the token may not read.
 */
export function oneById(
  ctx: ConsulContext,
  ns: string,
  id: string,
  includeDisabled: boolean,
  inScope: ((service: string) => boolean) | null = null,
): Instance {
  const found = findById(ctx, ns, id, includeDisabled);
  if (found.length === 0) throw new ConsulError(404, `Unknown service ID ${JSON.stringify(id)}`);
  const visible = inScope === null ? found : found.filter((i) => inScope(i.service));
  if (visible.length === 0) return found[0]!;
  if (visible.length > 1)
    throw new ConsulError(
      400,
      `ID ${JSON.stringify(id)} is used by services ${visible.map((i) => i.service).join(', ')}`,
    );
  return visible[0]!;
}
