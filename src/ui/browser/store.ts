// What the page knows: the registry as of 'revision' (a listing, then every watch event
// applied in order), cluster status, reports and alerts. Rendering reads it; nothing else
// writes it.
import type {
  Alert,
  AlertEvent,
  ClusterStatus,
  FederationReply,
  Health,
  Instance,
  MemberStatus,
  PolicyReply,
  ServicesPage,
  TrackedReport,
  WatchChange,
} from './wire.js';

export const FEED_SIZE = 200;

export interface ServiceEntry {
  readonly namespace: string;
  readonly service: string;
  /** id -> instance */
  readonly instances: Map<string, Instance>;
  /** Ids in display order (cluster, then id); null: to be sorted again before the next render. */
  order: string[] | null;
  /** Instances per health, kept as changes arrive (a 100,000-instance service is never recounted). */
  readonly counts: Record<Health, number>;
  /** Bumped by every change to its instances: what was derived from it (the filter's matches) is stale. */
  version: number;
}

/** GET /v1/cluster with who answered: `selfId` (x-rollcall-node) and its member row. */
export interface ClusterView extends ClusterStatus {
  readonly selfId: string | null;
  readonly self: MemberStatus | { readonly id: string | null; readonly role: 'unknown' };
}

/** One line of the live feed. */
export interface FeedEntry {
  readonly at: number;
  readonly revision: number;
  readonly type: WatchChange['type'];
  readonly cause: string;
  /** "ns/svc/id" */
  readonly key: string;
  readonly from: Health | null;
  readonly to: Health | null;
}

export type WatchState = 'connecting' | 'live' | 'retrying';

export interface PageState {
  revision: number;
  /** The datacenter whose services are shown (`?dc=`); null: this node's own. */
  dc: string | null;
  /**
   * Bumped whenever the set or the order of rows changes (an instance added or removed, a
   * service added): the services view lays its rows out again only then.
   */
  layout: number;
  /** Every instance held, kept as changes arrive. */
  instanceCount: number;
  /** "ns/svc" -> its instances */
  services: Map<string, ServiceEntry>;
  /** The keys of 'services', sorted: kept as services come, never sorted again. */
  serviceKeys: string[];
  cluster: ClusterView | null;
  clusterError: string | null;
  clusterAt: number;
  /** "ns/svc/id" -> tracked report, from the leader */
  reports: Map<string, TrackedReport>;
  reportsNote: string;
  /** id -> alert */
  alerts: Map<string, Alert>;
  alertsLive: boolean;
  feed: FeedEntry[];
  watch: WatchState;
  filter: string;
  /** GET /v1/health/policy (this node's copy), and why the last poll failed */
  policy: PolicyReply | null;
  policyError: string | null;
  /** GET /v1/federation, and why the last poll failed */
  federation: FederationReply | null;
  federationError: string | null;
  /** Why the services of the datacenter shown cannot be listed (e.g. it is unreachable); null: they are. */
  servicesError: string | null;
}

export const state: PageState = {
  revision: 0,
  dc: null,
  layout: 0,
  instanceCount: 0,
  services: new Map(),
  serviceKeys: [],
  cluster: null,
  clusterError: null,
  clusterAt: 0,
  reports: new Map(),
  reportsNote: '',
  alerts: new Map(),
  alertsLive: false,
  feed: [],
  watch: 'connecting',
  filter: '',
  policy: null,
  policyError: null,
  federation: null,
  federationError: null,
  servicesError: null,
};

/** One page of GET /v1/services?instances=true; the first page replaces what the page held. */
export function load(listing: ServicesPage, first: boolean): void {
  state.revision = listing.revision;
  if (first) {
    state.services = new Map();
    state.serviceKeys = [];
    state.instanceCount = 0;
    queued.length = 0;
  }
  for (const s of listing.services) {
    const svc = service(s.namespace, s.service);
    for (const i of s.instances || []) put(svc, i);
  }
  state.layout++;
}

function service(namespace: string, name: string): ServiceEntry {
  const key = `${namespace}/${name}`;
  let svc = state.services.get(key);
  if (!svc) {
    svc = { namespace, service: name, instances: new Map(), order: [], counts: noCounts(), version: 0 };
    state.services.set(key, svc);
    state.serviceKeys.splice(insertionPoint(state.serviceKeys, key), 0, key);
    state.layout++;
  }
  return svc;
}

/** Where key goes in the sorted list (a binary search). */
function insertionPoint(sorted: readonly string[], key: string): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function noCounts(): Record<Health, number> {
  return { healthy: 0, subhealthy: 0, suspect: 0, down: 0 };
}

/** The display order of instances: by cluster, then id. */
export function compareInstances(a: Instance, b: Instance): number {
  if (a.cluster !== b.cluster) return a.cluster < b.cluster ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * Stores an instance. A new one goes into the display order in place (a binary search; the
 * listing's pages come sorted, so loading appends); one whose cluster changed marks the
 * order for a re-sort. Either changes the layout; a change of health or metadata does not.
 */
function put(svc: ServiceEntry, i: Instance): void {
  const before = svc.instances.get(i.id);
  svc.instances.set(i.id, i);
  svc.version++;
  if (before) svc.counts[before.health]--;
  else state.instanceCount++;
  svc.counts[i.health]++;
  if (before && before.cluster === i.cluster) return;
  state.layout++;
  const order = svc.order;
  if (before || order === null) {
    svc.order = null;
    return;
  }
  order.splice(placeOf(svc, order, i), 0, i.id);
}

/** The first place in the display order whose instance does not sort before i (a binary search). */
function placeOf(svc: ServiceEntry, order: readonly string[], i: Instance): number {
  let lo = 0;
  let hi = order.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareInstances(svc.instances.get(order[mid]!)!, i) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function remove(svc: ServiceEntry, id: string): void {
  const before = svc.instances.get(id);
  if (!before) return;
  // Found by binary search while 'before' is still in the map (the search reads it).
  const order = svc.order;
  const at = order === null ? -1 : placeOf(svc, order, before);
  svc.instances.delete(id);
  svc.version++;
  svc.counts[before.health]--;
  state.instanceCount--;
  state.layout++;
  if (order !== null && order[at] === id) order.splice(at, 1);
}

/** The service's ids in display order, sorted again if a change left them unsorted. */
export function ordered(svc: ServiceEntry): readonly string[] {
  if (svc.order === null) {
    const list = [...svc.instances.values()].sort(compareInstances);
    svc.order = list.map((i) => i.id);
  }
  return svc.order;
}

/**
 * What the page did, for tests and bench:ui (`window.rollcallPage`): frames that drew the
 * services, watch events applied and in how many batches, the list built from scratch,
 * instance rows built, and whether the last drawing left nothing for later (the margin).
 */
export const stats = {
  framesDrawn: 0,
  changesApplied: 0,
  batches: 0,
  listBuilds: 0,
  rowsBuilt: 0,
  listComplete: false,
};

// Watch events wait here for the next animation frame, which applies them all at once: a
// burst of hundreds of changes costs one update of the page, not one each.
const queued: (WatchChange | number)[] = [];

/** Keeps a watch event (or a progress revision) for the next frame's applyQueued(). */
export function queue(ev: WatchChange | number): void {
  queued.push(ev);
}

/** Applies the queued watch events in order; returns how many changed the registry. */
export function applyQueued(): number {
  if (queued.length === 0) return 0;
  let applied = 0;
  for (const ev of queued) {
    if (typeof ev === 'number') {
      if (ev > state.revision) state.revision = ev;
    } else if (apply(ev)) applied++;
  }
  queued.length = 0;
  stats.batches++;
  stats.changesApplied += applied;
  return applied;
}

/** Applies one watch event; returns false when it was already reflected (a duplicate). */
export function apply(ev: WatchChange): boolean {
  if (ev.revision <= state.revision) return false;
  state.revision = ev.revision;
  const i = ev.instance;
  const svc = service(i.namespace, i.service);
  if (ev.type === 'delete') remove(svc, i.id);
  else put(svc, i);
  state.feed.unshift({
    at: Date.now(),
    revision: ev.revision,
    type: ev.type,
    cause: ev.cause || ev.type,
    key: `${i.namespace}/${i.service}/${i.id}`,
    from: ev.previous ? ev.previous.health : null,
    to: ev.type === 'delete' ? null : i.health,
  });
  if (state.feed.length > FEED_SIZE) state.feed.length = FEED_SIZE;
  return true;
}

/** Forgets the registry (another datacenter was chosen): the next listing fills it again. */
export function clearRegistry(): void {
  state.revision = 0;
  state.services = new Map();
  state.serviceKeys = [];
  state.instanceCount = 0;
  queued.length = 0;
  state.feed = [];
  state.reports = new Map();
  state.layout++;
}

export function setReports(list: readonly TrackedReport[]): void {
  state.reports = new Map();
  for (const r of list) state.reports.set(`${r.namespace}/${r.service}/${r.id}`, r);
}

export function setAlerts(alerts: readonly Alert[]): void {
  state.alerts = new Map(alerts.map((a) => [a.id, a]));
}

export function alertEvent(ev: AlertEvent): void {
  if (ev.type === 'fired') state.alerts.set(ev.alert.id, ev.alert);
  else state.alerts.delete(ev.alert.id);
}

/** A service as the list shows it: its key, and the ids of the instances the filter lets through, in order. */
export interface VisibleService {
  readonly key: string;
  readonly svc: ServiceEntry;
  readonly ids: readonly string[];
}

// What the filter matches an instance against, lower-cased once per instance object (a change
// brings a new object).
const searchText = new WeakMap<Instance, string>();

function matches(i: Instance, q: string): boolean {
  let text = searchText.get(i);
  if (text === undefined) {
    text = `${i.id} ${i.address} ${i.health} ${i.cluster} ${JSON.stringify(i.metadata)}`.toLowerCase();
    searchText.set(i, text);
  }
  return text.includes(q);
}

// The filter's matches per service, for the filter text and the service's version they were
// found at: a change to one service filters that service again, not all 100,000 instances.
const matched = new WeakMap<ServiceEntry, { q: string; version: number; ids: readonly string[] }>();

/** Services sorted by key, filtered by the search box (matches service or instance fields). */
export function visibleServices(): VisibleService[] {
  const q = state.filter.trim().toLowerCase();
  const out: VisibleService[] = [];
  for (const key of state.serviceKeys) {
    const svc = state.services.get(key)!;
    let ids = ordered(svc);
    if (q && !key.toLowerCase().includes(q)) {
      let m = matched.get(svc);
      if (m === undefined || m.q !== q || m.version !== svc.version) {
        m = { q, version: svc.version, ids: ids.filter((id) => matches(svc.instances.get(id)!, q)) };
        matched.set(svc, m);
      }
      ids = m.ids;
      if (ids.length === 0) continue;
    }
    out.push({ key, svc, ids });
  }
  return out;
}
