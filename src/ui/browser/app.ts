// The monitoring page: list the registry once, then follow the watch stream; poll cluster
// status every second, the leader's health reports every two, the federation's datacenters
// every two and the health policy every five; follow the alert stream.
// Everything is read from the node that served the page, so it works from a follower. The
// services (listing, watch, reports) can be another datacenter's: the same requests with
// `?dc=NAME`, which this node forwards there.
import {
  type AuthProblem,
  answeredBy,
  getJson,
  onAuthProblem,
  openStream,
  type Stream,
  setToken,
  token,
} from './api.js';
import { byId } from './dom.js';
import { alertEvent, applyQueued, clearRegistry, load, queue, setAlerts, setReports, state, stats } from './store.js';
import { loadTokenScope, namespaceParam } from './token-scope.js';
import { renderCluster, renderHeader, renderRevision } from './view-cluster.js';
import { onChooseDatacenter, renderDatacenters } from './view-datacenters.js';
import { renderServices } from './view-services.js';
import { renderAlerts, renderFeed, renderPolicy } from './view-side.js';
import type {
  AlertEvent,
  AlertSnapshot,
  ClusterStatus,
  FederationReply,
  PolicyReply,
  ReportsReply,
  ServicesPage,
  WatchChange,
  WatchProgress,
} from './wire.js';

const CLUSTER_EVERY_MS = 1000;
const REPORTS_EVERY_MS = 2000;
const POLICY_EVERY_MS = 5000;
const FEDERATION_EVERY_MS = 2000;
/**
 * Watch events are shown at most this often. Every frame that changes the page costs style,
 * layout, paint and commit, whatever the change: at hundreds of changes a second, drawing
 * them 60 times a second kept the main thread busy enough to wait for a CPU on a loaded
 * machine, where 10 times a second is as live to the eye.
 */
const LIVE_EVERY_MS = 100;

// Each section is drawn again only when what it shows changed, once per animation frame at
// most: with hundreds of changes a second, a frame applies the watch events that came since
// the last one and updates the rows in view that changed, the feed and the revision, not the
// whole page. A section that returns true has more to draw and is drawn again next frame.
const SECTIONS = {
  header: renderHeader,
  revision: renderRevision,
  cluster: renderCluster,
  datacenters: renderDatacenters,
  services: renderServices,
  alerts: renderAlerts,
  policy: renderPolicy,
  feed: renderFeed,
} satisfies Record<string, () => unknown>;
type Section = keyof typeof SECTIONS;
const ALL = Object.keys(SECTIONS) as Section[];

const dirty = new Set<Section>();
/** Draws these sections (none named: every one) at the next frame. */
function render(...sections: Section[]): void {
  const first = dirty.size === 0;
  for (const s of sections.length ? sections : ALL) dirty.add(s);
  if (!first) return;
  requestAnimationFrame(() => {
    // Cleared before drawing: a section that throws must not leave the set non-empty, which
    // would stop every later frame from being scheduled and freeze the whole page.
    const due = ALL.filter((s) => dirty.has(s));
    dirty.clear();
    // The watch events since the last frame, all at once, before anything is drawn.
    try {
      applyQueued();
    } catch (err) {
      console.error('applying watch events:', err);
    }
    for (const s of due) {
      try {
        if (SECTIONS[s]() === true) render(s);
      } catch (err) {
        console.error(`drawing ${s}:`, err);
      }
    }
  });
}

let liveTimer: ReturnType<typeof setTimeout> | null = null;
let liveShownAt = Number.NEGATIVE_INFINITY;

/** Draws the queued watch events at the next frame, or as soon as LIVE_EVERY_MS have passed since the last time. */
function showLiveSoon(): void {
  if (liveTimer !== null) return;
  const wait = Math.max(0, liveShownAt + LIVE_EVERY_MS - performance.now());
  liveTimer = setTimeout(() => {
    liveTimer = null;
    liveShownAt = performance.now();
    render('services', 'feed', 'revision');
  }, wait);
}

/** What a failed request says: the thrown error's message. */
function why(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// ---- registry: one consistent listing, then the watch from the revision after it

// The listing comes in pages (every page read at the first page's revision), so a large
// registry is never asked for in one answer: the node refuses that (LIMIT_EXCEEDED), and
// building it would hold the node's event loop.
const PAGE_SIZE = 2000;

let watch: Stream | null = null;
// Bumped by each (re)start of the listing: a listing or stream of an earlier start (another
// datacenter, or a listing that was started over) stops at its next step.
let generation = 0;

/** `&dc=NAME` when another datacenter's services are shown. */
function dcParam(): string {
  return state.dc === null ? '' : `&dc=${encodeURIComponent(state.dc)}`;
}

async function listAll(started: number): Promise<boolean> {
  let cursor: string | null = null;
  for (;;) {
    const page: ServicesPage = await getJson<ServicesPage>(
      `/v1/services?instances=true&consistency=serializable&limit=${PAGE_SIZE}${dcParam()}${namespaceParam()}${cursor ? `&continue=${encodeURIComponent(cursor)}` : ''}`,
      15000,
    );
    if (started !== generation) return false;
    load(page, cursor === null);
    // Each page shows as it comes: a large registry paints its first rows at once.
    render('services', 'header');
    if (!page.continue) return true;
    cursor = page.continue;
  }
}

async function bootstrap(): Promise<void> {
  const started = ++generation;
  if (watch) watch.close();
  watch = null;
  state.watch = 'connecting';
  render('header', 'services');
  for (;;) {
    try {
      // Serializable: answered from this node's applied state even with no leader. A page
      // whose revision left the node's history (410) starts the listing over.
      if (!(await listAll(started))) return;
      state.servicesError = null;
      break;
    } catch (err) {
      if (started !== generation) return;
      state.servicesError = why(err);
      state.watch = 'retrying';
      render('header', 'services');
      await sleep(1000);
      if (started !== generation) return;
    }
  }
  render('header', 'services');
  watch = openStream<{ message: WatchChange; progress: WatchProgress; compacted: unknown }>(
    () => `/v1/watch?fromRevision=${state.revision + 1}${dcParam()}${namespaceParam()}`,
    {
      // Applied at the next frame, in order with the changes before them (queue()).
      message: (ev) => {
        queue(ev);
        showLiveSoon();
      },
      progress: (p) => {
        queue(p.revision);
        showLiveSoon();
      },
      // Our resume point left this node's history: list again.
      compacted: () => bootstrap(),
    },
    (s) => {
      state.watch = s === 'open' ? 'live' : 'retrying';
      render('header');
    },
  );
}

/** Shows another datacenter's services (null: this node's own): the listing and the watch start over there. */
function showDatacenter(dc: string | null): void {
  if (dc === state.dc) return;
  state.dc = dc;
  clearRegistry();
  render('datacenters', 'feed');
  void bootstrap();
  void pollReports();
}

// ---- cluster status

async function pollCluster(): Promise<void> {
  try {
    const c = await getJson<ClusterStatus>('/v1/cluster', 3000);
    const selfId = answeredBy;
    state.cluster = { ...c, selfId, self: c.members.find((m) => m.id === selfId) || { id: selfId, role: 'unknown' } };
    state.clusterError = null;
  } catch (err) {
    state.clusterError = why(err);
  }
  state.clusterAt = Date.now();
  render('header', 'cluster');
}

// ---- health reports (kept by the leader; a follower relays them)

async function pollReports(): Promise<void> {
  try {
    const dc = state.dc;
    const r = await getJson<ReportsReply>(
      `/v1/health/reports?${dc === null ? '' : `dc=${encodeURIComponent(dc)}`}${namespaceParam()}`,
      3000,
    );
    // The datacenter shown changed meanwhile: these reports are of the other one.
    if (dc !== state.dc) return;
    setReports(r.reports);
    state.reportsNote = r.available === false ? r.reason || 'reports unavailable' : 'no reports';
  } catch (err) {
    state.reportsNote = `reports unavailable: ${why(err)}`;
  }
  render('services');
}

// ---- the federation's datacenters

async function pollFederation(): Promise<void> {
  try {
    state.federation = await getJson<FederationReply>('/v1/federation', 3000);
    state.federationError = null;
  } catch (err) {
    state.federationError = why(err);
  }
  render('datacenters');
}

// ---- health policy (replicated; this node's copy is enough for a display)

async function pollPolicy(): Promise<void> {
  try {
    state.policy = await getJson<PolicyReply>('/v1/health/policy?consistency=serializable', 3000);
    state.policyError = null;
  } catch (err) {
    state.policyError = why(err);
  }
  render('policy');
}

// ---- alerts

function followAlerts(): void {
  openStream<{ snapshot: AlertSnapshot; alert: AlertEvent }>(
    () => '/v1/alerts/stream',
    {
      snapshot: (s) => {
        setAlerts(s.alerts);
        state.alertsLive = true;
        render('alerts');
      },
      alert: (ev) => {
        alertEvent(ev);
        render('alerts');
      },
    },
    (s) => {
      if (s !== 'open') state.alertsLive = false;
      render('alerts');
    },
  );
}

// ---- controls

/** What a refused request tells the person: who refused, why (the server's words), what to do. */
function authMessage(p: AuthProblem): string {
  const where = p.datacenter === null ? 'This node' : `Datacenter ${p.datacenter}`;
  if (p.status === 401)
    return p.datacenter === null
      ? `${where} refused the request (401): ${p.message}. Paste a token (role read is enough).`
      : `${where} refused the token (401): ${p.message}. Each datacenter checks tokens of its own.`;
  if (p.status === 403) return `${where} does not let this token read that (403): ${p.message}.`;
  return `${where} refuses requests from this address for now (429): ${p.message}.`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function every(ms: number, fn: () => Promise<void>): void {
  const loop = async () => {
    await fn();
    setTimeout(loop, ms);
  };
  void loop();
}

function controls(): void {
  const filter = byId<HTMLInputElement>('filter');
  filter.addEventListener('input', () => {
    state.filter = filter.value;
    render('services');
  });
  const form = byId<HTMLFormElement>('auth');
  onAuthProblem((p) => {
    form.removeAttribute('hidden');
    byId('auth-message').textContent = authMessage(p);
  });
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    setToken(byId<HTMLInputElement>('token').value.trim());
    // Every request and stream starts again with the token (sessionStorage: kept across the reload).
    location.reload();
  });
  if (token()) byId('signout').removeAttribute('hidden');
  byId('signout').addEventListener('click', () => {
    setToken(null);
    location.reload();
  });
  onChooseDatacenter(showDatacenter);
  byId('services').addEventListener('scroll', () => render('services'), { passive: true });
  // Relative times ("3 s ago") move even when nothing else does.
  setInterval(() => render(), 5000);
}

// For tests and bench:ui: how many frames drew the list, batches of changes, rows built.
(globalThis as { rollcallPage?: typeof stats }).rollcallPage = stats;
controls();
render();
// A token limited to namespaces lists, watches and reads reports of one of them (token-scope.ts).
void loadTokenScope(() => {
  clearRegistry();
  render('feed');
  void bootstrap();
  void pollReports();
}).then(() => {
  void bootstrap();
  every(REPORTS_EVERY_MS, pollReports);
});
every(CLUSTER_EVERY_MS, pollCluster);
every(POLICY_EVERY_MS, pollPolicy);
every(FEDERATION_EVERY_MS, pollFederation);
followAlerts();
