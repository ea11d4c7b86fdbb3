// Services and their instances: health, weight, metadata and what each one reports.
import { ago, byId, type Child, fill, h, pct } from './dom.js';
import { state, type VisibleService, visibleServices } from './store.js';
import type { Health, Instance, TrackedReport } from './wire.js';

const HEALTHS: readonly Health[] = ['healthy', 'subhealthy', 'suspect', 'down'];

// The list is virtual: every row has a fixed height (the CSS holds them to it), so where
// each service and each instance sits is arithmetic, and only the rows in view (and a
// margin) are in the DOM. 100,000 instances cost a few dozen elements, not a million.
const HEAD_PX = 36;
const COLUMNS_PX = 28;
const ROW_PX = 46;
/** Rows drawn beyond the visible part, above and below, so a scroll does not show blanks. */
const MARGIN_PX = 600;

const COLUMNS = ['Instance', 'Cluster', 'Health', '#Weight', 'Metadata', 'Reported', '#Ver'];

/** A service laid out: its place in the list and the rows it shows. */
interface Placed extends VisibleService {
  readonly top: number;
  /** The header's height: the service's name, and the column titles when it has rows. */
  readonly head: number;
}

let placed: Placed[] = [];
let height = 0;
let placedFor = { layout: -1, filter: '', revision: -1 };

/** Lays the services out again when their rows changed (or, filtering, when anything changed). */
function layout(): void {
  const filter = state.filter.trim();
  const same =
    placedFor.layout === state.layout &&
    placedFor.filter === filter &&
    (filter === '' || placedFor.revision === state.revision);
  if (same) return;
  placedFor = { layout: state.layout, filter, revision: state.revision };
  placed = [];
  let top = 0;
  for (const v of visibleServices()) {
    const head = HEAD_PX + (v.ids.length > 0 ? COLUMNS_PX : 0);
    placed.push({ ...v, top, head });
    top += head + v.ids.length * ROW_PX;
  }
  height = top;
}

/** The first service whose rows reach below y. */
function firstBelow(y: number): number {
  let lo = 0;
  let hi = placed.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const p = placed[mid]!;
    if (p.top + p.head + p.ids.length * ROW_PX <= y) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export function renderServices(): void {
  layout();
  fill('services-count', `${state.services.size} services · ${state.instanceCount} instances`);
  const box = byId('services');
  // The box is as tall as the list, up to 70 % of the window (the CSS): a short list leaves no blank.
  const fits = `${Math.max(height, 60)}px`;
  if (box.style.getPropertyValue('--list-height') !== fits) box.style.setProperty('--list-height', fits);
  if (placed.length === 0) {
    box.replaceChildren(
      state.servicesError
        ? h('p', {
            class: 'error',
            'data-testid': 'services-error',
            text: `Cannot list services: ${state.servicesError}`,
          })
        : h('p', {
            class: 'empty',
            text: state.services.size === 0 ? 'No services registered yet.' : 'Nothing matches the filter.',
          }),
    );
    return;
  }
  // The visible band of the list, with a margin each side.
  const from = Math.max(0, box.scrollTop - MARGIN_PX);
  const to = box.scrollTop + (box.clientHeight || 800) + MARGIN_PX;
  // Drawn again only if something in the band changed: most changes are to rows out of view.
  const shows = inBand(from, to);
  const list = box.firstElementChild;
  if (list instanceof HTMLElement && list.classList.contains('vlist') && sameAs(drawn, shows)) {
    // Rows came or went below the band only: the list's length is all that changed.
    list.style.height = `${height}px`;
    return;
  }
  drawn = shows;
  const chunks: HTMLElement[] = [];
  for (let n = firstBelow(from); n < placed.length && placed[n]!.top < to; n++) {
    chunks.push(chunk(placed[n]!, from, to));
  }
  box.replaceChildren(h('div', { class: 'vlist', style: { height: `${height}px` } }, chunks));
}

/** What the band shows, to compare with what was drawn: each value, and each instance object (a change brings a new one). */
let drawn: readonly unknown[] = [];

function inBand(from: number, to: number): unknown[] {
  const out: unknown[] = [state.reports, state.reportsNote];
  for (let n = firstBelow(from); n < placed.length && placed[n]!.top < to; n++) {
    const p = placed[n]!;
    const rowsTop = p.top + p.head;
    const first = Math.max(0, Math.floor((from - rowsTop) / ROW_PX));
    const end = Math.min(p.ids.length, Math.ceil((to - rowsTop) / ROW_PX));
    const c = p.svc.counts;
    out.push(p.key, p.top, first, end, c.healthy, c.subhealthy, c.suspect, c.down, p.svc.instances.size);
    for (let k = first; k < end; k++) out.push(p.svc.instances.get(p.ids[k]!));
  }
  return out;
}

function sameAs(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let k = 0; k < a.length; k++) if (a[k] !== b[k]) return false;
  return true;
}

/** The part of one service between from and to (list coordinates): its header if in view, and those rows. */
function chunk(p: Placed, from: number, to: number): HTMLElement {
  const rowsTop = p.top + p.head;
  const first = Math.max(0, Math.floor((from - rowsTop) / ROW_PX));
  const end = Math.min(p.ids.length, Math.ceil((to - rowsTop) / ROW_PX));
  const withHead = p.top + p.head > from;
  const rows: HTMLElement[] = [];
  for (let n = first; n < end; n++) {
    const i = p.svc.instances.get(p.ids[n]!);
    if (i) rows.push(instanceRow(p.key, i));
  }
  return h(
    'section',
    {
      class: 'service',
      'data-service': p.key,
      'data-first-row': first,
      style: { top: `${withHead ? p.top : rowsTop + first * ROW_PX}px` },
    },
    withHead ? serviceHead(p) : null,
    rows,
  );
}

function serviceHead({ svc, ids }: Placed): Child[] {
  const chips = HEALTHS.filter((hl) => svc.counts[hl]).map((hl) =>
    h('span', { class: `chip health-${hl}`, text: `${svc.counts[hl]} ${hl}` }),
  );
  const hidden = svc.instances.size - ids.length;
  return [
    h(
      'header',
      {},
      h('h3', {}, h('span', { class: 'muted', text: `${svc.namespace} / ` }), svc.service),
      h(
        'div',
        { class: 'chips' },
        hidden > 0 ? h('span', { class: 'chip', text: `${ids.length} of ${svc.instances.size} match` }) : null,
        chips.length ? chips : h('span', { class: 'chip', text: 'no instances' }),
      ),
    ),
    ids.length > 0
      ? h(
          'div',
          { class: 'irow cols', role: 'row' },
          COLUMNS.map((t) =>
            t.startsWith('#')
              ? h('div', { class: 'num', role: 'columnheader', text: t.slice(1) })
              : h('div', { role: 'columnheader', text: t }),
          ),
        )
      : null,
  ];
}

function instanceRow(serviceKey: string, i: Instance): HTMLElement {
  const report = state.reports.get(`${serviceKey}/${i.id}`);
  return h(
    'div',
    {
      class: i.enabled ? 'irow' : 'irow disabled',
      role: 'row',
      'data-instance': `${serviceKey}/${i.id}`,
      'data-health': i.health,
    },
    h(
      'div',
      { role: 'cell' },
      h('div', { class: 'mono strong', text: i.id, title: i.id }),
      h('div', { class: 'mono muted small', text: `${i.address}:${i.port}${i.ephemeral ? '' : ' · persistent'}` }),
    ),
    h('div', { role: 'cell', class: 'mono small', text: i.cluster, title: i.cluster }),
    h(
      'div',
      { role: 'cell' },
      h('span', { class: `badge health-${i.health}`, 'data-testid': 'health', text: i.health }),
      i.enabled ? null : h('span', { class: 'muted small', text: ' disabled' }),
    ),
    h('div', { role: 'cell', class: 'num', text: String(i.weight) }),
    h('div', { role: 'cell', class: 'meta' }, metadata(i)),
    h('div', { role: 'cell' }, reported(report)),
    h('div', { role: 'cell', class: 'num muted', text: String(i.version) }),
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
