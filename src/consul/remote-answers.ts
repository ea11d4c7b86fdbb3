/**
 * Consul answers written from another datacenter's instances (`?dc=`, remote.ts and
 * remote-namespace.ts): the same bodies the local writers (listing.ts) write from this
 * node's index, from a list already read whole, and the `X-Consul-*` headers of a remote
 * read. The lists come in the native listing's order (service, cluster, id), the local
 * index's order, so an answer reads the same whichever datacenter it describes.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Instance } from '../registry/index.js';
import { ConsulError } from './errors.js';
import { DATACENTER_HEADER, type RemoteAnswer } from './remote.js';
import { type Moves, readRemoteNamespace } from './remote-namespace.js';
import { type ConsulContext, type ReadOptions, readOptions, refuseFilter, serviceFilter, tokenOf } from './request.js';
import type { RemoteCall } from './routing.js';
import { nodeName, nodeShape } from './shapes.js';

/** What a request the stopping listener will not answer gets (app.ts answers a new one the same). */
const STOPPING = 'This node is stopping; ask another node';

/** Sends a remote read's body with its headers: that datacenter's index and leader, no last contact. */
export function sendRemote(
  reply: FastifyReply,
  opts: Pick<ReadOptions, 'stale'>,
  datacenter: string,
  answer: RemoteAnswer,
  body: string,
): FastifyReply {
  reply.header('x-consul-effective-consistency', opts.stale ? 'stale' : 'consistent');
  reply.header('x-consul-index', String(answer.index));
  reply.header('x-consul-knownleader', String(answer.knownLeader));
  reply.header('x-consul-lastcontact', '0');
  reply.header(DATACENTER_HEADER, datacenter);
  return reply.type('application/json; charset=utf-8').send(body);
}

/** `[item, ...]`: each instance `item` writes (null: left out). */
export function arrayText(instances: readonly Instance[], item: (i: Instance) => string | null): string {
  const parts: string[] = [];
  for (const i of instances) {
    const text = item(i);
    if (text !== null) parts.push(text);
  }
  return `[${parts.join(',')}]`;
}

/** `/v1/catalog/services`: each service with an enabled instance, and the union of their tags, sorted (catalogServicesWriter). */
export function catalogServicesText(instances: readonly Instance[]): string {
  const services = new Map<string, Set<string>>();
  for (const i of instances) {
    if (!i.enabled) continue;
    let tags = services.get(i.service);
    if (tags === undefined) {
      tags = new Set();
      services.set(i.service, tags);
    }
    for (const t of i.tags) tags.add(t);
  }
  // Written, not built as an object: a service named "10" would move to the front of one.
  const parts = [...services].map(
    ([service, tags]) => `${JSON.stringify(service)}:${JSON.stringify([...tags].sort())}`,
  );
  return `{${parts.join(',')}}`;
}

/** `/v1/catalog/nodes`: one node per distinct address of the enabled instances, sorted by name, its indexes spanning them (nodesWriter). */
export function nodesText(instances: readonly Instance[], datacenter: string): string {
  const nodes = new Map<string, { readonly first: Instance; create: number; modify: number }>();
  for (const i of instances) {
    if (!i.enabled) continue;
    const name = nodeName(i);
    const node = nodes.get(name);
    if (node === undefined) nodes.set(name, { first: i, create: i.createRevision, modify: i.modRevision });
    else {
      node.create = Math.min(node.create, i.createRevision);
      node.modify = Math.max(node.modify, i.modRevision);
    }
  }
  // By UTF-16 code units, as the local SortedMap orders them.
  const names = [...nodes.keys()].sort();
  const parts = names.map((name) => {
    const node = nodes.get(name)!;
    return JSON.stringify({ ...nodeShape(node.first, datacenter), CreateIndex: node.create, ModifyIndex: node.modify });
  });
  return `[${parts.join(',')}]`;
}

/**
 * A namespace-wide route's answer from another datacenter: its enabled instances read there
 * (blocking until a change that `moves` the answer, remote-namespace.ts), written by `body`.
 */
export async function sendRemoteNamespace(
  ctx: ConsulContext,
  req: FastifyRequest,
  reply: FastifyReply,
  call: RemoteCall,
  moves: Moves,
  body: (instances: readonly Instance[]) => string,
): Promise<FastifyReply> {
  refuseFilter(call.q);
  const opts = readOptions(ctx, call.q);
  const answer = await whileServing(ctx, reply, (signal) =>
    readRemoteNamespace(ctx.federation, {
      datacenter: call.dc,
      namespace: call.ns,
      stale: opts.stale,
      index: opts.index,
      waitMs: opts.waitMs,
      token: tokenOf(req, call.q),
      timeoutMs: ctx.timeoutMs,
      signal,
      moves,
    }),
  );
  // A token limited to service prefixes sees only theirs, as in this datacenter's own listings.
  const inScope = serviceFilter(req);
  const instances = inScope === null ? answer.instances : answer.instances.filter((i) => inScope(i.service));
  return sendRemote(reply, opts, call.dc, answer, body(instances));
}

/**
 * Runs a remote read with a signal that ends it when the client goes away or this listener
 * stops. Stopping waits for the requests under way, and one parked in another datacenter
 * would hold it for its whole wait (up to 10 minutes): it is ended and answered 503, as a
 * request arriving while the listener stops is.
 */
export async function whileServing<T>(
  ctx: ConsulContext,
  reply: FastifyReply,
  read: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  reply.raw.once('close', stop);
  ctx.feed.closing.addEventListener('abort', stop, { once: true });
  // A client gone before this point (while the hooks ran) closed the response already: its
  // 'close' will not come again, and the read would park there for its whole wait.
  if (ctx.feed.closing.aborted || reply.raw.destroyed) stop();
  try {
    return await read(controller.signal);
  } catch (err) {
    if (!ctx.feed.closed) throw err;
    // As app.ts answers a request arriving now: the connection must not outlive the listener.
    throw new ConsulError(503, STOPPING, { connection: 'close' });
  } finally {
    reply.raw.off('close', stop);
    ctx.feed.closing.removeEventListener('abort', stop);
  }
}

/** Moves on any change to an instance that is, or was, enabled (`/v1/catalog/nodes`: every node carries its instances' indexes). */
export const movesEnabled: Moves = (before, after) => before?.enabled === true || after?.enabled === true;
