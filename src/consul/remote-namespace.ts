/**
 * A namespace's lists in another datacenter (`/v1/catalog/services`, `/v1/catalog/nodes`,
 * `/v1/health/state/:state` with `?dc=`): the native `GET /v1/namespaces/{ns}/instances` of a
 * member there (enabled instances, every page), from which the route writes the Consul answer
 * with the same shapes as a local one. Asked as remote.ts asks (forwardToMembers, the hop
 * signature, the caller's token).
 *
 * Index: `X-Consul-Index` is the revision that datacenter's listing was read at. That
 * listing does not block, so a blocking query blocks on the native watch instead, which
 * does wait on a namespace-wide revision: `GET /v1/watch?namespace={ns}&fromRevision={index+1}`
 * replays every change there after the client's index, then waits for the next. The query
 * is answered when a change arrives that moves this answer (`moves`: a health change does
 * not move `/v1/catalog/services`), or when its wait ends, then with the client's own index
 * (nothing it reads changed), as Consul answers a wait that ran out; or with the listing's
 * revision if that is below the client's index (the datacenter was rebuilt, or the index came
 * from elsewhere), so that the client starts over rather than wait for revisions it may never
 * see. A change is read with
 * `minRevision` at its revision, so a `?stale` answer never misses the change that woke it.
 * If the watch cannot go on (the history there no longer holds the index, the stream ended
 * early) the query is answered at once, as Consul answers when it cannot tell: a client
 * asks again with the new index.
 *
 * Deadline: the wait, then the read's timeout for the listing; a datacenter with no member
 * answering is 500 `rpc error` within it, as the single-service reads are.
 */
import { SseParser } from '../client/sse.js';
import type { Instance } from '../registry/index.js';
import {
  askMembers,
  type ConsulFederation,
  failureOf,
  instanceOf,
  isBlocking,
  knownLeaderOf,
  type RemoteAnswer,
  type RemoteAsk,
  RemoteScope,
  readListing,
  remoteMembers,
} from './remote.js';

/** Whether a change moves the answer: the instance before it (null: new) and after it (null: gone). */
export type Moves = (before: Instance | null, after: Instance | null) => boolean;

export interface RemoteNamespaceRead extends RemoteAsk {
  readonly moves: Moves;
}

const PAGE = 10_000;

/** What the watch saw before the wait ended. */
type Woken =
  /** A change that moves the answer, at this revision. */
  | { readonly kind: 'change'; readonly revision: number }
  /** The watch could not go on: answer now, without knowing. */
  | { readonly kind: 'unknown' }
  /** The wait ended with nothing that moves the answer. */
  | { readonly kind: 'quiet' };

/** Reads a namespace of another datacenter, blocking (`index`, `wait`) until a change there moves the answer. */
export async function readRemoteNamespace(
  federation: ConsulFederation | null,
  r: RemoteNamespaceRead,
): Promise<RemoteAnswer> {
  const addresses = remoteMembers(federation, r.datacenter);
  const waitMs = isBlocking(r) ? r.waitMs : 0;
  const scope = new RemoteScope(r.signal, waitMs + r.timeoutMs);
  try {
    const woken: Woken = isBlocking(r)
      ? await watchForChange(federation!, addresses, r, r.index, scope, performance.now() + waitMs)
      : { kind: 'unknown' };
    const base =
      `/v1/namespaces/${encodeURIComponent(r.namespace)}/instances?dc=${encodeURIComponent(r.datacenter)}` +
      `&limit=${PAGE}` +
      (r.stale ? '&consistency=serializable' : '') +
      (r.stale && woken.kind === 'change' ? `&minRevision=${woken.revision}` : '');
    const read = await readListing(
      federation!,
      addresses,
      r,
      { first: base, next: (token) => `${base}&continue=${encodeURIComponent(token)}`, waitMs: 0 },
      scope,
    );
    if (read.kind === 'refused') throw failureOf(r.datacenter, read.status, read.text);
    const { first, head, instances } = read.listing;
    const revision = typeof head['revision'] === 'number' ? head['revision'] : 0;
    let index: number;
    // Unless that datacenter is behind the index (rebuilt there, or an index from elsewhere): the
    // watch from index + 1 cannot wake for its changes, so the index goes back and the client
    // starts over, as Consul's clients do when an index goes backwards (and a local read answers).
    if (woken.kind === 'quiet') index = revision > 0 && revision < r.index! ? revision : r.index!;
    else if (woken.kind === 'change') index = Math.max(revision, woken.revision);
    // Never below the client's index: an index going backwards makes a client start over.
    else index = isBlocking(r) ? Math.max(revision, r.index) : revision;
    return { index: Math.max(1, index), knownLeader: knownLeaderOf(first.headers), instances };
  } finally {
    scope.close();
  }
}

/**
 * Watches the namespace there from `index + 1` until a change that moves the answer, or
 * `until` (performance.now() time). No member answering is 500 `rpc error` (askMembers).
 */
async function watchForChange(
  federation: ConsulFederation,
  addresses: readonly string[],
  r: RemoteNamespaceRead,
  index: number,
  scope: RemoteScope,
  until: number,
): Promise<Woken> {
  const from = Math.min(index + 1, Number.MAX_SAFE_INTEGER);
  const path =
    `/v1/watch?namespace=${encodeURIComponent(r.namespace)}&fromRevision=${from}` +
    `&dc=${encodeURIComponent(r.datacenter)}`;
  // The stream's own end: the wait running out (or the scope's).
  const stream = new AbortController();
  const waitOver = new Error('the wait ended');
  const timer = setTimeout(() => stream.abort(waitOver), Math.max(0, until - performance.now()));
  const onScopeEnd = (): void => stream.abort(scope.signal.reason);
  scope.signal.addEventListener('abort', onScopeEnd, { once: true });
  try {
    let answer: Awaited<ReturnType<typeof askMembers>>;
    try {
      answer = await askMembers(federation, addresses, path, r, {
        budgetMs: r.timeoutMs,
        waitMs: 0,
        signal: stream.signal,
      });
    } catch (err) {
      if (stream.signal.reason === waitOver) return { kind: 'quiet' };
      throw err;
    }
    if (answer.status !== 200) throw failureOf(r.datacenter, answer.status, await answer.response.text());
    return await firstMovingChange(answer.response, r, stream.signal, waitOver);
  } finally {
    clearTimeout(timer);
    scope.signal.removeEventListener('abort', onScopeEnd);
    stream.abort(new Error('the watch is over'));
  }
}

/** Reads the watch stream until a change that moves the answer; `quiet` when the wait ends first. */
async function firstMovingChange(
  response: Response,
  r: RemoteNamespaceRead,
  signal: AbortSignal,
  waitOver: Error,
): Promise<Woken> {
  const body = response.body;
  if (body === null) return { kind: 'unknown' };
  const reader = body.getReader();
  const parser = new SseParser();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { kind: 'unknown' };
      for (const m of parser.push(Buffer.from(value))) {
        if (m.event === 'progress') continue;
        // compacted (the history there no longer holds the index), overflow, anything new.
        if (m.event !== 'message') return { kind: 'unknown' };
        const change = changeOf(m.data, r.namespace);
        if (change === null) return { kind: 'unknown' };
        if (r.moves(change.before, change.after)) return { kind: 'change', revision: change.revision };
      }
    }
  } catch {
    if (signal.reason === waitOver) return { kind: 'quiet' };
    // The member went away mid-stream (or the client did, and the listing fails the same way).
    return { kind: 'unknown' };
  } finally {
    reader.releaseLock();
  }
}

/** A watch event's data (src/server/watch/sse.ts eventPayload); null when it is not one. */
function changeOf(
  data: string,
  namespace: string,
): { readonly revision: number; readonly before: Instance | null; readonly after: Instance | null } | null {
  let o: { revision?: unknown; type?: unknown; instance?: unknown; previous?: unknown };
  try {
    o = JSON.parse(data) as typeof o;
  } catch {
    return null;
  }
  const instance = instanceOf(o.instance, namespace);
  if (typeof o.revision !== 'number' || instance === null) return null;
  if (o.type === 'delete') return { revision: o.revision, before: instance, after: null };
  if (o.type !== 'put') return null;
  return {
    revision: o.revision,
    before: o.previous === undefined ? null : instanceOf(o.previous, namespace),
    after: instance,
  };
}
