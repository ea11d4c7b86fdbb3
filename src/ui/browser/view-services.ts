// Services and their instances: health, weight, metadata and what each one reports.
import { ago, type Child, fill, h, pct } from './dom.js';
import { state, type VisibleService, visibleServices } from './store.js';
import { th } from './view-cluster.js';
import type { Health, Instance, TrackedReport } from './wire.js';

const HEALTHS: readonly Health[] = ['healthy', 'subhealthy', 'suspect', 'down'];
// A service with more instances shows this many rows; the filter narrows to the rest.
const MAX_ROWS = 200;

export function renderServices(): void {
  const list = visibleServices();
  let total = 0;
  for (const s of state.services.values()) total += s.instances.size;
  fill('services-count', `${state.services.size} services · ${total} instances`);
  if (list.length === 0) {
    fill(
      'services',
      h('p', {
        class: 'empty',
        text: state.services.size === 0 ? 'No services registered yet.' : 'Nothing matches the filter.',
      }),
    );
    return;
  }
  fill('services', list.map(serviceBlock));
}

function serviceBlock({ key, svc, instances }: VisibleService): HTMLElement {
  const counts: Partial<Record<Health, number>> = {};
  for (const i of svc.instances.values()) counts[i.health] = (counts[i.health] || 0) + 1;
  const chips = HEALTHS.filter((hl) => counts[hl]).map((hl) =>
    h('span', { class: `chip health-${hl}`, text: `${counts[hl]} ${hl}` }),
  );
  return h(
    'section',
    { class: 'service', 'data-service': key },
    h(
      'header',
      {},
      h('h3', {}, h('span', { class: 'muted', text: `${svc.namespace} / ` }), svc.service),
      h('div', { class: 'chips' }, chips.length ? chips : h('span', { class: 'chip', text: 'no instances' })),
    ),
    instances.length === 0
      ? null
      : h(
          'table',
          { class: 'grid instances' },
          h(
            'colgroup',
            {},
            ['c-id', 'c-cluster', 'c-health', 'c-weight', 'c-meta', 'c-rep', 'c-ver'].map((c) =>
              h('col', { class: c }),
            ),
          ),
          h(
            'thead',
            {},
            h('tr', {}, ['Instance', 'Cluster', 'Health', '#Weight', 'Metadata', 'Reported', '#Ver'].map(th)),
          ),
          h(
            'tbody',
            {},
            instances.slice(0, MAX_ROWS).map((i) => instanceRow(key, i)),
          ),
        ),
    instances.length > MAX_ROWS
      ? h('p', {
          class: 'muted small',
          'data-testid': 'more-rows',
          text: `Showing ${MAX_ROWS} of ${instances.length} instances; type in the filter to find the others.`,
        })
      : null,
  );
}

function instanceRow(serviceKey: string, i: Instance): HTMLTableRowElement {
  const report = state.reports.get(`${serviceKey}/${i.id}`);
  return h(
    'tr',
    { 'data-instance': `${serviceKey}/${i.id}`, 'data-health': i.health, class: i.enabled ? '' : 'disabled' },
    h(
      'td',
      { class: 'clip' },
      h('div', { class: 'mono strong', text: i.id, title: i.id }),
      h('div', { class: 'mono muted small', text: `${i.address}:${i.port}${i.ephemeral ? '' : ' · persistent'}` }),
    ),
    h('td', { class: 'mono small clip', text: i.cluster, title: i.cluster }),
    h(
      'td',
      {},
      h('span', { class: `badge health-${i.health}`, 'data-testid': 'health', text: i.health }),
      i.enabled ? null : h('span', { class: 'muted small', text: ' disabled' }),
    ),
    h('td', { class: 'num', text: String(i.weight) }),
    h('td', { class: 'meta' }, metadata(i)),
    h('td', {}, reported(report)),
    h('td', { class: 'num muted', text: String(i.version) }),
  );
}

function metadata(i: Instance): Child {
  const entries = Object.entries(i.metadata || {});
  const tags = (i.tags || []).map((t) => h('span', { class: 'tag', text: t }));
  if (entries.length === 0 && tags.length === 0) return h('span', { class: 'muted', text: '—' });
  return [
    tags,
    entries.map(([k, v]) => h('span', { class: 'kv', title: `${k}=${v}` }, h('span', { class: 'k', text: k }), v)),
  ];
}

function bar(label: string, value: number | undefined): HTMLElement | null {
  if (value === undefined) return null;
  const level = value > 0.9 ? 'bad' : value > 0.75 ? 'warn' : 'ok';
  return h(
    'span',
    { class: 'bar', title: `${label} ${pct(value)}` },
    h('span', { class: 'bar-label', text: label }),
    h(
      'span',
      { class: 'bar-track' },
      h('span', { class: `bar-fill ${level}`, style: { width: `${Math.min(100, Math.round(value * 100))}%` } }),
    ),
    h('span', { class: `bar-value${level === 'bad' ? ' bad' : ''}`, text: pct(value) }),
  );
}

function reported(t: TrackedReport | undefined): HTMLElement {
  if (!t) return h('span', { class: 'muted small', text: state.reportsNote || 'no reports' });
  const r = t.report || {};
  const calls: HTMLElement[] = [];
  if (r.successRatio !== undefined)
    calls.push(
      h(
        'span',
        { class: `metric${r.successRatio < 0.9 ? ' bad' : ''}`, 'data-testid': 'success' },
        `ok ${(r.successRatio * 100).toFixed(1)}%`,
      ),
    );
  if (r.p99Ms !== undefined)
    calls.push(h('span', { class: `metric${r.p99Ms > 1000 ? ' bad' : ''}` }, `p99 ${Math.round(r.p99Ms)} ms`));
  calls.push(h('span', { class: 'muted small', text: `${ago(t.ageMs)} ago` }));
  if (t.pending)
    calls.push(
      h('span', {
        class: 'pending small',
        title: 'awaiting confirmation by more reports or the minimum dwell',
        text: `→ ${t.pending.to}?`,
      }),
    );
  const meters = [bar('cpu', r.cpu), bar('mem', r.memory), bar('disk', r.disk)].filter(Boolean);
  return h(
    'div',
    { class: 'reported' },
    h('div', { class: 'calls' }, calls),
    meters.length ? h('div', { class: 'meters' }, meters) : null,
  );
}
