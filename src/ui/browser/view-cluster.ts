// The header strip and the cluster table.
import { ago, byId, fill, h, num } from './dom.js';
import { state } from './store.js';

export function renderHeader(): void {
  const c = state.cluster;
  const self = c?.self;
  fill('node', self ? self.id : '…', self ? h('span', { class: `role role-${self.role}`, text: self.role }) : null);
  fill('leader', c ? c.leader || 'none' : '…');
  byId('leader').className = c?.leader ? 'value' : 'value bad';
  fill('term', c ? num(c.term) : '…');
  fill('revision', String(state.revision));
  // A raise pending (every member supports more than the cluster runs) shows as "1 → 2".
  const cv = c ? (c.clusterVersion ?? 1) : null;
  fill(
    'cluster-version',
    cv === null
      ? '…'
      : c && c.supportedVersion !== undefined && c.supportedVersion > cv
        ? `v${cv} → v${c.supportedVersion}`
        : `v${cv}`,
  );
  const w = byId('watch');
  w.className = `live live-${state.watch}`;
  w.textContent = state.watch === 'live' ? 'live' : state.watch === 'retrying' ? 'reconnecting…' : 'connecting…';
}

/** The revision the page reflects: all that a watch event changes in the header. */
export function renderRevision(): void {
  const el = byId('revision');
  const text = String(state.revision);
  if (el.textContent !== text) el.textContent = text;
}

/** A header cell; a leading # marks a numeric (right-aligned) column. */
export function th(t: string): HTMLTableCellElement {
  return t.startsWith('#') ? h('th', { class: 'num', text: t.slice(1) }) : h('th', { text: t });
}

const STALE_MS = 2000;

export function renderCluster(): void {
  const c = state.cluster;
  if (!c) {
    fill('cluster', h('p', { class: 'empty', text: state.clusterError || 'Loading…' }));
    return;
  }
  const rows = c.members.map((m) => {
    // A member this node cannot reach: what it last said about itself is stale.
    const gone = m.id !== c.selfId && !m.connected && (m.lastContactMs === null || m.lastContactMs > STALE_MS);
    const role = gone ? 'unreachable' : m.role;
    return h(
      'tr',
      { 'data-member': m.id, 'data-role': role, class: (m.id === c.leader ? 'is-leader' : '') + (gone ? ' gone' : '') },
      h('td', { class: 'mono' }, m.id, m.id === c.selfId ? h('span', { class: 'you', text: 'this node' }) : null),
      h(
        'td',
        {},
        h('span', { class: `role role-${role}`, text: role }),
        gone && m.role !== 'unknown' ? h('span', { class: 'muted small', text: ` was ${m.role}` }) : null,
        m.voter ? null : h('span', { class: 'muted small', text: ' learner' }),
      ),
      h('td', { class: 'num' }, num(m.term)),
      h('td', { class: 'num' }, num(m.commitIndex)),
      h('td', { class: 'num' }, num(m.appliedIndex)),
      h('td', { class: `num${m.lag !== null && m.lag > 100 ? ' warn' : ''}` }, num(m.lag)),
      h(
        'td',
        { class: `num${!m.connected ? ' bad' : ''}` },
        m.id === c.selfId ? '—' : m.connected ? ago(m.lastContactMs) : `down · ${ago(m.lastContactMs)}`,
      ),
      h(
        'td',
        { class: 'num', 'data-build': m.stateMachineVersion ?? '' },
        m.stateMachineVersion === undefined ? '—' : m.stateMachineVersion === null ? '?' : `v${m.stateMachineVersion}`,
      ),
      h(
        'td',
        { class: 'mono muted small' },
        m.http ? h('a', { href: `${m.http}/ui`, text: m.http.replace(/^https?:\/\//, '') }) : '—',
      ),
    );
  });
  const stale = state.clusterError ? h('p', { class: 'error', text: `Status is stale: ${state.clusterError}` }) : null;
  fill(
    'cluster',
    stale,
    h(
      'table',
      { class: 'grid' },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['Member', 'Role', '#Term', '#Commit', '#Applied', '#Lag', '#Last contact', '#Build', 'HTTP'].map(th),
        ),
      ),
      h('tbody', {}, rows),
    ),
  );
}
