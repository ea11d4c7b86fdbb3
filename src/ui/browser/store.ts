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
    state.instanceCount = 0;
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
    svc = { namespace, service: name, instances: new Map(), order: [], counts: noCounts() };
    state.services.set(key, svc);
    state.layout++;
  }
  return svc;
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
  let lo = 0;
  let hi = order.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareInstances(svc.instances.get(order[mid]!)!, i) < 0) lo = mid + 1;
    else hi = mid;
  }
  order.splice(lo, 0, i.id);
}

function remove(svc: ServiceEntry, id: string): void {
  const before = svc.instances.get(id);
  if (!before) return;
  svc.instances.delete(id);
  svc.counts[before.health]--;
  state.instanceCount--;
  state.layout++;
  const at = svc.order?.indexOf(id) ?? -1;
  if (at >= 0) svc.order!.splice(at, 1);
}

/** The service's ids in display order, sorted again if a change left them unsorted. */
export function ordered(svc: ServiceEntry): readonly string[] {
  if (svc.order === null) {
    const list = [...svc.instances.values()].sort(compareInstances);
    svc.order = list.map((i) => i.id);
  }
  return svc.order;
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
  state.instanceCount = 0;
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

/** Services sorted by key, filtered by the search box (matches service or instance fields). */
export function visibleServices(): VisibleService[] {
  const q = state.filter.trim().toLowerCase();
  const out: VisibleService[] = [];
  for (const [key, svc] of [...state.services].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    let ids = ordered(svc);
    if (q && !key.toLowerCase().includes(q)) {
      ids = ids.filter((id) => matches(svc.instances.get(id)!, q));
      if (ids.length === 0) continue;
    }
    out.push({ key, svc, ids });
  }
  return out;
}
