/** The page state and how watch events change it. (embedded: served as-is by routes/page.ts; no backticks or ${ inside). */
export default String.raw`// What the page knows: the registry as of 'revision' (a listing, then every watch event
// applied in order), cluster status, reports and alerts. Rendering reads it; nothing else
// writes it.

export const FEED_SIZE = 200;

export const state = {
  revision: 0,
  /** "ns/svc" -> { namespace, service, instances: Map(id -> instance) } */
  services: new Map(),
  cluster: null,
  clusterError: null,
  clusterAt: 0,
  /** "ns/svc/id" -> tracked report, from the leader */
  reports: new Map(),
  reportsNote: '',
  /** id -> alert */
  alerts: new Map(),
  alertsLive: false,
  feed: [],
  watch: 'connecting',
  filter: '',
  /** GET /v1/health/policy (this node's copy), and why the last poll failed */
  policy: null,
  policyError: null,
};

/** One page of GET /v1/services?instances=true; the first page replaces what the page held. */
export function load(listing, first) {
  state.revision = listing.revision;
  if (first !== false) state.services = new Map();
  for (const s of listing.services) {
    const svc = service(s.namespace, s.service);
    for (const i of s.instances || []) svc.instances.set(i.id, i);
  }
}

function service(namespace, name) {
  const key = namespace + '/' + name;
  let svc = state.services.get(key);
  if (!svc) {
    svc = { namespace, service: name, instances: new Map() };
    state.services.set(key, svc);
  }
  return svc;
}

/** Applies one watch event; returns false when it was already reflected (a duplicate). */
export function apply(ev) {
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
    key: i.namespace + '/' + i.service + '/' + i.id,
    from: ev.previous ? ev.previous.health : null,
    to: ev.type === 'delete' ? null : i.health,
  });
  if (state.feed.length > FEED_SIZE) state.feed.length = FEED_SIZE;
  return true;
}

export function setReports(list) {
  state.reports = new Map();
  for (const r of list) state.reports.set(r.namespace + '/' + r.service + '/' + r.id, r);
}

export function setAlerts(alerts) {
  state.alerts = new Map(alerts.map((a) => [a.id, a]));
}

export function alertEvent(ev) {
  if (ev.type === 'fired') state.alerts.set(ev.alert.id, ev.alert);
  else state.alerts.delete(ev.alert.id);
}

/** Services sorted by key, filtered by the search box (matches service or instance fields). */
export function visibleServices() {
  const q = state.filter.trim().toLowerCase();
  const out = [];
  for (const key of [...state.services.keys()].sort()) {
    const svc = state.services.get(key);
    let instances = [...svc.instances.values()].sort((a, b) => (a.cluster + '/' + a.id < b.cluster + '/' + b.id ? -1 : 1));
    if (q && !key.toLowerCase().includes(q)) {
      instances = instances.filter((i) => (i.id + ' ' + i.address + ' ' + i.health + ' ' + i.cluster + ' ' + JSON.stringify(i.metadata)).toLowerCase().includes(q));
      if (instances.length === 0) continue;
    }
    out.push({ key, svc, instances });
  }
  return out;
}
`;
