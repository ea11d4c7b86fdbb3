/**
 * What every listing route does with `limit` and `continue`, the Kubernetes and etcd
 * convention:
 *
 * - No `limit`: the whole listing in one answer, if it holds at most `maxItems` items;
 *   otherwise 400 LIMIT_EXCEEDED naming the cap, before anything is read.
 * - `limit=N` (capped at `maxItems`): the first N items, and `continue` when more are left.
 *   Every page of one listing is read at the first page's revision (the token carries it),
 *   whichever node serves it, as long as that node's history still reaches back to it;
 *   otherwise 410 COMPACTED, whose `continue` goes on from the same place at the current
 *   revision (Kubernetes' "inconsistent continue"), for a client that can live with it.
 *
 * Either way the answer is written in slices (sliced-json.ts) from a RevisionView, so no
 * request holds the event loop for long, however much it returns.
 */
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { sendError } from '../errors.js';
import { BodyCache } from './body-cache.js';
import { type ContinueToken, decodeContinue, encodeContinue } from './continue-token.js';
import { type IndexedRegistry, InstanceIndex } from './instance-index.js';
import { RevisionView } from './revision-view.js';
import { type ChunkWriter, FIRST_SLICE_MS, SlicedJson, type SliceWriter } from './sliced-json.js';

/** The most items one unpaginated answer, or one page, may hold. */
export const DEFAULT_LIST_MAX_ITEMS = 10_000;

export interface Lister {
  readonly index: InstanceIndex;
  /** Set once the app starts closing. */
  readonly closing: boolean;
  /** The most items in one answer: the cap on an unpaginated listing, and on `limit`. */
  readonly maxItems: number;
  /** How long a later page waits for this node to reach the listing's revision. */
  readonly waitMs: number;
  /** Whole service listings' joined instances, per service revision and filters (body-cache.ts). */
  readonly bodies: BodyCache;
}

/** The lister of an app over a registry: the shared index, released when the app closes. */
export function openLister(
  app: FastifyInstance,
  registry: IndexedRegistry,
  options: { maxItems?: number | undefined; waitMs: number },
): Lister {
  const index = InstanceIndex.acquire(registry, { log: app.log });
  const lister = {
    index,
    closing: false,
    maxItems: options.maxItems ?? DEFAULT_LIST_MAX_ITEMS,
    waitMs: options.waitMs,
    bodies: new BodyCache(),
  };
  app.addHook('preClose', async () => {
    lister.closing = true;
  });
  app.addHook('onClose', async () => {
    lister.bodies.clear();
    index.release();
  });
  return lister;
}

export interface PageQuery {
  readonly limit?: number;
  readonly continue?: string;
}

/** Where a page starts: a listing's first page, or a later one from its token. */
type PageStart =
  | { readonly kind: 'first'; readonly limit: number | null }
  | { readonly kind: 'next'; readonly token: ContinueToken; readonly limit: number };

/** What a listing does before it reads a page (see `openPage`). */
export interface PageSteps {
  /** A later page, before it resumes: checks the query (answering any error itself); false: stop. */
  readonly beforeNext?: () => boolean;
  /** The first page: reaches the point the listing is read at (a read barrier, a blocking wait), answering any error itself; false: stop. */
  readonly reach: () => Promise<boolean>;
  /** The first page without `limit`: how many items the whole answer would hold (refused over the cap, before anything is read)... */
  readonly count: () => number;
  /** ...and what they are, for the LIMIT_EXCEEDED message ('instances', 'services'). */
  readonly items: string;
  /** The token a 410 COMPACTED offers to go on with at the current `revision` (default: this one at that revision). */
  readonly restart?: (token: ContinueToken, revision: number) => ContinueToken;
}

/** The page to read: the view it reads at, at most `limit` items (null: all), and the token it continues (null: the first page). */
export interface OpenedPage {
  readonly view: RevisionView;
  readonly limit: number | null;
  readonly token: ContinueToken | null;
}

/**
 * The steps every listing takes before it writes a page: read `limit` and `continue`; for a
 * later page, resume at the token's revision; for the first, reach the read point, refuse an
 * unpaginated answer over the cap, and open a view at the current revision. Answers any
 * error itself and returns null.
 */
export async function openPage(
  lister: Lister,
  reply: FastifyReply,
  q: PageQuery,
  listing: string,
  steps: PageSteps,
): Promise<OpenedPage | null> {
  const page = pageStart(lister, reply, q, listing);
  if (page === null) return null;
  if (page.kind === 'next') {
    if (steps.beforeNext !== undefined && !steps.beforeNext()) return null;
    const { token } = page;
    const view = await resumeView(lister, reply, token, (revision) =>
      steps.restart === undefined ? { ...token, revision } : steps.restart(token, revision),
    );
    return view === null ? null : { view, limit: page.limit, token };
  }
  if (!(await steps.reach())) return null;
  if (page.limit === null && !withinCap(lister, reply, steps.count(), steps.items)) return null;
  return { view: RevisionView.current(lister.index), limit: page.limit, token: null };
}

/** Reads `limit` and `continue`; answers 400 itself (and returns null) for a token that is not for this listing. */
function pageStart(lister: Lister, reply: FastifyReply, q: PageQuery, listing: string): PageStart | null {
  const limit = q.limit === undefined ? null : Math.min(q.limit, lister.maxItems);
  if (q.continue === undefined) return { kind: 'first', limit };
  const token = decodeContinue(q.continue);
  if (token === null) {
    sendError(
      reply,
      'INVALID_ARGUMENT',
      'continue: not a token from this API; pass the `continue` of the previous page unchanged',
      { field: 'continue' },
    );
    return null;
  }
  if (token.listing !== listing) {
    sendError(
      reply,
      'INVALID_ARGUMENT',
      'continue: the token belongs to another listing; send it with the same path and filters as the first page',
      { field: 'continue' },
    );
    return null;
  }
  return { kind: 'next', token, limit: limit ?? lister.maxItems };
}

/** True when an unpaginated answer of `count` items is allowed; otherwise answers 400 LIMIT_EXCEEDED. */
function withinCap(lister: Lister, reply: FastifyReply, count: number, what: string): boolean {
  if (count <= lister.maxItems) return true;
  sendError(
    reply,
    'LIMIT_EXCEEDED',
    `this listing holds ${count} ${what}, more than the ${lister.maxItems} one answer may hold (--list-max-items): pass limit (at most ${lister.maxItems}) and follow continue`,
    { field: 'limit', limit: lister.maxItems, count },
  );
  return false;
}

/**
 * The view a later page reads: at the token's revision, once this node has applied it.
 * Answers 504 TIMEOUT or 410 COMPACTED itself (returning null); `restart` is the token that
 * goes on from the same place at the current revision, for the 410's `continue`.
 */
async function resumeView(
  lister: Lister,
  reply: FastifyReply,
  token: ContinueToken,
  restart: (revision: number) => ContinueToken,
): Promise<RevisionView | null> {
  const { index } = lister;
  if (!(await index.waitForRevision(token.revision, lister.waitMs))) {
    const at = index.registry.revision;
    reply.header('retry-after', '1');
    sendError(
      reply,
      'TIMEOUT',
      `this node has applied revision ${at}, not ${token.revision} (the listing's), after waiting ${lister.waitMs} ms; continue on another node`,
      {
        field: 'continue',
        revision: at,
      },
    );
    return null;
  }
  const view = RevisionView.at(index, token.revision);
  if (view !== 'compacted') return view;
  const now = index.registry.revision;
  sendError(
    reply,
    'COMPACTED',
    `revision ${token.revision} of this listing is no longer in this node's history (it reaches back to ${index.floor}): list again from the first page, or pass this error's continue to go on at revision ${now}`,
    { revision: now, compactRevision: index.floor, continue: encodeContinue(restart(now)) },
  );
  return null;
}

/**
 * Sends the answer written by `writer` from `view`; the view is closed when it ends. The
 * first slice runs at once: an answer it completes (most lists are small) goes out whole,
 * as before; a larger one goes on in slices, as a chunked stream. An answer still being
 * written when the app starts closing ends its connection after it (a keep-alive connection
 * that goes idle after the server stopped listening would hold the close until its
 * keep-alive timeout). `readsInstances` false: the writer reads only services and counts, so
 * it need not wait for the listing index's sorted instances.
 */
export function sendView(
  lister: Lister,
  reply: FastifyReply,
  view: RevisionView,
  writer: ChunkWriter,
  readsInstances = true,
): FastifyReply {
  if (!readsInstances || lister.index.sorted) return sendSorted(lister, reply, view, writer);
  // The sorted instances are still being built (a start, a snapshot installed): the listing
  // waits for the rest of the build, run back to back with the event loop free between its
  // slices, within the same budget a later page waits for its revision. Changes meanwhile go
  // to the view, which still answers at its revision.
  const began = performance.now();
  lister.index
    .whenSorted(lister.waitMs)
    .then((built) => {
      const waitedMs = Math.round(performance.now() - began);
      if (waitedMs >= SLOW_SORT_WAIT_MS)
        reply.log.info({ waitedMs, built }, 'a listing waited for the listing index to be built');
      // The app may have begun closing while this listing waited: the server closed its idle
      // connections then, so this one must close after its answer, or it would hold the close
      // until its keep-alive timeout. A listing that got its index still answers (a blocking
      // query ended by the close answers with the service as it is, as before the wait).
      if (lister.closing) reply.header('connection', 'close');
      if (built && !view.lost) return sendSorted(lister, reply, view, writer);
      view.close();
      if (lister.closing) return sendError(reply, 'SHUTTING_DOWN', 'this node is stopping; read from another node');
      reply.header('retry-after', '1');
      return sendError(
        reply,
        'TIMEOUT',
        `this node's listing index is still being built (it has been ${waitedMs} ms; a start or a snapshot install rebuilds it); retry, or list on another node`,
      );
    })
    .catch((err: unknown) => {
      view.close();
      reply.send(err);
    });
  return reply;
}

/** A listing that waits longer than this for the listing index logs it (info). */
const SLOW_SORT_WAIT_MS = 100;

function sendSorted(lister: Lister, reply: FastifyReply, view: RevisionView, writer: ChunkWriter): FastifyReply {
  reply.header('x-rollcall-revision', String(view.revision));
  reply.type('application/json; charset=utf-8');
  const first = writer(performance.now() + FIRST_SLICE_MS);
  if (lister.closing) reply.header('connection', 'close');
  if (first.done) {
    view.close();
    return reply.send(first.text);
  }
  const socket = reply.request.raw.socket;
  reply.raw.once('finish', () => {
    if (lister.closing) socket.end();
  });
  let pending: string | Buffer | null = first.text;
  const guarded: ChunkWriter = (deadline) => {
    if (pending !== null) {
      const text = pending;
      pending = null;
      return { text, done: false };
    }
    if (view.lost)
      throw new Error(
        `the registry was replaced (snapshot installed) while revision ${view.revision} was being listed; list again`,
      );
    return writer(deadline);
  };
  return reply.send(new SlicedJson(guarded, () => view.close()));
}

/**
 * Sends an answer already encoded (a cached body between its head and tail): no view is
 * read, so the view is closed at once, and the buffers go to the socket as they are.
 */
export function sendEncoded(lister: Lister, reply: FastifyReply, view: RevisionView, chunks: Buffer[]): FastifyReply {
  view.close();
  reply.header('x-rollcall-revision', String(view.revision));
  reply.type('application/json; charset=utf-8');
  if (lister.closing) reply.header('connection', 'close');
  return reply.send(Readable.from(chunks, { objectMode: false }));
}

/**
 * `writer`, its slices encoded here (as the stream would encode them anyway), also handing
 * the Buffers of what it wrote between `head` and `tail` to `done` once it completes (not
 * when the answer fails or is cut: a partial body is never passed on). The Buffers are the
 * ones sent (views of them), so keeping them costs no copy.
 */
export function capturing(
  writer: SliceWriter,
  head: string,
  tail: string,
  done: (body: Buffer[]) => void,
): ChunkWriter {
  const body: Buffer[] = [];
  let first = true;
  return (deadline) => {
    const out = writer(deadline);
    const chunk = Buffer.from(out.text);
    let part = chunk;
    if (first) part = part.subarray(Buffer.byteLength(head));
    first = false;
    if (out.done) part = part.subarray(0, part.length - Buffer.byteLength(tail));
    if (part.length > 0) body.push(part);
    if (out.done) done(body);
    return { text: chunk, done: out.done };
  };
}
