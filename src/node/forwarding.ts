/**
 * Request/response over the peer transport: a follower forwards client work to the
 * leader and waits for its answer under a deadline.
 *
 * A request that went to a peer that then went away (its connection dropped, or it is no
 * longer the leader) is failed at once rather than left to its deadline: a dead leader
 * never answers, and the client is better served by an answer in milliseconds that it
 * can retry than by one at the deadline.
 */
import type { NodeClock, Timer } from './clock.js';
import { systemClock } from './clock.js';
import { NodeError } from './errors.js';
import type { ForwardOutcome } from './peer-messages.js';

interface Waiting {
  readonly peer: string;
  /** Fail it when leadership moves away from `peer` (proposals, keepalives; not admin work such as a transfer, which moves leadership itself). */
  readonly leaderBound: boolean;
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: NodeError) => void;
  readonly timer: Timer;
}

/**
 * What became of a forwarded request that did not get an answer:
 * - `not-sent`: the transport refused it (peer not connected); it never left this node,
 *   so trying again is always safe.
 * - `peer-gone`: it was sent, then the peer went away; it may or may not have been applied.
 */
export class ForwardFailure extends NodeError {
  constructor(
    readonly kind: 'not-sent' | 'peer-gone',
    readonly peer: string,
    message: string,
  ) {
    super('PROPOSAL_DROPPED', message, null);
  }
}

export class ForwardedRequests {
  private next = 1;
  private readonly waiting = new Map<number, Waiting>();

  constructor(private readonly clock: NodeClock = systemClock) {}

  /**
   * Registers a request to `peer`; `send(req)` puts it on the wire and returns false if
   * the transport dropped it (then the request fails at once with ForwardFailure `not-sent`).
   */
  request<T>(peer: string, timeoutMs: number, send: (req: number) => boolean, leaderBound = true): Promise<T> {
    const req = this.next++;
    return new Promise<T>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.waiting.delete(req);
        reject(new NodeError('TIMEOUT', `the leader did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(req, { peer, leaderBound, resolve: resolve as (v: unknown) => void, reject, timer });
      if (!send(req)) {
        this.waiting.delete(req);
        timer.cancel();
        reject(new ForwardFailure('not-sent', peer, `no connection to ${peer}`));
      }
    });
  }

  /** Requests waiting for an answer. */
  get size(): number {
    return this.waiting.size;
  }

  settle<T>(req: number, outcome: ForwardOutcome<T>): void {
    const w = this.waiting.get(req);
    if (!w) return;
    this.waiting.delete(req);
    w.timer.cancel();
    if (outcome.ok) w.resolve(outcome.value);
    else w.reject(new NodeError(outcome.code as NodeError['code'], outcome.message, outcome.leader));
  }

  /**
   * Fails the requests waiting on `peer` with ForwardFailure `peer-gone`: all of them when
   * the peer is gone, only the leader-bound ones when it merely stopped being the leader.
   */
  failPeer(peer: string, why: string, only: 'all' | 'leader-bound' = 'all'): void {
    for (const [req, w] of this.waiting) {
      if (w.peer !== peer || (only === 'leader-bound' && !w.leaderBound)) continue;
      this.waiting.delete(req);
      w.timer.cancel();
      w.reject(new ForwardFailure('peer-gone', peer, `${why}; the request may or may not have been applied`));
    }
  }

  close(err: NodeError): void {
    for (const w of this.waiting.values()) {
      w.timer.cancel();
      w.reject(err);
    }
    this.waiting.clear();
  }
}

export function toOutcome<T>(err: unknown): ForwardOutcome<T> {
  if (err instanceof NodeError) return { ok: false, code: err.code, message: err.message, leader: err.leader };
  return {
    ok: false,
    code: 'PROPOSAL_DROPPED',
    message: err instanceof Error ? err.message : String(err),
    leader: null,
  };
}
