// What the page knows: the registry as of 'revision' (a listing, then every watch event
// applied in order), cluster status, reports and alerts. Rendering reads it; nothing else
// writes it.
import type {
  Alert,
  AlertEvent,
  ClusterStatus,
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
}

export const state: PageState = {
  revision: 0,
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
};

/** One page of GET /v1/services?instances=true; the first page replaces what the page held. */
export function load(listing: ServicesPage, first: boolean): void {
  state.revision = listing.revision;
  if (first) state.services = new Map();
  for (const s of listing.services) {
    const svc = service(s.namespace, s.service);
    for (const i of s.instances || []) svc.instances.set(i.id, i);
  }
}

function service(namespace: string, name: string): ServiceEntry {
  const key = `${namespace}/${name}`;
  let svc = state.services.get(key);
  if (!svc) {
    svc = { namespace, service: name, instances: new Map() };
    state.services.set(key, svc);
  }
  return svc;
}

/** Applies one watch event; returns false when it was already reflected (a duplicate). */
export function apply(ev: WatchChange): boolean {
  if (ev.revision <= state.revision) return false;
  state.revision = ev.revision;
  const i = ev.instance;
  const svc = service(i.namespace, i.service);
  if (ev.type === 'delete') svc.instances.delete(i.id);
  else svc.instances.set(i.id, i);
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

/** A service as the list shows it: its key, and the instances the filter lets through, sorted. */
export interface VisibleService {
  readonly key: string;
  readonly svc: ServiceEntry;
  readonly instances: readonly Instance[];
}

/** Services sorted by key, filtered by the search box (matches service or instance fields). */
export function visibleServices(): VisibleService[] {
  const q = state.filter.trim().toLowerCase();
  const out: VisibleService[] = [];
  for (const [key, svc] of [...state.services].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    let instances = [...svc.instances.values()].sort((a, b) =>
      `${a.cluster}/${a.id}` < `${b.cluster}/${b.id}` ? -1 : 1,
    );
    if (q && !key.toLowerCase().includes(q)) {
      instances = instances.filter((i) =>
        `${i.id} ${i.address} ${i.health} ${i.cluster} ${JSON.stringify(i.metadata)}`.toLowerCase().includes(q),
      );
      if (instances.length === 0) continue;
    }
    out.push({ key, svc, instances });
  }
  return out;
}
