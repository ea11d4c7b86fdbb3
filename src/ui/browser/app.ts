// The monitoring page: list the registry once, then follow the watch stream; poll cluster
// status every second, the leader's health reports every two and the health policy every
// five; follow the alert stream.
// Everything is read from the node that served the page, so it works from a follower.
import { answeredBy, getJson, onAuthNeeded, openStream, type Stream, setToken, token } from './api.js';
import { byId } from './dom.js';
import { alertEvent, apply, load, setAlerts, setReports, state } from './store.js';
import { renderCluster, renderHeader } from './view-cluster.js';
import { renderServices } from './view-services.js';
import { renderAlerts, renderFeed, renderPolicy } from './view-side.js';
import type {
  AlertEvent,
  AlertSnapshot,
  ClusterStatus,
  PolicyReply,
  ReportsReply,
  ServicesPage,
  WatchChange,
  WatchProgress,
} from './wire.js';

const CLUSTER_EVERY_MS = 1000;
const REPORTS_EVERY_MS = 2000;
const POLICY_EVERY_MS = 5000;

let dirty = false;
function render(): void {
  if (dirty) return;
  dirty = true;
  requestAnimationFrame(() => {
    dirty = false;
    renderHeader();
    renderCluster();
    renderServices();
    renderAlerts();
    renderPolicy();
    renderFeed();
  });
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

async function listAll(): Promise<void> {
  let cursor: string | null = null;
  for (;;) {
    const page: ServicesPage = await getJson<ServicesPage>(
      `/v1/services?instances=true&consistency=serializable&limit=${PAGE_SIZE}${cursor ? `&continue=${encodeURIComponent(cursor)}` : ''}`,
      15000,
    );
    load(page, cursor === null);
    if (!page.continue) return;
    cursor = page.continue;
  }
}

async function bootstrap(): Promise<void> {
  if (watch) watch.close();
  watch = null;
  state.watch = 'connecting';
  render();
  for (;;) {
    try {
      // Serializable: answered from this node's applied state even with no leader. A page
      // whose revision left the node's history (410) starts the listing over.
      await listAll();
      break;
    } catch {
      state.watch = 'retrying';
      render();
      await sleep(1000);
    }
  }
  render();
  watch = openStream<{ message: WatchChange; progress: WatchProgress; compacted: unknown }>(
    () => `/v1/watch?fromRevision=${state.revision + 1}`,
    {
      message: (ev) => {
        if (apply(ev)) render();
      },
      progress: (p) => {
        if (p.revision > state.revision) state.revision = p.revision;
        render();
      },
      // Our resume point left this node's history: list again.
      compacted: () => bootstrap(),
    },
    (s) => {
      state.watch = s === 'open' ? 'live' : 'retrying';
      render();
    },
  );
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
  render();
}

// ---- health reports (kept by the leader; a follower relays them)

async function pollReports(): Promise<void> {
  try {
    const r = await getJson<ReportsReply>('/v1/health/reports', 3000);
    setReports(r.reports);
    state.reportsNote = r.available === false ? r.reason || 'reports unavailable' : 'no reports';
  } catch (err) {
    state.reportsNote = `reports unavailable: ${why(err)}`;
  }
  render();
}

// ---- health policy (replicated; this node's copy is enough for a display)

async function pollPolicy(): Promise<void> {
  try {
    state.policy = await getJson<PolicyReply>('/v1/health/policy?consistency=serializable', 3000);
    state.policyError = null;
  } catch (err) {
    state.policyError = why(err);
  }
  render();
}

// ---- alerts

function followAlerts(): void {
  openStream<{ snapshot: AlertSnapshot; alert: AlertEvent }>(
    () => '/v1/alerts/stream',
    {
      snapshot: (s) => {
        setAlerts(s.alerts);
        state.alertsLive = true;
        render();
      },
      alert: (ev) => {
        alertEvent(ev);
        render();
      },
    },
    (s) => {
      if (s !== 'open') state.alertsLive = false;
      render();
    },
  );
}

// ---- controls

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
    render();
  });
  const form = byId<HTMLFormElement>('auth');
  onAuthNeeded(() => form.removeAttribute('hidden'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    setToken(byId<HTMLInputElement>('token').value.trim());
    location.reload();
  });
  if (token()) byId('signout').removeAttribute('hidden');
  byId('signout').addEventListener('click', () => {
    setToken(null);
    location.reload();
  });
  // Relative times ("3 s ago") move even when nothing else does.
  setInterval(render, 5000);
}

controls();
render();
void bootstrap();
every(CLUSTER_EVERY_MS, pollCluster);
every(REPORTS_EVERY_MS, pollReports);
every(POLICY_EVERY_MS, pollPolicy);
followAlerts();
