/**
 * Where client work goes: to this node when it can do it itself, else to the leader over
 * the peer transport, trying again across leader changes until the work's deadline. The
 * one retry loop behind writes, keepalives and cluster operations; what differs between
 * them (what "can do it here" means, how it is forwarded, which failures are safe to try
 * again) is the RouteSpec. Work for another datacenter will take the same path with
 * another way to pick the target.
 */
import type { Clock } from './clock.js';
import { NodeError } from './errors.js';
import { ForwardFailure } from './forwarding.js';

export interface RouteSpec<T> {
  /** Whether this node does the work itself now (it leads, and is ready for this work). */
  readonly here: () => boolean;
  readonly runHere: (leftMs: number) => Promise<T> | T;
  /** Sends the work to `leader` and waits for its answer (at most `leftMs`). */
  readonly forward: (leader: string, leftMs: number) => Promise<T>;
  /** Whether `err` (from here or from the leader) is safe to try again, after a leader change at the latest. */
  readonly retryable: (err: unknown) => boolean;
  /** The answer when the deadline passes; `outcomeUnknown` once a forwarded copy may have applied. */
  readonly onDeadline: (outcomeUnknown: boolean) => NodeError;
  /** Longest wait for something to change before looking again. */
  readonly waitMs: number;
  /** Longest single forwarded attempt (default: all the time left). */
  readonly attemptMs?: number;
  /** With no leader known for this long (and nothing possibly applied), answer NO_LEADER at once. */
  readonly noLeaderMs?: number;
}

export interface RouterDeps {
  readonly id: string;
  readonly clock: Clock;
  /** Throws SHUTTING_DOWN once the node is closing. */
  assertOpen(): void;
  leader(): string | null;
  isConnected(peer: string): boolean;
  /** Resolves when the leader or a peer connection changes, or after `ms`. */
  whenLeaderMayHaveChanged(ms: number): Promise<void>;
}

export class LeaderRouter {
  constructor(private readonly deps: RouterDeps) {}

  async route<T>(spec: RouteSpec<T>, timeoutMs: number): Promise<T> {
    const { clock } = this.deps;
    this.deps.assertOpen();
    const deadline = clock.now() + timeoutMs;
    const noLeaderDeadline =
      spec.noLeaderMs === undefined ? Number.POSITIVE_INFINITY : clock.now() + Math.min(timeoutMs, spec.noLeaderMs);
    // Set once a forwarded copy reached a leader that then went away: from then on the
    // outcome is unknown, so giving up must say so (never "no leader": it may have applied).
    let outcomeUnknown = false;
    for (;;) {
      this.deps.assertOpen();
      const left = deadline - clock.now();
      if (left <= 0) throw spec.onDeadline(outcomeUnknown);
      const leader = this.deps.leader();
      if (leader === null && clock.now() > noLeaderDeadline && !outcomeUnknown) {
        throw new NodeError('NO_LEADER', 'the cluster has no leader (is a majority of nodes up?); retry shortly', null);
      }
      try {
        if (spec.here()) return await spec.runHere(left);
        // No leader, or it is this node catching up after its election, or not connected yet.
        if (leader === null || leader === this.deps.id || !this.deps.isConnected(leader)) {
          await this.deps.whenLeaderMayHaveChanged(Math.min(left, spec.waitMs));
          continue;
        }
        return await spec.forward(leader, Math.min(left, spec.attemptMs ?? left));
      } catch (err) {
        if (!spec.retryable(err)) throw err;
        if (err instanceof ForwardFailure && err.kind === 'peer-gone') outcomeUnknown = true;
        // The failure may come from the very leader change that named a successor: go at once then.
        if (!this.connectedToNewLeader(err))
          await this.deps.whenLeaderMayHaveChanged(Math.max(1, Math.min(deadline - clock.now(), spec.waitMs)));
      }
    }
  }

  /** After a failure: is there now another leader, with a connection to it, to try at once? */
  private connectedToNewLeader(err: unknown): boolean {
    const leader = this.deps.leader();
    if (leader === null) return false;
    if (leader === this.deps.id) return true;
    const failedAt = err instanceof ForwardFailure ? err.peer : null;
    return failedAt !== null && leader !== failedAt && this.deps.isConnected(leader);
  }
}
