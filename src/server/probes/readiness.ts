/**
 * The /readyz check, one for both ports: the main port's route answers it per request, the
 * probe listener's publisher runs it on a timer (publisher.ts). The app exposes it as
 * `app.readiness()` (routes/operations.ts) for the listener.
 */
import type { Limits } from '../context.js';
import { errorBody } from '../errors.js';
import type { NodeApi } from '../node-api.js';
import type { ProbeAnswer } from './state.js';

declare module 'fastify' {
  interface FastifyInstance {
    /** The /readyz check, as the route answers it (for the probe listener). */
    readonly readiness: () => Promise<ProbeAnswer>;
  }
}

export interface ReadinessSource {
  readonly node: Pick<NodeApi, 'id' | 'status' | 'readBarrier' | 'integrity'>;
  readonly limits: Pick<Limits, 'readyMaxLag' | 'readyWaitMs'>;
  /** The app is closing. */
  readonly closing: () => boolean;
}

/** 200 with the node's state when it should take traffic; else 503 NOT_READY, the same fields and `reasons`. */
export async function evaluateReadiness({ node, limits, closing }: ReadinessSource): Promise<ProbeAnswer> {
  let st = node.status();
  const lag = Math.max(0, st.commitIndex - st.appliedIndex);
  const reasons: string[] = [];
  if (closing()) reasons.push('this node is shutting down');
  if (st.leader === null)
    reasons.push('no leader is known (election in progress, or this node is cut off from a quorum)');
  if (lag > limits.readyMaxLag)
    reasons.push(
      `applied index ${st.appliedIndex} is ${lag} entries behind the commit index ${st.commitIndex} (at most ${limits.readyMaxLag})`,
    );
  if (!st.conf.voters.includes(node.id) && !st.conf.learners.includes(node.id))
    reasons.push('this node is not (yet) a member of the cluster');
  // Found corrupt by a corruption check (src/ops/corruption-check.ts): it serves no reads, so no traffic.
  const corrupt = node.integrity.selfCorruption;
  if (corrupt !== null)
    reasons.push(
      `a corruption check (by ${corrupt.by}) found this node's state machine different from the other members': replace it, or disarm the mark after a repair`,
    );
  // The commit index a node knows comes from the leader's messages, which carry no more
  // than what the node already holds: a node just restarted after missing many writes
  // sees no lag until the leader sends it a snapshot. Only a read barrier (a ReadIndex
  // round) learns the leader's own commit index and waits until this node applied it.
  if (reasons.length === 0) {
    try {
      await node.readBarrier(limits.readyWaitMs);
    } catch (err) {
      const why = err instanceof Error ? err.message : String(err);
      reasons.push(`not caught up with the leader's commit index within ${limits.readyWaitMs} ms (${why})`);
    }
    st = node.status();
    if (closing()) reasons.push('this node is shutting down');
  }
  const ready = reasons.length === 0;
  // Not ready: the catalogue shape like every error, with the probe's fields beside it.
  const error = ready ? {} : errorBody('NOT_READY', `not ready: ${reasons.join('; ')}`);
  return {
    status: ready ? 200 : 503,
    body: {
      ...error,
      ready,
      node: node.id,
      leader: st.leader,
      role: st.role,
      term: st.term,
      commitIndex: st.commitIndex,
      appliedIndex: st.appliedIndex,
      lag: Math.max(0, st.commitIndex - st.appliedIndex),
      reasons,
    },
  };
}
