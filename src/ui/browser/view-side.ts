// The side column: active alerts, the health policy in force and the live feed of changes.
import { ago, byId, clock, fill, h } from './dom.js';
import { type FeedEntry, state } from './store.js';
import type { Band, Metric } from './wire.js';

const FEED_SHOWN = 60;

export function renderAlerts(): void {
  const alerts = [...state.alerts.values()].sort((a, b) =>
    a.severity === b.severity ? (a.id < b.id ? -1 : 1) : a.severity === 'critical' ? -1 : 1,
  );
  fill('alerts-count', alerts.length ? String(alerts.length) : '');
  if (alerts.length === 0) {
    fill('alerts', h('p', { class: 'empty ok', text: state.alertsLive ? 'No active alerts.' : 'Connecting…' }));
    return;
  }
  fill(
    'alerts',
    h(
      'ul',
      { class: 'alerts' },
      alerts.map((a) =>
        h(
          'li',
          { class: `alert sev-${a.severity}`, 'data-alert': a.id },
          h(
            'div',
            { class: 'alert-head' },
            h('span', { class: 'sev', text: a.severity }),
            h('span', { class: 'mono small', text: a.kind }),
            h('span', { class: 'muted small right', text: ago(Date.now() - a.since) }),
          ),
          h('div', { text: a.message }),
        ),
      ),
    ),
  );
}

const METRICS: readonly Metric[] = ['successRatio', 'p99Ms', 'cpu', 'memory', 'disk'];

function band(b: Band | undefined): string {
  return b ? `${b.enter} → ${b.exit}` : '—';
}

/** An override as "path = value" lines: what an admin changed, in the policy's own words. */
function leaves(value: unknown, path: string, out: string[]): string[] {
  if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) leaves(v, path ? `${path}.${k}` : k, out);
  } else {
    out.push(`${path} = ${value === null ? 'off' : String(value)}`);
  }
  return out;
}

export function renderPolicy(): void {
  const p = state.policy;
  fill('policy-rev', p?.policyRevision ? `rev ${p.policyRevision}` : '');
  if (!p) {
    fill(
      'policy',
      h('p', { class: 'empty', text: state.policyError ? `Policy unavailable: ${state.policyError}` : 'Loading…' }),
    );
    return;
  }
  const d = p.defaults.health;
  const scopes: [string, unknown][] = [];
  if (p.policy) {
    if (p.policy.defaults) scopes.push(['every service', p.policy.defaults]);
    for (const [ns, o] of Object.entries(p.policy.namespaces || {})) scopes.push([`namespace ${ns}`, o]);
    for (const [svc, o] of Object.entries(p.policy.services || {})) scopes.push([`service ${svc}`, o]);
    if (p.policy.cluster) scopes.push(['cluster alerts', p.policy.cluster]);
  }
  fill(
    'policy',
    h('p', {
      class: 'small',
      'data-policy': p.policyRevision ? 'stored' : 'defaults',
      text: p.policyRevision
        ? 'Set by an admin; these override the built-in thresholds below.'
        : 'No policy stored: the built-in thresholds apply.',
    }),
    scopes.length
      ? h(
          'ul',
          { class: 'overrides' },
          scopes.map(([scope, o]) =>
            h(
              'li',
              { 'data-scope': scope },
              h('div', { class: 'small scope', text: scope }),
              leaves(o, '', []).map((line) => h('div', { class: 'mono small', text: line })),
            ),
          ),
        )
      : null,
    h(
      'table',
      { class: 'grid policy' },
      h(
        'thead',
        {},
        h('tr', {}, h('th', { text: 'built-in' }), h('th', { text: 'subhealthy' }), h('th', { text: 'down' })),
      ),
      h(
        'tbody',
        {},
        METRICS.map((m) =>
          h(
            'tr',
            {},
            h('td', { class: 'mono small', text: m }),
            h('td', { class: 'mono small', text: band(d[m]?.subhealthy) }),
            h('td', { class: 'mono small', text: band(d[m]?.down) }),
          ),
        ),
      ),
    ),
    h('p', {
      class: 'muted small',
      text: `enter → exit; ${d.degradeAfter} reports to degrade, ${d.recoverAfter} to recover, at least ${d.minDwellMs / 1000} s in a state`,
    }),
  );
}

/**
 * The feed only grows at the top: new entries are added above the ones drawn and the oldest
 * dropped, so a frame with changes draws those changes, not the whole list again.
 */
export function renderFeed(): void {
  const box = byId('feed');
  if (state.feed.length === 0) {
    fill('feed', h('p', { class: 'empty', text: 'Changes appear here as they happen.' }));
    return;
  }
  let list = box.querySelector<HTMLOListElement>('ol.feed');
  const newest = Number(list?.firstElementChild?.getAttribute('data-revision') ?? Number.NaN);
  // Drawn from scratch when nothing is drawn yet, or the feed was replaced (another datacenter).
  const at = state.feed.findIndex((e) => e.revision === newest);
  if (list === null || at < 0) {
    list = h('ol', { class: 'feed' });
    box.replaceChildren(list);
    list.append(...state.feed.slice(0, FEED_SHOWN).map(feedItem));
    return;
  }
  if (at === 0) return;
  list.prepend(...state.feed.slice(0, Math.min(at, FEED_SHOWN)).map(feedItem));
  while (list.childElementCount > FEED_SHOWN) list.lastElementChild!.remove();
}

function feedItem(e: FeedEntry): HTMLLIElement {
  return h(
    'li',
    { 'data-revision': e.revision },
    h(
      'div',
      { class: 'feed-head' },
      h('span', { class: 'muted mono small', text: clock(e.at) }),
      h('span', { class: 'mono small rev', text: `#${e.revision}` }),
      h('span', { class: `cause cause-${e.type}`, text: e.cause }),
      e.from && e.to && e.from !== e.to
        ? h(
            'span',
            { class: 'small change' },
            h('span', { class: `h-${e.from}`, text: e.from }),
            ' → ',
            h('span', { class: `h-${e.to}`, text: e.to }),
          )
        : null,
    ),
    h('div', { class: 'mono small key', text: e.key, title: e.key }),
  );
}
