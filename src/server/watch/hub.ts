/**
 * The watch hub: every SSE watcher of this node, fed from the registry's event history.
 *
 * A stream starts in `catchup`: it pages through `history.since(position)` at the pace its
 * socket drains, then, in the same synchronous step that finds nothing more to read, turns
 * `live` and joins its index bucket. History listeners run synchronously inside
 * `applyBatch`, and the hub subscribed before any stream existed, so no notice can fall
 * between "read history" and "go live". Live fan-out still drops every event at or below
 * the stream's position (dedupe by revision), which also serves resumes from the future.
 *
 * Invariants:
 * - `position`: every matching event with revision <= position has been written to the
 *   stream (for a live stream, effectively max(position, delivered)).
 * - Pages and fan-out never split a revision: one command's events go out together, so a
 *   resume point is always a whole revision.
 * - A live stream is in exactly one bucket (its filter's key), so a change in one service
 *   touches only the buckets of that namespace/service/cluster and the catch-all bucket.
 * - Each event is encoded once (cached by event object, which history keeps immutable) and
 *   the same Buffer is written to every live watcher that wants it.
 * - Live events are fanned out on a later turn of the event loop, not inside the apply
 *   that produced them: the writes' answers go first, and under load several applied
 *   batches leave in one write per watcher (one concatenation per bucket). Pending events
 *   are already in history, so `position` keeps a stream from seeing them twice.
 * - A live stream whose unflushed bytes pass `maxBufferedBytes` is ended with an `overflow`
 *   event naming where to resume, then destroyed after `closeGraceMs` if the client still
 *   does not read: memory per watcher stays under the bound plus one fan-out's events (at
 *   most ~25 ms of applied batches).
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
  /** A live watcher whose unflushed bytes pass this is cut (default 1 MiB). */
  readonly maxBufferedBytes?: number;
  /** Catch-up yields to the event loop after this many bytes (default 64 KiB). */
  readonly pageBytes?: number;
  /** Progress on an idle stream every [min, max] ms, drawn per stream and per tick (default 5000-10000). */
  readonly progressMinMs?: number;
  readonly progressMaxMs?: number;
  /** A stream that was ended but whose client does not read is destroyed after this (default 10 s). */
  readonly closeGraceMs?: number;
  readonly random?: () => number;
  /**
   * `coalesced` (default): live events go out on a later turn of the event loop, several
   * applied batches in one write per watcher when the hub is busy. `immediate`: inside the
   * notice (tests that check delivery synchronously).
   */
  readonly fanOut?: 'coalesced' | 'immediate';
  readonly onCut?: (info: { readonly filter: WatchFilter; readonly fromRevision: number; readonly bufferedBytes: number }) => void;
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
}

type StreamState = 'catchup' | 'live' | 'closing' | 'closed';
/** The frames one fan-out owes a bucket's watchers, with each frame's revision. */
interface BucketFrames {
  readonly frames: Buffer[];
  readonly revisions: number[];
}
/** Longest a live event waits for the next fan-out, however long the last one took. */
const MAX_FAN_OUT_WAIT_MS = 25;
/** How a cluster watcher sees a put that moved an instance between clusters. */
type View = 'as-is' | 'moved-in' | 'moved-out';

class Stream {
  state: StreamState = 'catchup';
  backlog: readonly RegistryEvent[] = [];
  at = 0;
  needDrain = false;
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
  private readonly random: () => number;
  private counters = { opened: 0, framesSent: 0, liveWrites: 0, overflows: 0, compacted: 0 };
  private readonly fanOutMode: 'coalesced' | 'immediate';
  /** Live events not yet fanned out, and the revision their notice ended at. */
  private pending: RegistryEvent[] = [];
  private pendingRevision = 0;
  private flushHandle: { kind: 'timer'; handle: NodeJS.Timeout } | { kind: 'immediate'; handle: NodeJS.Immediate } | null = null;
  private lastFanOutEnd = 0;
  private lastFanOutCost = 0;

  constructor(
    private readonly history: HistorySource,
    private readonly options: WatchHubOptions = {},
  ) {
    this.maxBuffered = options.maxBufferedBytes ?? 1024 * 1024;
    this.pageBytes = options.pageBytes ?? 64 * 1024;
    this.progressMin = options.progressMinMs ?? 5000;
    this.progressMax = Math.max(this.progressMin, options.progressMaxMs ?? this.progressMin * 2);
    this.graceMs = options.closeGraceMs ?? 10_000;
    this.random = options.random ?? Math.random;
    this.fanOutMode = options.fanOut ?? 'coalesced';
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
    if (filter.service !== undefined && filter.namespace === undefined) throw new Error('a service filter needs a namespace');
    if (filter.cluster !== undefined && filter.service === undefined) throw new Error('a cluster filter needs a service');
    const s = new Stream(sink, filter, bucketOf(filter), after);
    this.streams.add(s);
    this.counters.opened++;
    sink.on('close', () => this.onSinkClosed(s));
    sink.on('drain', () => {
      s.needDrain = false;
      this.pump(s);
    });
    if (after < this.history.floor) {
      this.sendCompacted(s);
      return;
    }
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
      bufferedBytes += s.sink.writableLength;
    }
    return { live, catchup, closing, bufferedBytes, ...this.counters };
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
        if (s.needDrain) return;
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
      }
    } finally {
      s.sink.uncork();
    }
  }

  private goLive(s: Stream): void {
    s.backlog = [];
    s.at = 0;
    s.state = 'live';
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
    // The next fan-out waits as long as the last one took (capped): fan-out then takes at
    // most about half the event loop, leaving the rest to Raft and to the writes' answers,
    // and the busier the hub the more each write carries. Idle, it goes out on the next turn.
    const wait = this.lastFanOutEnd + this.lastFanOutCost - performance.now();
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
    const t0 = performance.now();
    this.fanOut(events, this.pendingRevision);
    this.lastFanOutEnd = performance.now();
    this.lastFanOutCost = this.lastFanOutEnd - t0;
  }

  /**
   * One write per live watcher: the frames of its bucket, concatenated once per bucket.
   * A stream that is ahead of some of them (it went live, or resumed, past their revision)
   * gets only the frames after its position, so it never sees a revision twice.
   */
  private fanOut(events: readonly RegistryEvent[], revision: number): void {
    const out = new Map<Set<Stream>, BucketFrames>();
    for (const e of events) this.collect(e, out);
    for (const [bucket, list] of out) {
      const all = list.frames.length === 1 ? list.frames[0]! : Buffer.concat(list.frames);
      for (const s of bucket) {
        if (s.state !== 'live') continue;
        let chunk = all;
        let count = list.frames.length;
        if (s.position >= list.revisions[0]!) {
          const from = list.revisions.findIndex((r) => r > s.position);
          if (from < 0) continue;
          chunk = Buffer.concat(list.frames.slice(from));
          count -= from;
        }
        if (s.sink.writableLength > this.maxBuffered) {
          this.cut(s);
          continue;
        }
        s.sink.write(chunk);
        s.wrote = true;
        this.counters.framesSent += count;
        this.counters.liveWrites++;
      }
    }
    this.delivered = Math.max(this.delivered, revision);
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

  private addTo(bucket: Set<Stream> | undefined, e: RegistryEvent, view: View, out: Map<Set<Stream>, BucketFrames>): void {
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
    const removed = eventPayload({ type: 'delete', revision: e.revision, instance: previous ?? e.instance, cause: e.cause });
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
    if (s.state === 'catchup') return this.scheduleProgress(s);
    if (s.state !== 'live') return;
    if (s.sink.writableLength > this.maxBuffered) return this.cut(s);
    if (!s.wrote) {
      const through = Math.max(s.position, this.delivered);
      s.sink.write(namedFrame('progress', { revision: this.delivered }, through));
      this.counters.framesSent++;
    }
    s.wrote = false;
    this.scheduleProgress(s);
  }

  /** Slow watcher: end it with the revision to resume from instead of buffering without bound. */
  private cut(s: Stream): void {
    const through = Math.max(s.position, this.delivered);
    const fromRevision = through + 1;
    this.counters.overflows++;
    this.options.onCut?.({ filter: s.filter, fromRevision, bufferedBytes: s.sink.writableLength });
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
    s.backlog = [];
    s.state = 'closing';
    if (finalFrame) this.counters.framesSent++;
    s.sink.end(finalFrame);
    s.grace = setTimeout(() => s.sink.destroy(), this.graceMs);
    s.grace.unref();
  }

  private onSinkClosed(s: Stream): void {
    this.leaveBucket(s);
    if (s.timer) clearTimeout(s.timer);
    if (s.grace) clearTimeout(s.grace);
    s.timer = null;
    s.grace = null;
    s.backlog = [];
    s.state = 'closed';
    this.streams.delete(s);
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
