/**
 * The three shapes a listing is written in, slice by slice, from a RevisionView:
 *
 * - instances: `{...head, "instances": [i, ...], "continue"?}` (a service's list, a namespace's)
 * - services: `{"revision", "services": [summary, ...], "continue"?}` (GET /v1/services)
 * - grouped: `{"revision", "services": [{...summary, "instances": [i, ...]}, ...], "continue"?}`
 *   (GET /v1/services?instances=true; `limit` counts instances, and a service whose
 *   instances run over a page boundary appears on both pages with the same summary)
 *
 * Each writer walks keys after the last one it read, stops at its deadline (checked every
 * CHECK_EVERY keys, so a slice overruns it by well under a millisecond) or at `limit`, and
 * the page ends with a `continue` token when a key is left in range after `limit` items,
 * as etcd's `more` (the next page may then hold fewer items than `limit`, even none, when
 * filters leave the rest out).
 */
import type { Instance } from '../../registry/index.js';
import { present } from '../present.js';
import { emptyCounts, healthSummary, total } from './counts.js';
import { serviceSortKey } from './instance-index.js';
import type { RevisionView, ServiceAt } from './revision-view.js';
import { type SliceWriter, sliceStats } from './sliced-json.js';

const CHECK_EVERY = 64;

/**
 * Each listed instance's JSON, encoded once (issue 21: at 10,000 instances a listing spent
 * about 30 of its 42 ms of CPU encoding the same unchanged instances again). Correct by
 * construction: an Instance is frozen and replaced by a new object on every change
 * (src/registry/apply.ts `build`, persistence's decode), so an entry can never go stale,
 * and a WeakMap lets it go with the instance it describes.
 */
const encoded = new WeakMap<Instance, string>();

/** `JSON.stringify(present(i))`, from the cache after the first time. */
export function instanceJson(i: Instance): string {
  let text = encoded.get(i);
  if (text === undefined) {
    text = JSON.stringify(present(i));
    // JSON.stringify gives a rope of the pieces it built in; reading a character flattens it
    // into one string and lets the pieces go: ~0.7x the memory of every instance kept here.
    text.charCodeAt(0);
    encoded.set(i, text);
  }
  return text;
}

export interface ScanPlan {
  readonly view: RevisionView;
  /** Start after this sort key (null: from the start of the range). */
  readonly after: string | null;
  /** Exclusive upper bound of the range. */
  readonly end: string;
  /** Items in this page; null: all (an unpaginated answer, its size checked against the cap). */
  readonly limit: number | null;
  /** The continue token for a page that stopped after `after`. */
  readonly token: (after: string) => string;
}

export interface InstancesPlan extends ScanPlan {
  /** The answer's fields before `instances`, e.g. `{"revision":5,"serviceRevision":3` (no closing brace). */
  readonly head: string;
  readonly pass: (i: Instance) => boolean;
}

export interface GroupedPlan extends ScanPlan {
  readonly pass: (i: Instance) => boolean;
}

type Emit = (text: string) => void;
/** Walks keys after `after`; `step` is told each key and how to write its item (true: it counts toward `limit`). */
type Walk = (after: string | null, step: (key: string, item: (emit: Emit) => boolean) => boolean) => void;

/** The fixed shape of a page: open, items, close (with the token when keys are left after `limit` items). */
function paged(plan: ScanPlan, open: string, close: (token: string | null) => string, walk: Walk): SliceWriter {
  let after = plan.after;
  let taken = 0;
  let opened = false;
  return (deadline) => {
    const parts: string[] = [];
    const emit: Emit = (t) => void parts.push(t);
    if (!opened) {
      parts.push(open);
      opened = true;
    }
    let seen = 0;
    let timeUp = false;
    let more = false;
    walk(after, (key, item) => {
      if (plan.limit !== null && taken >= plan.limit) {
        more = true;
        return false;
      }
      if (++seen % CHECK_EVERY === 0 && performance.now() >= deadline) {
        timeUp = true;
        return false;
      }
      after = key;
      if (item(emit)) taken++;
      return true;
    });
    sliceStats.keys += seen;
    if (timeUp) return { text: parts.join(''), done: false };
    parts.push(close(more && after !== null ? plan.token(after) : null));
    return { text: parts.join(''), done: true };
  };
}

function tail(token: string | null): string {
  return token === null ? ']}' : `],"continue":${JSON.stringify(token)}}`;
}

/** A list of instances. */
export function instancesWriter(plan: InstancesPlan): SliceWriter {
  let first = true;
  return paged(plan, `${plan.head},"instances":[`, tail, (after, step) =>
    plan.view.scan(after, plan.end, (key, i) =>
      step(key, (emit) => {
        if (!plan.pass(i)) return false;
        emit(first ? instanceJson(i) : `,${instanceJson(i)}`);
        first = false;
        return true;
      }),
    ),
  );
}

/** Service summaries (no instances). */
export function servicesWriter(plan: ScanPlan): SliceWriter {
  let first = true;
  return paged(plan, `{"revision":${plan.view.revision},"services":[`, tail, (after, step) =>
    plan.view.scanServices(after, plan.end, (key, s) =>
      step(key, (emit) => {
        emit(first ? summary(s) : `,${summary(s)}`);
        first = false;
        return true;
      }),
    ),
  );
}

/** Services, each with its instances. */
export function groupedWriter(plan: GroupedPlan): SliceWriter {
  let service: string | null = null;
  let firstService = true;
  let firstInstance = true;
  const close = (token: string | null) => (service === null ? '' : ']}') + tail(token);
  return paged(plan, `{"revision":${plan.view.revision},"services":[`, close, (after, step) =>
    plan.view.scan(after, plan.end, (key, i) =>
      step(key, (emit) => {
        const sk = serviceSortKey(i.namespace, i.service);
        if (sk !== service) {
          if (service !== null) emit(']}');
          // Every instance at R has its service at R; the fallback only guards a broken invariant.
          const s = plan.view.service(i.namespace, i.service) ?? {
            namespace: i.namespace,
            service: i.service,
            counts: emptyCounts(),
            revision: i.modRevision,
          };
          const text = summary(s);
          emit(`${firstService ? '' : ','}${text.slice(0, -1)},"instances":[`);
          service = sk;
          firstService = false;
          firstInstance = true;
        }
        if (!plan.pass(i)) return false;
        emit(firstInstance ? instanceJson(i) : `,${instanceJson(i)}`);
        firstInstance = false;
        return true;
      }),
    ),
  );
}

function summary(s: ServiceAt): string {
  return JSON.stringify({
    namespace: s.namespace,
    service: s.service,
    instanceCount: total(s.counts),
    revision: s.revision,
    health: healthSummary(s.counts),
  });
}
