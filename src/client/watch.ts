/**
 * A watch: the registry's changes as an async iterator that survives node failures.
 *
 * Guarantees (given the server's: events in revision order, resume from any revision still
 * in history, `compacted` otherwise):
 *
 * - Never misses: the watch remembers the last revision it has passed on (or that a progress
 *   event vouched for) and every reconnect asks for `fromRevision = that + 1`, on whichever
 *   node answers. When the server no longer has that revision it says `compacted`; the watch
 *   then re-lists the service and yields a `reset` with the whole state at the list's
 *   revision, and continues from there.
 * - Never repeats: an event at or below the last revision passed on is dropped (a node may
 *   replay what another already sent).
 * - Bounded memory: events are read from the socket only as fast as the caller pulls them,
 *   so a slow consumer slows the stream; the server cuts a stalled watcher off with a
 *   resume point, and the watch reconnects from there.
 * - A node that stops talking (SIGSTOP, partition) is detected by silence: with no bytes for
 *   `idleTimeoutMs` (servers send progress events on idle streams) the watch moves on.
 *
 * Race (1): relisting after `compacted` reads from any node, which may be behind the node the
 * stream was on. A list older than what was already passed on would move the caller back in
 * time, so such a list is retried until its revision has caught up.
 */
import { jitter, sleep } from './delay.js';
import {
  ApiError,
  ClientClosedError,
  CompactedError,
  type RollcallError,
  UnavailableError,
  UnsupportedError,
} from './errors.js';
import type { NodePool, StreamResult } from './node-pool.js';
import { type SseMessage, SseParser } from './sse.js';
import type { ClientLogger, Consistency, Instance, ListResult, WatchEvent } from './types.js';

export interface WatchOptions {
  /** Watch one namespace (every namespace when left out, if the server allows it). */
  readonly namespace?: string;
  /** Watch one service of the namespace. */
  readonly service?: string;
  /** Only this cluster of the service. */
  readonly cluster?: string;
  /**
   * Deliver every change with revision ≥ this (a resume point: last seen + 1). By default the
   * watch starts after the registry's current revision.
   */
  readonly fromRevision?: number;
  /** First yield a `reset` with the current instances (list, then watch from there); needs a namespace. */
  readonly initial?: boolean;
  /** Also yield `progress` events (idle streams' revision). Default false. */
  readonly progress?: boolean;
  /**
   * Watch another datacenter (`?dc=`; default the client's `dc`): the stream is relayed by
   * the node from a member there, and revisions are that datacenter's.
   */
  readonly dc?: string;
}

/** What a watch needs from the client. */
export interface WatchContext {
  readonly nodes: NodePool;
  readonly random: () => number;
  readonly logger?: ClientLogger | undefined;
  /** Bounds the wait for a stream's status line. */
  readonly connectTimeoutMs: number;
  /** With no bytes for this long, the stream is taken as dead. */
  readonly idleTimeoutMs: number;
  /** Re-lists may read from a node without a leader when no linearizable read is possible. */
  readonly allowStaleLists: boolean;
  list(namespace: string, service: string, cluster: string | undefined, consistency: Consistency): Promise<ListResult>;
  /** Every instance of a namespace (a namespace-wide watch's re-list). */
  listNamespace(
    namespace: string,
    consistency: Consistency,
  ): Promise<{ readonly revision: number; readonly instances: readonly Instance[] }>;
  currentRevision(): Promise<number>;
  /** Called once when the watch ends, however it ends. */
  onClosed?(watch: Watch): void;
}

const WATCH_PATH = '/v1/watch';

type Handled = WatchEvent | { readonly type: 'compacted'; readonly revision: number } | null;

/**
 * An async iterator of registry changes that resumes across node failures.
 *
 * @example
 * ```ts
 * const watch = client.watch({ namespace: 'prod', service: 'orders', initial: true });
 * for await (const ev of watch) {
 *   if (ev.type === 'reset') replaceAll(ev.instances);
 *   else if (ev.type === 'put') upsert(ev.instance);
 *   else if (ev.type === 'delete') remove(ev.instance.id);
 * }
 * ```
 */
export class Watch implements AsyncIterable<WatchEvent> {
  readonly #ctx: WatchContext;
  readonly #o: WatchOptions;
  readonly #closing = new AbortController();
  readonly #iterator: AsyncGenerator<WatchEvent, void, undefined>;
  #iterated = false;
  /** The last revision passed on (events and resets): anything at or below is a repeat. */
  #delivered = 0;
  /** Everything up to here has been seen or vouched for: reconnects resume after it. */
  #resumeAfter = 0;
  #lastProgress = 0;
  #stream: StreamResult | null = null;
  #node: string | null = null;
  #reconnects = 0;

  constructor(ctx: WatchContext, options: WatchOptions) {
    if (options.initial && options.namespace === undefined) throw new TypeError('watch: initial needs a namespace');
    if (options.cluster !== undefined && options.service === undefined)
      throw new TypeError('watch: cluster needs a service');
    if (options.service !== undefined && options.namespace === undefined)
      throw new TypeError('watch: service needs a namespace');
    if (options.initial && options.fromRevision !== undefined)
      throw new TypeError('watch: use either initial or fromRevision');
    if (
      options.fromRevision !== undefined &&
      (!Number.isSafeInteger(options.fromRevision) || options.fromRevision < 1)
    ) {
      throw new TypeError('watch: fromRevision must be a positive integer');
    }
    this.#ctx = ctx;
    this.#o = options;
    this.#iterator = this.#run();
    this.#closing.signal.addEventListener('abort', () => ctx.onClosed?.(this), { once: true });
  }

  /** The last revision this watch has passed on or been told is complete. */
  get revision(): number {
    return this.#resumeAfter;
  }

  /** The node the stream is connected to now (null between connections). */
  get node(): string | null {
    return this.#stream ? this.#node : null;
  }

  /** How many times the stream was reopened after a failure or a server cut. */
  get reconnects(): number {
    return this.#reconnects;
  }

  get closed(): boolean {
    return this.#closing.signal.aborted;
  }

  [Symbol.asyncIterator](): AsyncIterator<WatchEvent> {
    if (this.#iterated) throw new TypeError('a watch can be iterated once; open another watch for another consumer');
    this.#iterated = true;
    return this.#iterator;
  }

  /** Stops the watch: the stream's socket closes and the iterator finishes. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.#closing.abort();
    this.#stream?.destroy();
    // A generator suspended at a yield finishes now; one suspended at an await finishes
    // when that await settles (the destroyed socket makes it settle at once).
    void this.#iterator.return(undefined).catch(() => undefined);
  }

  async *#run(): AsyncGenerator<WatchEvent, void, undefined> {
    try {
      if (this.#o.initial) yield await this.#relist('initial');
      else if (this.#o.fromRevision !== undefined) this.#delivered = this.#resumeAfter = this.#o.fromRevision - 1;
      else this.#delivered = this.#resumeAfter = await this.#startRevision();
      let failures = 0;
      let avoid: string | null = null;
      while (!this.closed) {
        let stream: StreamResult;
        try {
          stream = await this.#ctx.nodes.stream(
            WATCH_PATH,
            this.#query(),
            avoid,
            this.#ctx.connectTimeoutMs,
            this.#o.dc,
          );
        } catch (err) {
          if (this.closed || err instanceof ClientClosedError) return;
          if (err instanceof ApiError) throw this.#explain(err);
          if (!(err instanceof UnavailableError)) throw err;
          this.#ctx.logger?.debug({ err: err.message }, 'watch: no node would take the stream; retrying');
          await sleep(this.#backoff(++failures), this.#closing.signal);
          continue;
        }
        this.#stream = stream;
        this.#node = stream.node;
        let broken = false;
        let compactedAt: number | null = null;
        try {
          for await (const msg of this.#messages(stream)) {
            failures = 0;
            const out = this.#handle(msg);
            if (out === null) continue;
            if (out.type === 'compacted') {
              compactedAt = out.revision;
              break;
            }
            yield out;
          }
          broken = !stream.res.complete;
        } catch (err) {
          if (this.closed) return;
          broken = true;
          this.#ctx.logger?.debug(
            { node: stream.url, err: err instanceof Error ? err.message : String(err) },
            'watch stream broke; resuming elsewhere',
          );
        } finally {
          stream.destroy();
          this.#stream = null;
        }
        if (this.closed) return;
        if (compactedAt !== null) {
          if (this.#o.namespace === undefined) throw new CompactedError(this.#resumeAfter + 1, compactedAt);
          yield await this.#relist('compacted');
          continue;
        }
        this.#reconnects++;
        if (broken) {
          this.#ctx.nodes.reportStreamFailure(stream.url);
          avoid = stream.url;
          failures++;
          await sleep(this.#backoff(failures) / 4, this.#closing.signal);
        } else {
          avoid = null;
        }
      }
    } catch (err) {
      if (this.closed || err instanceof ClientClosedError) return;
      throw err;
    } finally {
      this.#closing.abort();
      this.#stream?.destroy();
    }
  }

  #query(): Record<string, string | number | undefined> {
    return {
      namespace: this.#o.namespace,
      service: this.#o.service,
      cluster: this.#o.cluster,
      fromRevision: this.#resumeAfter + 1,
    };
  }

  /** SSE messages off one stream, giving up on it after `idleTimeoutMs` of silence or on close(). */
  async *#messages(stream: StreamResult): AsyncGenerator<SseMessage> {
    const parser = new SseParser();
    const chunks = stream.res[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    const signal = this.#closing.signal;
    for (;;) {
      let timer: NodeJS.Timeout | undefined;
      let onClose: (() => void) | undefined;
      const stop = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          stream.destroy();
          reject(new Error(`no bytes for ${this.#ctx.idleTimeoutMs} ms`));
        }, this.#ctx.idleTimeoutMs);
        onClose = () => reject(new ClientClosedError('watch'));
        if (signal.aborted) onClose();
        else signal.addEventListener('abort', onClose, { once: true });
      });
      let next: IteratorResult<Buffer>;
      try {
        next = await Promise.race([chunks.next(), stop]);
      } finally {
        clearTimeout(timer);
        signal.removeEventListener('abort', onClose!);
      }
      if (next.done) return;
      for (const m of parser.push(next.value)) yield m;
    }
  }

  #handle(m: SseMessage): Handled {
    let data: Record<string, unknown> = {};
    if (m.data.length > 0) {
      try {
        const parsed = JSON.parse(m.data) as unknown;
        if (parsed && typeof parsed === 'object') data = parsed as Record<string, unknown>;
      } catch {
        this.#ctx.logger?.warn({ event: m.event }, 'watch: ignoring an event whose data is not JSON');
        return null;
      }
    }
    const kind = m.event === 'message' ? data.type : m.event;
    const rev =
      typeof data.revision === 'number' ? data.revision : m.id !== null && /^\d+$/.test(m.id) ? Number(m.id) : NaN;
    switch (kind) {
      case 'put':
      case 'delete': {
        if (!Number.isSafeInteger(rev) || data.instance === undefined) return null;
        if (rev <= this.#delivered) return null; // a repeat
        this.#delivered = rev;
        this.#resumeAfter = Math.max(this.#resumeAfter, rev);
        const instance = data.instance as Instance;
        if (kind === 'delete') return { type: 'delete', revision: rev, instance };
        return data.previous
          ? { type: 'put', revision: rev, instance, previous: data.previous as Instance }
          : { type: 'put', revision: rev, instance };
      }
      case 'progress': {
        if (!Number.isSafeInteger(rev)) return null;
        this.#resumeAfter = Math.max(this.#resumeAfter, rev);
        if (!this.#o.progress || rev <= this.#lastProgress) return null;
        this.#lastProgress = rev;
        return { type: 'progress', revision: rev };
      }
      case 'compacted':
        return { type: 'compacted', revision: Number.isSafeInteger(rev) ? rev : 0 };
      case 'overflow': {
        // Cut off for reading too slowly; everything before `fromRevision` was sent ahead of
        // this event on the same stream, so it has been seen. The stream ends next.
        const from = data.fromRevision;
        if (typeof from === 'number' && Number.isSafeInteger(from))
          this.#resumeAfter = Math.max(this.#resumeAfter, from - 1);
        this.#ctx.logger?.debug({ fromRevision: from }, 'watch: the server cut this stream (too slow); resuming');
        return null;
      }
      default:
        // Anything else (a cut-off notice naming its resume point, a greeting) needs no action:
        // the next connection resumes after the last revision passed on.
        return null;
    }
  }

  /** "Now": the revision a linearizable read sees (a watch starts after it). */
  async #startRevision(): Promise<number> {
    if (this.#o.service === undefined) return this.#retrying(() => this.#ctx.currentRevision());
    return (await this.#list()).revision;
  }

  /** The watched scope's instances: the service's, or (no service) the whole namespace's. */
  #list(): Promise<{ readonly revision: number; readonly instances: readonly Instance[] }> {
    const ns = this.#o.namespace!;
    const svc = this.#o.service;
    const read = (consistency: Consistency) =>
      svc === undefined
        ? this.#ctx.listNamespace(ns, consistency)
        : this.#ctx.list(ns, svc, this.#o.cluster, consistency);
    return this.#retrying(async () => {
      try {
        return await read('linearizable');
      } catch (err) {
        if (err instanceof UnavailableError && this.#ctx.allowStaleLists) return read('serializable');
        throw err;
      }
    });
  }

  async #relist(reason: 'initial' | 'compacted'): Promise<WatchEvent> {
    for (let attempt = 1; ; attempt++) {
      const list = await this.#list();
      if (list.revision >= this.#delivered) {
        this.#delivered = this.#resumeAfter = list.revision;
        return { type: 'reset', revision: list.revision, instances: list.instances, reason };
      }
      // Race (1): a node behind what we already passed on.
      await sleep(this.#backoff(attempt), this.#closing.signal);
      if (this.closed) throw new ClientClosedError('watch');
    }
  }

  /** Retries while no node can answer; the watch is long-lived and outlasts outages. */
  async #retrying<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      if (this.closed) throw new ClientClosedError('watch');
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof UnavailableError) || this.closed) throw err;
        await sleep(this.#backoff(attempt), this.#closing.signal);
      }
    }
  }

  #backoff(failures: number): number {
    return jitter(Math.min(2000, 100 * 2 ** Math.max(0, failures - 1)), 0.5, this.#ctx.random);
  }

  #explain(err: ApiError): RollcallError {
    if (err.status === 404 && err.code === 'ROUTE_NOT_FOUND') {
      return new UnsupportedError(
        `node ${err.node ?? '?'} has no GET ${WATCH_PATH} (watch streams come with the API of issue 4); upgrade the server`,
      );
    }
    return err;
  }
}
