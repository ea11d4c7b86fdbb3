/**
 * Exactly-once ids for writes. The server remembers, per client id, only the last sequence
 * number it applied and that command's result. So a client id may carry one write at a time:
 * with two in flight, the later one would make the earlier one's retry look stale (or the
 * earlier one's result answer the later one). Each concurrent write therefore takes a lane
 * (its own client id) and holds it until that write and all its retries are over; lanes are
 * reused, so a client that never has more than N writes in flight uses N client ids.
 *
 * Invariant: a lane's seq only grows, and a lane is held by at most one write.
 */
import { randomBytes } from 'node:crypto';

export interface WriteIds {
  readonly clientId: string;
  readonly seq: number;
}

interface Lane {
  readonly clientId: string;
  seq: number;
}

export class WriteLanes {
  readonly #base: string;
  readonly #idle: Lane[] = [];
  #created = 0;

  constructor(base: string = `rc-${randomBytes(8).toString('hex')}`) {
    this.#base = base;
  }

  /** How many client ids this client has used so far (= its largest number of concurrent writes). */
  get size(): number {
    return this.#created;
  }

  /** Runs `write` with a fresh (client id, seq); every retry inside must reuse the ids it got. */
  async run<T>(write: (ids: WriteIds) => Promise<T>): Promise<T> {
    const lane = this.#idle.pop() ?? { clientId: `${this.#base}-${this.#created++}`, seq: 0 };
    lane.seq++;
    try {
      return await write({ clientId: lane.clientId, seq: lane.seq });
    } finally {
      this.#idle.push(lane);
    }
  }
}
