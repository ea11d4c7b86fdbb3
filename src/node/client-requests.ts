/**
 * Client work that must run on the leader: writes, keepalives and cluster operations. Each
 * is a RouteSpec for the LeaderRouter: where it may run, how it is forwarded, and which
 * failures are safe to try again, across leader changes, until its deadline.
 */
import type { SoftState } from '../../raft/index.js';
import { encode } from '../codec/index.js';
import type { HealthReport } from '../health/index.js';
import type { ClientCommand, KeepaliveOutcome, MemberCommand } from '../registry/index.js';
import type { Clock } from './clock.js';
import { NodeError } from './errors.js';
import type { ForwardedRequests } from './forwarding.js';
import { ForwardFailure } from './forwarding.js';
import type { LeaderDuties } from './leader-duties.js';
import type { LeaderRouter } from './leader-router.js';
import type { Membership } from './membership.js';
import type { AdminOp, AdminResult, PeerMessage, ProposalResult } from './peer-messages.js';
import type { LocalProposer } from './proposer.js';

/** How long a write waits for a leader to appear before it is answered with NO_LEADER. */
export const NO_LEADER_WAIT_MS = 2000;

export interface ClientRequestsDeps {
  readonly clock: Clock;
  readonly router: LeaderRouter;
  readonly proposer: LocalProposer;
  readonly forwards: ForwardedRequests;
  readonly duties: LeaderDuties;
  readonly membership: Membership;
  soft(): SoftState;
  /** Sends to a peer; false if the transport dropped it. */
  send(to: string, m: PeerMessage): boolean;
  waitApplied(index: number, timeoutMs: number): Promise<void>;
}

export class ClientRequests {
  constructor(private readonly d: ClientRequestsDeps) {}

  /** A client command (or a member's own, member-publication.ts), replicated; resolves once committed and applied on this node. */
  async submit(command: ClientCommand | MemberCommand, timeoutMs: number): Promise<ProposalResult> {
    const { clock, forwards } = this.d;
    const data = encode(command);
    return this.d.router.route<ProposalResult>(
      {
        here: () => this.d.soft().role === 'leader',
        runHere: (left) => this.d.proposer.propose(data, left),
        forward: async (leader, left) => {
          const deadline = clock.now() + left;
          const res = await forwards.request<ProposalResult>(leader, left, (req) =>
            this.d.send(leader, { kind: 'propose', req, data }),
          );
          // Read-your-writes on this node: wait until we have applied it too.
          await this.d.waitApplied(res.index, Math.max(1, deadline - clock.now()));
          return res;
        },
        // Only what cannot apply twice: a refusal before anything was proposed, a request
        // that never left this node, and (exactly-once ids make the replay harmless) one
        // whose leader went away. Anything else goes back to the client.
        retryable: (err) =>
          (err instanceof NodeError && err.code === 'NO_LEADER') ||
          (err instanceof ForwardFailure &&
            (err.kind === 'not-sent' || ('client' in command && command.client !== undefined))),
        onDeadline: (unknown) =>
          new NodeError(
            'TIMEOUT',
            unknown
              ? 'the leader went away and no successor took the write in time; it may have been applied'
              : 'no leader accepted the write in time',
            this.d.soft().leader,
          ),
        waitMs: 200,
        // With no leader at all, wait only briefly: the client gets 503 and retries elsewhere.
        noLeaderMs: NO_LEADER_WAIT_MS,
      },
      timeoutMs,
    );
  }

  /** A heartbeat for a session, to the leader, which keeps the deadline; a health report may ride along. */
  async keepalive(sessionId: string, timeoutMs: number, report?: HealthReport): Promise<KeepaliveOutcome> {
    const { duties, forwards } = this.d;
    return this.d.router.route<KeepaliveOutcome>(
      {
        // A new leader answers only once caught up with its predecessors (dutiesTerm).
        here: () => duties.active(),
        runHere: () => duties.keepalive(sessionId, report),
        forward: (leader, left) =>
          forwards.request<KeepaliveOutcome>(leader, left, (req) =>
            this.d.send(
              leader,
              report === undefined
                ? { kind: 'keepalive', req, sessionId }
                : { kind: 'keepalive', req, sessionId, report },
            ),
          ),
        // A keepalive is idempotent: try again whatever became of it while the deadline allows.
        retryable: (err) =>
          err instanceof ForwardFailure ||
          (err instanceof NodeError && (err.code === 'TIMEOUT' || err.code === 'NO_LEADER')),
        onDeadline: () => new NodeError('NO_LEADER', 'no leader to take the keepalive', null),
        waitMs: 50,
        // Short attempts: if the leader just died, the next attempt goes to its successor
        // well within the session's TTL.
        attemptMs: 1000,
      },
      timeoutMs,
    );
  }

  /** A cluster operation (add, remove, transfer), run on the leader. */
  admin(op: AdminOp, timeoutMs: number): Promise<AdminResult> {
    return this.d.router.route<AdminResult>(
      {
        here: () => this.d.soft().role === 'leader',
        runHere: (left) => this.d.membership.run(op, left),
        // Not leader-bound: a transfer moves leadership itself, and must not fail for it.
        forward: (leader, left) =>
          this.d.forwards.request<AdminResult>(
            leader,
            left,
            (req) => this.d.send(leader, { kind: 'admin', req, op }),
            false,
          ),
        // Only a request that never left this node (the transport refused it) goes again.
        retryable: (err) => err instanceof ForwardFailure && err.kind === 'not-sent',
        onDeadline: () => new NodeError('NO_LEADER', 'no leader to take the cluster operation', null),
        waitMs: 100,
      },
      timeoutMs,
    );
  }
}
