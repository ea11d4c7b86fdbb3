/**
 * A watch of another datacenter (`GET /v1/watch?dc=X`): the remote member's event stream,
 * relayed frame by frame, that resumes on another member of X when the one it used fails,
 * with nothing lost or repeated.
 *
 * Why it can: every member of X applies the same log, so each serves the same events, in
 * the same order, with the same revisions (`id:`). The relay forwards whole frames only
 * (a frame cut by the failure is dropped) and keeps its position: the last revision it
 * forwarded and how many change frames of that revision went out (one command's events
 * share a revision; the hub never splits one, but a dying socket may). On a failure it asks
 * the next member for the stream after the last complete revision (`Last-Event-ID`) and
 * skips the frames of the partial one it already forwarded.
 *
 * A failure is: the upstream errors (a reset, a kill), ends without a final frame
 * (`compacted`, `overflow`: those end the client's stream too), or sends nothing for
 * `idleMs` (a live stream has a progress event every few seconds; a stopped node sends
 * nothing). If no member can be reached within `resumeBudgetMs` the client's stream ends;
 * its ids are the remote revisions, so the client resumes it with `Last-Event-ID` itself.
 *
 * Invariant: every change frame with revision < `lastId` has been forwarded, and exactly
 * `countAtLast` of those with revision `lastId`.
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from '../log/index.js';

/** Nothing from a live upstream this long: it is gone (the hub's progress interval is at most 10 s). */
export const WATCH_IDLE_MS = 25_000;
/** How long the relay keeps looking for another member before it ends the client's stream. */
export const WATCH_RESUME_BUDGET_MS = 15_000;

export interface Upstream {
  readonly response: Response;
  readonly address: string;
}

export interface WatchRelayOptions {
  readonly datacenter: string;
  readonly first: Upstream;
  /** The caller's resume point (`Last-Event-ID`, or `fromRevision - 1`); null: the first answer's revision. */
  readonly after: number | null;
  readonly res: ServerResponse;
  /** Headers for the client (the first answer's, relayed). */
  readonly headers: Readonly<Record<string, string>>;
  /**
   * The stream after revision `after` from a member of the datacenter, `failed` tried last;
   * null when none answers with a stream.
   */
  readonly reopen: (after: number, failed: string) => Promise<Upstream | null>;
  readonly logger: Logger;
  readonly idleMs?: number;
  readonly resumeBudgetMs?: number;
  readonly onEnd?: () => void;
}

/** A frame's fields that matter to the relay. */
interface Frame {
  readonly bytes: Buffer;
  readonly id: number | null;
  readonly event: string;
  readonly hasData: boolean;
}

export class WatchRelay {
  private lastId: number;
  private countAtLast = 0;
  /** Change frames of revision `lastId` the current upstream will send again: dropped. */
  private skip = 0;
  private reader: ReadableStreamDefaultReader<Uint8Array> | null = null;
  private closed = false;
  private upstreams = 0;
  /** When the relay last lost an upstream with nothing relayed since (null: it is relaying); bounds the resume budget. */
  private lostSince: number | null = null;
  private readonly idleMs: number;
  private readonly resumeBudgetMs: number;
  /** Ends the pause between two attempts to resume. */
  private wakeSleep: () => void = () => undefined;

  constructor(private readonly o: WatchRelayOptions) {
    const revision = Number(o.first.response.headers.get('x-rollcall-revision') ?? 0);
    this.lastId = o.after ?? (Number.isSafeInteger(revision) ? revision : 0);
    this.idleMs = o.idleMs ?? WATCH_IDLE_MS;
    this.resumeBudgetMs = o.resumeBudgetMs ?? WATCH_RESUME_BUDGET_MS;
  }

  /** How many upstream streams this relay has used (1 until a resume). */
  get streamsUsed(): number {
    return this.upstreams;
  }

  /** Writes the headers and relays until the client goes away, a final frame, or no member answers. */
  async run(): Promise<void> {
    const { res } = this.o;
    res.writeHead(200, this.o.headers);
    res.once('close', () => this.close());
    let upstream: Upstream | null = this.o.first;
    try {
      while (upstream !== null && !this.closed) {
        this.upstreams++;
        const ended = await this.pump(upstream);
        if (ended === 'final' || this.closed) break;
        this.o.logger.info(
          { datacenter: this.o.datacenter, failed: upstream.address, why: ended, after: this.resumePoint() },
          'cross-datacenter watch: upstream lost; resuming on another member',
        );
        upstream = await this.resume(upstream.address);
        if (upstream === null && !this.closed)
          this.o.logger.warn(
            { datacenter: this.o.datacenter, after: this.resumePoint() },
            'cross-datacenter watch: no member to resume on; ending the stream (the client resumes with Last-Event-ID)',
          );
      }
    } finally {
      if (!res.writableEnded) res.end();
      this.closed = true;
      this.o.onEnd?.();
    }
  }

  /** Ends the relay and its upstream (the client went away, or the node is closing). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.wakeSleep();
    void this.reader?.cancel().catch(() => undefined);
  }

  /** Where a new upstream must start: after the last revision forwarded whole. */
  private resumePoint(): number {
    return this.countAtLast > 0 ? this.lastId - 1 : this.lastId;
  }

  private async resume(failed: string): Promise<Upstream | null> {
    // Members that answer and at once end again share one budget with members that refuse.
    this.lostSince ??= performance.now();
    const until = this.lostSince + this.resumeBudgetMs;
    let pause = 100;
    while (!this.closed && performance.now() < until) {
      const next = await this.o.reopen(this.resumePoint(), failed);
      if (next !== null && this.closed) {
        // Closed while the member was asked: nobody will read this stream, let its connection go.
        await next.response.body?.cancel().catch(() => undefined);
        return null;
      }
      if (next !== null) {
        this.skip = this.countAtLast;
        return next;
      }
      await this.sleep(pause);
      pause = Math.min(pause * 2, 2_000);
    }
    return null;
  }

  /** Waits `ms`, or less if the relay is closed meanwhile (no timer outlives it). */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wakeSleep = done;
    });
  }

  /** Relays one upstream until it ends: how it ended. */
  private async pump(upstream: Upstream): Promise<'final' | 'ended' | 'failed' | 'idle'> {
    const body = upstream.response.body;
    if (body === null) return 'ended';
    const reader = body.getReader();
    this.reader = reader;
    let idle = false;
    let timer: NodeJS.Timeout | null = null;
    const arm = () => {
      if (timer !== null) clearTimeout(timer);
      timer = setTimeout(() => {
        idle = true;
        void reader.cancel().catch(() => undefined);
      }, this.idleMs);
    };
    let pending = Buffer.alloc(0);
    try {
      arm();
      for (;;) {
        const { done, value } = await reader.read();
        if (done || this.closed) return idle ? 'idle' : 'ended';
        arm();
        pending = pending.length === 0 ? Buffer.from(value) : Buffer.concat([pending, value]);
        let at: number;
        while ((at = pending.indexOf('\n\n')) >= 0) {
          const frame = parseFrame(pending.subarray(0, at + 2));
          pending = pending.subarray(at + 2);
          const verdict = this.admit(frame);
          if (verdict === 'drop') continue;
          if (frame.id !== null) this.lostSince = null;
          if (!this.o.res.write(frame.bytes)) await waitDrain(this.o.res);
          if (verdict === 'final') return 'final';
        }
      }
    } catch (err) {
      if (!this.closed)
        this.o.logger.debug({ err, datacenter: this.o.datacenter, from: upstream.address }, 'watch upstream failed');
      return 'failed';
    } finally {
      if (timer !== null) clearTimeout(timer);
      this.reader = null;
      void reader.cancel().catch(() => undefined);
    }
  }

  /** Whether a frame goes to the client, and the position it leaves (see the invariant). */
  private admit(f: Frame): 'send' | 'drop' | 'final' {
    if (f.event === 'compacted' || f.event === 'overflow') return 'final';
    if (f.id === null) {
      // `retry:` and comments: the client has had the first stream's already.
      return this.upstreams > 1 ? 'drop' : 'send';
    }
    if (f.event === 'progress') {
      // A member behind the resume point (a lagging follower) reports progress before it
      // replays revision `lastId`: the frames still to skip are ahead of it, keep `skip`.
      if (f.id < this.lastId || (f.id === this.lastId && this.countAtLast === 0)) return 'drop';
      this.skip = 0;
      this.lastId = f.id;
      this.countAtLast = 0;
      return 'send';
    }
    if (!f.hasData || f.id < this.lastId) return 'drop';
    if (f.id === this.lastId && this.skip > 0) {
      this.skip--;
      return 'drop';
    }
    this.skip = 0;
    if (f.id === this.lastId) this.countAtLast++;
    else {
      this.lastId = f.id;
      this.countAtLast = 1;
    }
    return 'send';
  }
}

function parseFrame(bytes: Buffer): Frame {
  let id: number | null = null;
  let event = 'message';
  let hasData = false;
  for (const line of bytes.toString('utf8').split('\n')) {
    if (line.startsWith('id:')) {
      const n = Number(line.slice(3).trim());
      id = Number.isSafeInteger(n) ? n : null;
    } else if (line.startsWith('event:')) event = line.slice(6).trim();
    else if (line.startsWith('data:')) hasData = true;
  }
  return { bytes, id, event, hasData };
}

function waitDrain(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
