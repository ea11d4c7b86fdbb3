/**
 * Request/response over the peer transport: a follower forwards client work to the
 * leader and waits for its answer under a deadline.
 */
import { NodeError } from './errors.js';
import type { ForwardOutcome } from './peer-messages.js';

interface Waiting {
  readonly resolve: (value: unknown) => void;
  readonly reject: (err: NodeError) => void;
  readonly timer: NodeJS.Timeout;
}

export class ForwardedRequests {
  private next = 1;
  private readonly waiting = new Map<number, Waiting>();

  /** Registers a request; `send(req)` must put it on the wire. */
  request<T>(timeoutMs: number, send: (req: number) => void): Promise<T> {
    const req = this.next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(req);
        reject(new NodeError('TIMEOUT', `the leader did not answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(req, { resolve: resolve as (v: unknown) => void, reject, timer });
      send(req);
    });
  }

  settle<T>(req: number, outcome: ForwardOutcome<T>): void {
    const w = this.waiting.get(req);
    if (!w) return;
    this.waiting.delete(req);
    clearTimeout(w.timer);
    if (outcome.ok) w.resolve(outcome.value);
    else w.reject(new NodeError(outcome.code as NodeError['code'], outcome.message, outcome.leader));
  }

  close(err: NodeError): void {
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.waiting.clear();
  }
}

export function toOutcome<T>(err: unknown): ForwardOutcome<T> {
  if (err instanceof NodeError) return { ok: false, code: err.code, message: err.message, leader: err.leader };
  return { ok: false, code: 'PROPOSAL_DROPPED', message: err instanceof Error ? err.message : String(err), leader: null };
}
