/**
 * The server's side of PUT /v1/health/policy: proposes the replicated `setHealthPolicy`
 * through this node (a follower forwards it to the leader like any write) and hands back
 * the applied result, counted in the same proposal metrics as every other write.
 */
import type { HealthPolicy } from '../health/index.js';
import type { CommandResult, SetHealthPolicy } from '../registry/index.js';
import type { PolicyWriteOptions } from '../ui/index.js';
import type { ServerContext } from './context.js';

export function healthPolicyWriter(ctx: ServerContext): (policy: HealthPolicy, options: PolicyWriteOptions) => Promise<CommandResult> {
  return async (policy, { expectedRevision, client }) => {
    const command: SetHealthPolicy = {
      type: 'setHealthPolicy',
      policy,
      ...(expectedRevision === undefined ? {} : { expectedRevision }),
      ...(client === undefined ? {} : { client }),
    };
    const started = performance.now();
    try {
      const { result } = await ctx.node.submit(command, ctx.limits.timeoutMs);
      ctx.metrics.proposed(command.type, result.ok ? 'ok' : 'rejected', (performance.now() - started) / 1000);
      return result;
    } catch (err) {
      ctx.metrics.proposed(command.type, 'error', null);
      throw err;
    }
  };
}
