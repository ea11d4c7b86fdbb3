/**
 * Consul answers of any size, written in slices that hand the event loop back between them
 * (issue 22's rule: no request holds the loop for long), with the native listings' machinery
 * (src/server/listing): the shared instance index, a RevisionView at the revision the answer
 * reflects, and the slice scheduler. Consul has no pagination, so every answer is complete:
 * a 200,000-instance service is one answer, written over many event-loop turns, read from
 * one revision throughout however the registry moves meanwhile.
 *
 * Each writer walks the index's keys after the last one it read and stops at its deadline
 * (checked every CHECK_EVERY keys). What is kept between slices is a key, never a copy of
 * the registry.
 */
import type { FastifyReply } from 'fastify';
import type { Instance } from '../registry/index.js';
import { healthSummary, total } from '../server/listing/counts.js';
import { rangeEnd, serviceSortKey } from '../server/listing/instance-index.js';
import { RevisionView } from '../server/listing/revision-view.js';
import { type Lister, sendView } from '../server/listing/serve.js';
import { type SliceWriter, sliceStats } from '../server/listing/sliced-json.js';
import { SortedMap } from '../server/listing/sorted-map.js';
import type { AnswerCache } from './answer-cache.js';
import type { CatalogIndex } from './catalog-index.js';
import { nodeName, nodeShape } from './shapes.js';

const CHECK_EVERY = 64;

/** Index keys in (after, end): the instances of a namespace, or of one service. */
export interface KeyRange {
  readonly after: string;
  readonly end: string;
}

export function namespaceRange(namespace: string): KeyRange {
  const prefix = `${namespace}\0`;
  return { after: prefix, end: rangeEnd(prefix) };
}

export function serviceRange(namespace: string, service: string): KeyRange {
  const prefix = `${serviceSortKey(namespace, service)}\0`;
  return { after: prefix, end: rangeEnd(prefix) };
}

/** Counts keys read in one slice and says when its time is up. */
class Budget {
  #seen = 0;
  constructor(private readonly deadline: number) {}

  spent(): boolean {
    return ++this.#seen % CHECK_EVERY === 0 && performance.now() >= this.deadline;
  }

  /** Adds this slice's keys to the scheduler's figures (what the native writers count too). */
  record(): void {
    sliceStats.keys += this.#seen;
  }
}

/**
 * Walks `range` from a saved position in slices: `visit` is called for each instance at the
 * view's revision, in key order; a slice ends when the budget is spent. Returns true when the
 * range is done.
 */
function walker(view: RevisionView, range: KeyRange): (budget: Budget, visit: (i: Instance) => void) => boolean {
  let after = range.after;
  return (budget, visit) => {
    let timeUp = false;
    view.scan(after, range.end, (key, i) => {
      if (budget.spent()) {
        timeUp = true;
        return false;
      }
      after = key;
      visit(i);
      return true;
    });
    return !timeUp;
  };
}

/** One slice of a list's items: `emit` each item's JSON text; true when no item is left. */
type ItemSource = (budget: Budget, emit: (text: string) => void) => boolean;

/**
 * The one list writer: `[a,b,...]` or `{"k":v,...}` (the items say their keys), the opening
 * bracket in the first slice, commas between items, the closing one when `source` is done.
 */
function listWriter(brackets: '[]' | '{}', source: ItemSource): SliceWriter {
  let opened = false;
  let first = true;
  return (deadline) => {
    const parts: string[] = opened ? [] : [brackets[0]!];
    opened = true;
    const budget = new Budget(deadline);
    const done = source(budget, (text) => {
      parts.push(first ? text : `,${text}`);
      first = false;
    });
    budget.record();
    if (done) parts.push(brackets[1]!);
    return { text: parts.join(''), done };
  };
}

/** `[item, ...]`: each instance of `range` that `item` writes (null: left out). */
export function arrayWriter(view: RevisionView, range: KeyRange, item: (i: Instance) => string | null): SliceWriter {
  const walk = walker(view, range);
  return listWriter('[]', (budget, emit) =>
    walk(budget, (i) => {
      const text = item(i);
      if (text !== null) emit(text);
    }),
  );
}

/**
 * `{"key": item, ...}`: each instance of `range` that `entry` names, the first one wins for
 * a key seen twice (Consul IDs are unique on an agent; Rollcall ids only within a service).
 */
export function objectWriter(
  view: RevisionView,
  range: KeyRange,
  entry: (i: Instance) => readonly [string, () => string] | null,
): SliceWriter {
  const walk = walker(view, range);
  const seen = new Set<string>();
  return listWriter('{}', (budget, emit) =>
    walk(budget, (i) => {
      const e = entry(i);
      if (e === null || seen.has(e[0])) return;
      seen.add(e[0]);
      emit(`${JSON.stringify(e[0])}:${e[1]()}`);
    }),
  );
}

/**
 * `/v1/catalog/nodes`: one node per distinct address of the namespace's enabled instances,
 * sorted by name, its indexes spanning the instances there. Two phases, both sliced: gather
 * the nodes into a sorted map, then write them.
 */
export function nodesWriter(view: RevisionView, namespace: string, datacenter: string): SliceWriter {
  const walk = walker(view, namespaceRange(namespace));
  const nodes = new SortedMap<{ readonly first: Instance; create: number; modify: number }>();
  let gathered = false;
  let after: string | null = null;
  return listWriter('[]', (budget, emit) => {
    if (!gathered) {
      gathered = walk(budget, (i) => {
        if (!i.enabled) return;
        const name = nodeName(i);
        const node = nodes.get(name);
        if (node === undefined) nodes.set(name, { first: i, create: i.createRevision, modify: i.modRevision });
        else {
          node.create = Math.min(node.create, i.createRevision);
          node.modify = Math.max(node.modify, i.modRevision);
        }
      });
      if (!gathered) return false;
    }
    let timeUp = false;
    nodes.forRange(after, '\uffff', (name, node) => {
      if (budget.spent()) {
        timeUp = true;
        return false;
      }
      after = name;
      emit(
        JSON.stringify({ ...nodeShape(node.first, datacenter), CreateIndex: node.create, ModifyIndex: node.modify }),
      );
      return true;
    });
    return !timeUp;
  });
}

/**
 * `/v1/catalog/services`: each service of the namespace with an enabled instance at the
 * view's revision, and the union of those instances' tags, sorted. A service unchanged since
 * that revision takes its tags from the catalog index (kept current from the same change
 * stream, so what they were then); one changed since is read from the view, its instances
 * walked in slices.
 */
export function catalogServicesWriter(
  view: RevisionView,
  namespace: string,
  catalog: CatalogIndex,
  /** The services the request's token may see (its service prefixes); null: every one. */
  inScope: ((service: string) => boolean) | null = null,
): SliceWriter {
  const services = namespaceRange(namespace);
  let after: string | null = services.after;
  let pending: {
    readonly service: string;
    readonly tags: Set<string>;
    readonly walk: ReturnType<typeof walker>;
  } | null = null;
  return listWriter('{}', (budget, emit) => {
    const emitService = (service: string, tags: readonly string[]): void =>
      emit(`${JSON.stringify(service)}:${JSON.stringify(tags)}`);
    for (;;) {
      if (pending !== null) {
        const { tags } = pending;
        if (
          !pending.walk(budget, (i) => {
            if (i.enabled) for (const t of i.tags) tags.add(t);
          })
        )
          return false;
        emitService(pending.service, [...tags].sort());
        pending = null;
      }
      let timeUp = false;
      view.scanServices(after, services.end, (key, s) => {
        if (budget.spent()) {
          timeUp = true;
          return false;
        }
        after = key;
        if (inScope !== null && !inScope(s.service)) return true;
        if (total(s.counts) === healthSummary(s.counts).disabled) return true;
        if (!view.serviceChanged(s.namespace, s.service)) {
          emitService(s.service, catalog.tags(s.namespace, s.service));
          return true;
        }
        pending = { service: s.service, tags: new Set(), walk: walker(view, serviceRange(s.namespace, s.service)) };
        return false;
      });
      if (timeUp) return false;
      if (pending === null) return true;
    }
  });
}

/** Where a shared answer is filed (answer-cache.ts): its service, variant, and the service's index it was read at. */
export interface SharedAnswer {
  readonly cache: AnswerCache;
  readonly service: string;
  readonly variant: string;
  readonly index: number;
}

/**
 * Sends what `writer` writes from a view at the registry's current revision (opened with it).
 * With `shared`: the answer already written for that service, variant and index if there is
 * one, else it is written and (when whole in its first slice) kept for the next query.
 */
export function sendSliced(
  lister: Lister,
  reply: FastifyReply,
  writer: (view: RevisionView) => SliceWriter,
  shared?: SharedAnswer,
): FastifyReply {
  if (shared === undefined) {
    const view = RevisionView.current(lister.index);
    return sendView(lister, reply, view, writer(view));
  }
  const { cache, service, variant, index } = shared;
  const text = cache.get(service, variant, index);
  if (text !== undefined) {
    reply.header('x-rollcall-revision', String(lister.index.registry.revision));
    return reply.type('application/json; charset=utf-8').send(text);
  }
  const view = RevisionView.current(lister.index);
  const write = writer(view);
  let firstSlice = true;
  return sendView(lister, reply, view, (deadline) => {
    const slice = write(deadline);
    if (firstSlice && slice.done) cache.put(service, variant, index, slice.text);
    firstSlice = false;
    return slice;
  });
}
