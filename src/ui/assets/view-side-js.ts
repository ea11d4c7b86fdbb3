/** Active alerts and the live feed. (embedded: served as-is by routes/page.ts; no backticks or ${ inside). */
export default String.raw`// The side column: active alerts and the live feed of changes.
import { ago, clock, fill, h } from './dom.js';
import { state } from './store.js';

const FEED_SHOWN = 60;

export function renderAlerts() {
  const alerts = [...state.alerts.values()].sort((a, b) => (a.severity === b.severity ? (a.id < b.id ? -1 : 1) : a.severity === 'critical' ? -1 : 1));
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
          { class: 'alert sev-' + a.severity, 'data-alert': a.id },
          h('div', { class: 'alert-head' }, h('span', { class: 'sev', text: a.severity }), h('span', { class: 'mono small', text: a.kind }), h('span', { class: 'muted small right', text: ago(Date.now() - a.since) })),
          h('div', { text: a.message }),
        ),
      ),
    ),
  );
}

export function renderFeed() {
  if (state.feed.length === 0) {
    fill('feed', h('p', { class: 'empty', text: 'Changes appear here as they happen.' }));
    return;
  }
  fill(
    'feed',
    h(
      'ol',
      { class: 'feed' },
      state.feed.slice(0, FEED_SHOWN).map((e) =>
        h(
          'li',
          { 'data-revision': e.revision },
          h(
            'div',
            { class: 'feed-head' },
            h('span', { class: 'muted mono small', text: clock(e.at) }),
            h('span', { class: 'mono small rev', text: '#' + e.revision }),
            h('span', { class: 'cause cause-' + e.type, text: e.cause }),
            e.from && e.to && e.from !== e.to ? h('span', { class: 'small change' }, h('span', { class: 'h-' + e.from, text: e.from }), ' → ', h('span', { class: 'h-' + e.to, text: e.to })) : null,
          ),
          h('div', { class: 'mono small key', text: e.key, title: e.key }),
        ),
      ),
    ),
  );
}
`;
