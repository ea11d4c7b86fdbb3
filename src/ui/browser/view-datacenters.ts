// The federation's datacenters (GET /v1/federation) and which one's services the page shows.
import { ago, fill, h, num } from './dom.js';
import { state } from './store.js';
import { th } from './view-cluster.js';

/** Called with a datacenter's name (null: this node's own) when a person picks one to view. */
let choose: (dc: string | null) => void = () => undefined;

export function onChooseDatacenter(fn: (dc: string | null) => void): void {
  choose = fn;
}

export function renderDatacenters(): void {
  const f = state.federation;
  const shown = state.dc ?? f?.datacenter ?? null;
  fill(
    'services-dc',
    shown === null ? '' : h('span', { class: 'dc-badge', 'data-testid': 'services-dc', text: shown }),
  );
  if (!f) {
    fill('datacenters', h('p', { class: 'empty', text: state.federationError || 'Loading…' }));
    return;
  }
  const rows = f.datacenters.map((d) => {
    const viewing = d.local ? state.dc === null : state.dc === d.name;
    const alive = d.members.filter((m) => m.status === 'alive').length;
    return h(
      'tr',
      { 'data-dc': d.name, 'data-status': d.status, class: viewing ? 'viewing' : '' },
      h('td', { class: 'mono' }, d.name, d.local ? h('span', { class: 'you', text: 'this datacenter' }) : null),
      h('td', {}, h('span', { class: `dc-status dc-${d.status}`, text: d.status })),
      h('td', { class: 'mono small' }, d.leader ?? '—'),
      h('td', { class: 'num' }, d.members.length ? `${alive}/${d.members.length}` : '—'),
      h('td', { class: 'num' }, d.local ? '—' : d.rttMs === null ? '—' : `${d.rttMs} ms`),
      h('td', { class: 'num' }, d.local || d.lastHeard === null ? '—' : `${ago(Date.now() - d.lastHeard)} ago`),
      h('td', { class: 'num' }, num(d.revision)),
      h(
        'td',
        {},
        viewing
          ? h('span', { class: 'muted small', text: 'shown' })
          : h('button', {
              type: 'button',
              class: 'small-button',
              'data-view-dc': d.name,
              text: 'Show services',
              onclick: () => choose(d.local ? null : d.name),
            }),
      ),
    );
  });
  fill(
    'datacenters',
    state.federationError ? h('p', { class: 'error', text: `Status is stale: ${state.federationError}` }) : null,
    f.enabled
      ? null
      : h('p', { class: 'muted small', text: 'Federation is off on this node (no --federation-secret).' }),
    h(
      'table',
      { class: 'grid' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Datacenter', 'Status', 'Leader', '#Members alive', '#RTT', '#Last heard', '#Revision', ''].map(th),
        ),
      ),
      h('tbody', {}, rows),
    ),
  );
}
