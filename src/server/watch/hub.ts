/**
 * The watch hub: every SSE watcher of this node, fed from the registry's event history.
 *
 * A stream starts in `catchup`: it pages through `history.since(position)` at the pace its
 * socket drains, then, in the same synchronous step that finds nothing more to read, turns
 * `live`. History listeners run synchronously inside
 * `applyBatch`, and the hub subscribed before any stream existed, so no notice can fall
 * between "read history" and "go live". Live fan-out still drops every event at or below
 * the stream's position (dedupe by revision), which also serves resumes from the future.
 *
 * Invariants:
 * - `position`: every matching event with revision <= position has been written to the
 *   stream (for a live stream with nothing queued, effectively max(position, delivered)).
 * - Pages and fan-out never split a revision: one command's events go out together, so a
 *   resume point is always a whole revision.
 * - Each event is encoded once (cached by event object, which history keeps immutable) and
 *   the same Buffer is written to every live watcher that wants it.
 * - Live events are fanned out on a later turn of the event loop, not inside the apply
 *   that produced them: the writes' answers go first, and under load several applied
 *   batches leave in one write per watcher (one concatenation per bucket). Pending events
 *   are already in history, so `position` keeps a stream from seeing them twice.
 * - Pacing: after a fan-out that took T ms, the next one waits min(T × (1 − share) / share,
 *   25) ms (`fanOutShare`, default 0.1: 9T); a change applied after that wait has passed goes
 *   on the next turn. So fan-out takes at most `share` of the loop while T ≤ 25 × share /
 *   (1 − share) ms (2.8 ms at 0.1); a costlier fan-out waits only the 25-ms cap and takes
 *   T / (T + 25) of the loop. Its cost is per socket write, not per byte, so this is what
 *   keeps it from starving the writes that feed it: a lone writer's changes come one round
 *   trip apart, and without the wait each cost every watcher a write while the writer's
 *   next request waited behind it (issue 21); with it, several leave in one write per
 *   watcher. The wait follows the last fan-out's cost, not how busy the node is now: a
 *   change within the wait of the last fan-out waits even on an otherwise quiet node.
 * - Every stream, catching up or live, is in exactly one bucket (its filter's key) from
 *   open to end, so a change in one service touches only the buckets of that
 *   namespace/service/cluster and the catch-all bucket.
 * - What the hub holds for a watcher is bounded by `maxBufferedBytes` (plus one fan-out):
 *   its unread bytes are the socket's unflushed bytes, plus (live) the fan-out chunks
 *   queued behind a socket that pushed back, plus (catching up, stalled) the bytes of the
 *   matching changes applied since its socket pushed back. A stream whose unread bytes
 *   pass the bound is cut at the next change for it or the next progress tick, catching
 *   up or live alike: what is queued for it is dropped and it ends with an `overflow`
 *   event naming the first revision it was not sent (or `compacted` if that is no longer
 *   in history). A stalled catch-up holds no slice of history: it reads history again
 *   when its socket drains.
 * - A live stream's socket holds at most its high-water mark plus one fan-out: after a
 *   drain, queued chunks go to it only until it pushes back again, the rest stay queued.
 * - The final event of a cut stream goes right behind what its socket already holds (at
 *   most its high-water mark plus one write), so a client that reads again gets it. The
 *   stream is destroyed only when its client has read nothing for `closeGraceMs`, or
 *   `closeMaxMs` after the end, whichever comes first.
 */
import type { HistoryListener, HistoryNotice, RegistryEvent } from '../../registry/index.js';
import { changeFrame, eventPayload, namedFrame } from './sse.js';

/** What the hub writes to: an http.ServerResponse satisfies it. */
export interface WatchSink {
  readonly writableLength: number;
  /** false = over the high-water mark; 'drain' follows. */
  write(chunk: Buffer): boolean;
  end(chunk?: Buffer): unknown;
  destroy(): unknown;
  cork(): void;
  uncork(): void;
  on(event: 'drain' | 'close', listener: () => void): unknown;
}

/** Which changes a watcher wants: everything, a namespace, a service, or one cluster of a service. */
export interface WatchFilter {
  readonly namespace?: string;
  readonly service?: string;
  readonly cluster?: string;
}

export interface HistorySource {
  readonly revision: number;
  readonly floor: number;
  since(revision: number): readonly RegistryEvent[] | 'compacted';
  subscribe(listener: HistoryListener): () => void;
}

export interface WatchHubOptions {
  /** A watcher whose unread bytes pass this is cut, catching up or live (default 1 MiB). */
  readonly maxBufferedBytes?: number;
  /** Catch-up yields to the event loop after this many bytes (default 64 KiB). */
  readonly pageBytes?: number;
  /** Progress on an idle stream every [min, max] ms, drawn per stream and per tick (default 5000-10000). */
  readonly progressMinMs?: number;
  readonly progressMaxMs?: number;
  /**
   * A stream that was ended is destroyed once its client has read nothing for this long
   * (default 30 s; it holds no more than its socket's buffer meanwhile)...
   */
  readonly closeGraceMs?: number;
  /** ...or this long after it was ended, however slowly its client reads (default 5 min). */
  readonly closeMaxMs?: number;
  readonly random?: () => number;
  /**
   * `coalesced` (default): live events go out on a later turn of the event loop, several
   * applied batches in one write per watcher when the hub is busy. `immediate`: inside the
   * notice (tests that check delivery synchronously).
   */
  readonly fanOut?: 'coalesced' | 'immediate';
  /**
   * Coalesced: the share of the event loop's time live fan-out may take (default 0.1).
   * After a fan-out that took T ms, the next one waits min(T × (1 − share) / share, 25)
   * ms, so the writes that feed it keep the rest of the loop. The share holds only while
   * T ≤ 25 × share / (1 − share) ms (2.8 ms at 0.1); past that the cap wins and fan-out
   * takes T / (T + 25) of the loop.
   */
  readonly fanOutShare?: number;
  /** The clock the pacing reads, ms (default `performance.now`; tests pass a fake one). */
  readonly now?: () => number;
  /** After every live fan-out, with how long it took (the `rollcall_watch_fanout_seconds` histogram). */
  readonly onFanOut?: (seconds: number) => void;
  readonly onCut?: (info: {
    readonly filter: WatchFilter;
    readonly fromRevision: number;
    readonly bufferedBytes: number;
  }) => void;
}

export interface WatchStats {
  readonly live: number;
  readonly catchup: number;
  readonly closing: number;
  readonly bufferedBytes: number;
  readonly opened: number;
  readonly framesSent: number;
  /** Live fan-out writes (framesSent over these is how many frames a write carries). */
  readonly liveWrites: number;
  readonly overflows: number;
  readonly compacted: number;
  /**
   * How long the last live fan-out took, ms (0 before the first). Over 25 × share /
   * (1 − share) (2.8 ms at the default share), the next fan-out waits the 25-ms cap.
   */
  readonly lastFanOutMs: number;
}

type StreamState = 'catchup' | 'live' | 'closing' | 'closed';
/** The frames one fan-out owes a bucket's watchers, with each frame's revision. */
interface BucketFrames {
  readonly frames: Buffer[];
  readonly revisions: number[];
}
/** Longest a live event waits for the next fan-out, however long the last one took. */
const MAX_FAN_OUT_WAIT_MS = 25;
const DEFAULT_FAN_OUT_SHARE = 0.1;
/** A live fan-out chunk held back for a socket that pushed back. */
interface QueuedChunk {
  readonly chunk: Buffer;
  readonly frames: number;
  /** Once it is written, every matching revision <= this has been. */
  readonly through: number;
}
/** How a cluster watcher sees a put that moved an instance between clusters. */
type View = 'as-is' | 'moved-in' | 'moved-out';

class Stream {
  state: StreamState = 'catchup';
  /** Catch-up: the history being paged through; dropped whenever the socket pushes back. */
  backlog: readonly RegistryEvent[] = [];
  at = 0;
  /** The socket refused more (write returned false) and has not drained since. */
  needDrain = false;
  /** Live: fan-out chunks waiting for the socket to drain, in order, and their total size. */
  queue: QueuedChunk[] = [];
  queuedBytes = 0;
  /** Catch-up, stalled: bytes of the matching changes applied since the socket pushed back. */
  owedBytes = 0;
  pumpScheduled = false;
  /** Something other than progress was written since the last progress tick. */
  wrote = false;
  timer: NodeJS.Timeout | null = null;
  grace: NodeJS.Timeout | null = null;

  constructor(
    readonly sink: WatchSink,
    readonly filter: WatchFilter,
    readonly bucket: string,
    public position: number,
  ) {}
}

export class WatchHub {
  private readonly streams = new Set<Stream>();
  private readonly buckets = new Map<string, Set<Stream>>();
  private readonly frames = new WeakMap<RegistryEvent, Buffer>();
  private readonly unsubscribe: () => void;
  /** Every revision <= delivered has been fanned out to the live streams. */
  private delivered: number;
  private closed = false;
  private readonly maxBuffered: number;
  private readonly pageBytes: number;
  private readonly progressMin: number;
  private readonly progressMax: number;
  private readonly graceMs: number;
  private readonly closeMaxMs: number;
  private readonly random: () => number;
  private counters = { opened: 0, framesSent: 0, liveWrites: 0, overflows: 0, compacted: 0 };
  private readonly fanOutMode: 'coalesced' | 'immediate';
  /** Live events not yet fanned out, and the revision their notice ended at. */
  private pending: RegistryEvent[] = [];
  private pendingRevision = 0;
  private flushHandle:
    | { kind: 'timer'; handle: NodeJS.Timeout }
    | { kind: 'immediate'; handle: NodeJS.Immediate }
    | null = null;
  private lastFanOutEnd = 0;
  /** How long to wait after the last fan-out: its cost scaled by `fanOutShare`. */
  private fanOutGap = 0;
  private lastFanOutCost = 0;
  /** The wait after a fan-out per ms it took: (1 − share) / share. */
  private readonly gapPerCost: number;
  private readonly now: () => number;

  constructor(
    private readonly history: HistorySource,
    private readonly options: WatchHubOptions = {},
  ) {
    this.maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;
    this.pageBytes = options.pageBytes ?? 64 * 1024;
    this.progressMin = options.progressMinMs ?? 5000;
    this.progressMax = Math.max(this.progressMin, options.progressMaxMs ?? this.progressMin * 2);
    this.graceMs = options.closeGraceMs ?? 30_000;
    this.closeMaxMs = Math.max(this.graceMs, options.closeMaxMs ?? 300_000);
    this.random = options.random ?? Math.random;
    this.fanOutMode = options.fanOut ?? 'coalesced';
    const share = options.fanOutShare ?? DEFAULT_FAN_OUT_SHARE;
    if (!(share > 0 && share <= 1)) throw new Error(`fanOutShare: a share in (0, 1], got ${share}`);
    this.gapPerCost = (1 - share) / share;
    this.now = options.now ?? (() => performance.now());
    this.delivered = history.revision;
    this.unsubscribe = history.subscribe((n) => this.onNotice(n));
  }

  /**
   * Starts a stream that delivers every matching event with revision > `after`, then live
   * ones. `after` below the history floor gets one `compacted` event and the stream ends.
   */
  open(sink: WatchSink, filter: WatchFilter, after: number): void {
    if (this.closed) {
      sink.end();
      return;
    }
    if (filter.service !== undefined && filter.namespace === undefined)
      throw new Error('a service filter needs a namespace');
    if (filter.cluster !== undefined && filter.service === undefined)
      throw new Error('a cluster filter needs a service');
    const s = new Stream(sink, filter, bucketOf(filter), after);
    this.streams.add(s);
    this.counters.opened++;
    sink.on('close', () => this.onSinkClosed(s));
    sink.on('drain', () => this.onDrain(s));
    if (after < this.history.floor) {
      this.sendCompacted(s);
      return;
    }
    this.joinBucket(s);
    this.pump(s);
    if (s.state === 'catchup' || s.state === 'live') this.scheduleProgress(s);
  }

  stats(): WatchStats {
    let live = 0;
    let catchup = 0;
    let closing = 0;
    let bufferedBytes = 0;
    for (const s of this.streams) {
      if (s.state === 'live') live++;
      else if (s.state === 'catchup') catchup++;
      else if (s.state === 'closing') closing++;
      bufferedBytes += s.sink.writableLength + s.queuedBytes;
    }
    return { live, catchup, closing, bufferedBytes, ...this.counters, lastFanOutMs: this.lastFanOutCost };
  }

  /** Ends every stream (node shutting down); clients resume elsewhere with their last id. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.unsubscribe();
    this.cancelFlush();
    this.pending = [];
    for (const s of [...this.streams]) {
      this.endStream(s);
      if (s.sink.writableLength > 0) s.sink.destroy();
    }
  }

  // ---- catch-up -----------------------------------------------------------------------

  /** Writes history to a catching-up stream until its socket pushes back, then goes live. */
  private pump(s: Stream): void {
    if (s.state !== 'catchup' || s.needDrain) return;
    let written = 0;
    s.sink.cork();
    try {
      for (;;) {
        if (s.at >= s.backlog.length) {
          const more = this.history.since(s.position);
          if (more === 'compacted') return this.sendCompacted(s);
          if (more.length === 0) return this.goLive(s);
          s.backlog = more;
          s.at = 0;
        }
        if (written >= this.pageBytes) {
          // A long backlog must not hold the event loop: continue on the next turn.
          if (!s.pumpScheduled) {
            s.pumpScheduled = true;
            setImmediate(() => {
              s.pumpScheduled = false;
              this.pump(s);
            });
          }
          return;
        }
        // One whole revision at a time, so `position` is always a revision boundary.
        const rev = s.backlog[s.at]!.revision;
        while (s.at < s.backlog.length && s.backlog[s.at]!.revision === rev) {
          const e = s.backlog[s.at++]!;
          const view = viewOf(s.filter, e);
          if (view === null) continue;
          const frame = this.frameFor(e, view);
          if (!s.sink.write(frame)) s.needDrain = true;
          written += frame.length;
          s.wrote = true;
          this.counters.framesSent++;
        }
        s.position = rev;
        if (s.needDrain) return this.stall(s);
      }
    } finally {
      s.sink.uncork();
    }
  }

  /**
   * The client of a catching-up stream stopped reading (for now). It keeps no slice of
   * history while it waits: a client that never reads again must not keep events that
   * history has since evicted, and their encodings, alive. From here on, the fan-out
   * charges it with the changes it misses, against the same budget as a live stream.
   */
  private stall(s: Stream): void {
    s.backlog = [];
    s.at = 0;
    s.owedBytes = 0;
  }

  private goLive(s: Stream): void {
    s.backlog = [];
    s.at = 0;
    s.owedBytes = 0;
    s.state = 'live';
  }

  private onDrain(s: Stream): void {
    s.needDrain = false;
    if (s.state === 'catchup') {
      s.owedBytes = 0;
      this.pump(s);
    } else if (s.state === 'live') {
      this.flushQueue(s);
    }
  }

  private joinBucket(s: Stream): void {
    let bucket = this.buckets.get(s.bucket);
    if (bucket === undefined) {
      bucket = new Set();
      this.buckets.set(s.bucket, bucket);
    }
    bucket.add(s);
  }

  // ---- live fan-out -------------------------------------------------------------------

  private onNotice(n: HistoryNotice): void {
    switch (n.kind) {
      case 'reset':
        // Events from before the reset are real: they go out first.
        this.flushPending();
        // State was replaced by a snapshot: the events in between were never seen here.
        this.delivered = n.revision;
        for (const s of [...this.streams]) if (s.state === 'live' || s.state === 'catchup') this.sendCompacted(s);
        return;
      case 'events':
        this.onEvents(n.events, n.revision);
        return;
    }
  }

  /**
   * Live events wait here until the next fan-out. Under load that turns many small writes
   * per watcher (one per applied batch) into one larger write: each write to a socket is a
   * syscall whose cost, not the bytes, bounds fan-out. Events are already in history, so a
   * stream that goes live meanwhile has them by position and skips them below.
   */
  private onEvents(events: readonly RegistryEvent[], revision: number): void {
    for (const e of events) this.pending.push(e);
    this.pendingRevision = revision;
    if (this.fanOutMode === 'immediate') return this.flushPending();
    if (this.flushHandle !== null) return;
    // The next fan-out waits its gap after the last (its cost scaled by `fanOutShare`,
    // capped at 25 ms): fan-out then takes at most that share of the event loop while the
    // cap does not bind, leaving the rest to Raft and to the writes, and the more a fan-out
    // costs the more the next write carries. Past the gap, it goes out on the next turn.
    const wait = this.lastFanOutEnd + this.fanOutGap - this.now();
    this.flushHandle =
      wait > 0
        ? { kind: 'timer', handle: setTimeout(() => this.flushPending(), Math.min(wait, MAX_FAN_OUT_WAIT_MS)) }
        : { kind: 'immediate', handle: setImmediate(() => this.flushPending()) };
  }

  private cancelFlush(): void {
    const f = this.flushHandle;
    if (f === null) return;
    if (f.kind === 'timer') clearTimeout(f.handle);
    else clearImmediate(f.handle);
    this.flushHandle = null;
  }

  /** Fans out every pending event now. */
  private flushPending(): void {
    this.cancelFlush();
    if (this.pending.length === 0) {
      // A revision without events (an access-rules or health-policy change): nothing to
      // send, and nothing older is left unsent, so progress may report it at once.
      this.delivered = Math.max(this.delivered, this.pendingRevision);
      return;
    }
    const events = this.pending;
    this.pending = [];
    const t0 = this.now();
    this.fanOut(events, this.pendingRevision);
    this.lastFanOutEnd = this.now();
    this.lastFanOutCost = this.lastFanOutEnd - t0;
    this.fanOutGap = this.lastFanOutCost * this.gapPerCost;
    this.options.onFanOut?.(this.lastFanOutCost / 1000);
  }

  /**
   * One write per live watcher: the frames of its bucket, concatenated once per bucket.
   * A stream that is ahead of some of them (it went live, or resumed, past their revision)
   * gets only the frames after its position, so it never sees a revision twice. A stream
   * whose socket pushed back gets them queued instead; a catching-up stream whose socket
   * pushed back is charged their size. Either is cut once its unread bytes pass the bound.
   */
  private fanOut(events: readonly RegistryEvent[], revision: number): void {
    const out = new Map<Set<Stream>, BucketFrames>();
    for (const e of events) this.collect(e, out);
    for (const [bucket, list] of out) {
      let all: Buffer | null = null;
      for (const s of bucket) {
        if (s.state !== 'live' && !(s.state === 'catchup' && s.needDrain)) continue;
        const from = s.position < list.revisions[0]! ? 0 : list.revisions.findIndex((r) => r > s.position);
        if (from < 0) continue;
        if (this.unread(s) > this.maxBuffered) {
          this.cut(s);
          continue;
        }
        if (s.state === 'catchup') {
          for (let i = from; i < list.frames.length; i++) s.owedBytes += list.frames[i]!.length;
          continue;
        }
        const chunk =
          from === 0
            ? (all ??= list.frames.length === 1 ? list.frames[0]! : Buffer.concat(list.frames))
            : Buffer.concat(list.frames.slice(from));
        this.send(s, { chunk, frames: list.frames.length - from, through: revision });
      }
    }
    this.delivered = Math.max(this.delivered, revision);
  }

  /** Writes a live chunk, or queues it behind a socket that pushed back (order is kept either way). */
  private send(s: Stream, out: QueuedChunk): void {
    s.wrote = true;
    if (s.needDrain || s.queue.length > 0) {
      // Everything up to the last fan-out has been written: that is where a cut resumes.
      if (s.queue.length === 0) s.position = Math.max(s.position, this.delivered);
      s.queue.push(out);
      s.queuedBytes += out.chunk.length;
      return;
    }
    if (!s.sink.write(out.chunk)) s.needDrain = true;
    this.counters.framesSent += out.frames;
    this.counters.liveWrites++;
  }

  /**
   * The socket of a live stream drained: queued chunks go out in order (corked: one write)
   * until it pushes back again; the rest wait for the next drain. Handing it the whole
   * queue at once moved up to the whole budget into the socket's buffer, out of a cut's
   * reach, and a cut's final event then waited behind all of it.
   */
  private flushQueue(s: Stream): void {
    if (s.queue.length === 0) return;
    let sent = 0;
    s.sink.cork();
    try {
      while (sent < s.queue.length && !s.needDrain) {
        const out = s.queue[sent++]!;
        s.queuedBytes -= out.chunk.length;
        s.position = Math.max(s.position, out.through);
        this.counters.framesSent += out.frames;
        if (!s.sink.write(out.chunk)) s.needDrain = true;
      }
    } finally {
      s.sink.uncork();
    }
    this.counters.liveWrites++;
    s.queue = sent === s.queue.length ? [] : s.queue.slice(sent);
  }

  /** Bytes the client has not read that the hub holds or owes: see the invariants above. */
  private unread(s: Stream): number {
    return s.sink.writableLength + s.queuedBytes + s.owedBytes;
  }

  /** Every matching revision <= this has been handed to the stream's socket. */
  private writtenThrough(s: Stream): number {
    if (s.state === 'catchup' || s.queue.length > 0) return s.position;
    return Math.max(s.position, this.delivered);
  }

  /** Adds the event's frame to each bucket it touches. */
  private collect(e: RegistryEvent, out: Map<Set<Stream>, BucketFrames>): void {
    const i = e.instance;
    const svc = `${i.namespace}/${i.service}`;
    this.addTo(this.buckets.get('*'), e, 'as-is', out);
    this.addTo(this.buckets.get(`n:${i.namespace}`), e, 'as-is', out);
    this.addTo(this.buckets.get(`s:${svc}`), e, 'as-is', out);
    const prev = e.type === 'put' ? e.previous : undefined;
    if (prev !== undefined && prev.cluster !== i.cluster) {
      this.addTo(this.buckets.get(`c:${svc}/${i.cluster}`), e, 'moved-in', out);
      this.addTo(this.buckets.get(`c:${svc}/${prev.cluster}`), e, 'moved-out', out);
    } else {
      this.addTo(this.buckets.get(`c:${svc}/${i.cluster}`), e, 'as-is', out);
    }
  }

  private addTo(
    bucket: Set<Stream> | undefined,
    e: RegistryEvent,
    view: View,
    out: Map<Set<Stream>, BucketFrames>,
  ): void {
    if (bucket === undefined || bucket.size === 0) return;
    const frame = this.frameFor(e, view);
    const list = out.get(bucket);
    if (list === undefined) out.set(bucket, { frames: [frame], revisions: [e.revision] });
    else {
      list.frames.push(frame);
      list.revisions.push(e.revision);
    }
  }

  private frameFor(e: RegistryEvent, view: View): Buffer {
    if (view === 'as-is') {
      let f = this.frames.get(e);
      if (f === undefined) {
        f = changeFrame(e.revision, eventPayload(e));
        this.frames.set(e, f);
      }
      return f;
    }
    // A cluster watcher sees an instance that moved in as created, and one that moved out as deleted.
    if (view === 'moved-in') {
      const { previous: _previous, ...created } = eventPayload(e);
      return changeFrame(e.revision, created);
    }
    const previous = e.type === 'put' ? e.previous : undefined;
    const removed = eventPayload({
      type: 'delete',
      revision: e.revision,
      instance: previous ?? e.instance,
      cause: e.cause,
    });
    return changeFrame(e.revision, removed);
  }

  // ---- progress, overflow, compaction, close ------------------------------------------

  private scheduleProgress(s: Stream): void {
    const delay = this.progressMin + Math.floor(this.random() * (this.progressMax - this.progressMin + 1));
    s.timer = setTimeout(() => this.onProgressTick(s), delay);
    s.timer.unref();
  }

  private onProgressTick(s: Stream): void {
    s.timer = null;
    if (s.state !== 'live' && s.state !== 'catchup') return;
    // (A catch-up whose socket takes what it writes is reading: only a stalled one is cut.)
    if ((s.state === 'live' || s.needDrain) && this.unread(s) > this.maxBuffered) return this.cut(s);
    if (s.state === 'live' && !s.wrote && s.queue.length === 0) {
      const through = this.writtenThrough(s);
      s.sink.write(namedFrame('progress', { revision: this.delivered }, through));
      this.counters.framesSent++;
    }
    s.wrote = false;
    this.scheduleProgress(s);
  }

  /**
   * Slow watcher: end it with the revision to resume from instead of buffering without
   * bound. What is queued for it is dropped, so the final event goes out right behind what
   * its socket already holds.
   */
  private cut(s: Stream): void {
    const through = this.writtenThrough(s);
    const fromRevision = through + 1;
    this.counters.overflows++;
    this.options.onCut?.({ filter: s.filter, fromRevision, bufferedBytes: this.unread(s) });
    if (through < this.history.floor) {
      // Its resume point is already gone from history: say so now rather than after a reconnect.
      s.position = through;
      return this.sendCompacted(s);
    }
    const message = `watcher too slow: more than ${this.maxBuffered} bytes unread; resume with fromRevision=${fromRevision}`;
    this.endStream(s, namedFrame('overflow', { revision: this.delivered, fromRevision, message }, through));
  }

  private sendCompacted(s: Stream): void {
    this.counters.compacted++;
    const revision = Math.max(this.delivered, this.history.revision);
    const message = `revisions after ${s.position} are no longer in this node's history (it starts at ${this.history.floor}); list again, then watch from the listed revision + 1`;
    // No `id:`: an EventSource must not silently resume past the gap.
    this.endStream(s, namedFrame('compacted', { revision, compactRevision: this.history.floor, message }));
  }

  private endStream(s: Stream, finalFrame?: Buffer): void {
    if (s.state === 'closing' || s.state === 'closed') return;
    this.leaveBucket(s);
    if (s.timer) clearTimeout(s.timer);
    s.timer = null;
    this.forget(s);
    s.state = 'closing';
    if (finalFrame) this.counters.framesSent++;
    s.sink.end(finalFrame);
    this.armGrace(s, s.sink.writableLength, 0);
  }

  /**
   * An ended stream is destroyed only when its client stops reading: each `closeGraceMs`
   * the bytes still unflushed must have shrunk, or it goes (and after `closeMaxMs` in
   * all). A client that reads again gets the final event; one that never does holds at
   * most its socket's buffer for `closeGraceMs`. (Destroying it on a fixed timer instead
   * dropped the final event of a client that was still reading what came before it.)
   */
  private armGrace(s: Stream, unflushed: number, waited: number): void {
    const wait = Math.min(this.graceMs, this.closeMaxMs - waited);
    s.grace = setTimeout(() => {
      s.grace = null;
      const now = s.sink.writableLength;
      if (now > 0 && now < unflushed && waited + wait < this.closeMaxMs) return this.armGrace(s, now, waited + wait);
      s.sink.destroy();
    }, wait);
    s.grace.unref();
  }

  private onSinkClosed(s: Stream): void {
    this.leaveBucket(s);
    if (s.timer) clearTimeout(s.timer);
    if (s.grace) clearTimeout(s.grace);
    s.timer = null;
    s.grace = null;
    this.forget(s);
    s.state = 'closed';
    this.streams.delete(s);
  }

  /** Drops whatever the hub holds for a stream that is ending. */
  private forget(s: Stream): void {
    s.backlog = [];
    s.at = 0;
    s.queue = [];
    s.queuedBytes = 0;
    s.owedBytes = 0;
  }

  private leaveBucket(s: Stream): void {
    const bucket = this.buckets.get(s.bucket);
    if (bucket?.delete(s) && bucket.size === 0) this.buckets.delete(s.bucket);
  }
}

function bucketOf(f: WatchFilter): string {
  if (f.namespace === undefined) return '*';
  if (f.service === undefined) return `n:${f.namespace}`;
  if (f.cluster === undefined) return `s:${f.namespace}/${f.service}`;
  return `c:${f.namespace}/${f.service}/${f.cluster}`;
}

/** Whether (and how) a watcher with this filter sees the event; the catch-up twin of `collect`. */
function viewOf(f: WatchFilter, e: RegistryEvent): View | null {
  const i = e.instance;
  if (f.namespace !== undefined && i.namespace !== f.namespace) return null;
  if (f.service !== undefined && i.service !== f.service) return null;
  if (f.cluster === undefined) return 'as-is';
  const prev = e.type === 'put' ? e.previous : undefined;
  const inNow = i.cluster === f.cluster;
  if (prev === undefined || prev.cluster === i.cluster) return inNow ? 'as-is' : null;
  if (inNow) return 'moved-in';
  return prev.cluster === f.cluster ? 'moved-out' : null;
}
