// Services and their instances: health, weight, metadata and what each one reports.
import { ago, byId, type Child, h, pct } from './dom.js';
import { state, stats, type VisibleService, visibleServices } from './store.js';
import type { Health, Instance, TrackedReport } from './wire.js';

const HEALTHS: readonly Health[] = ['healthy', 'subhealthy', 'suspect', 'down'];

// The list is virtual: every row has a fixed height (the CSS holds them to it), so where
// each service and each instance sits is arithmetic, and only the rows in view (and a
// margin) are in the DOM. 100,000 instances cost a few dozen elements, not a million.
const HEAD_PX = 36;
const COLUMNS_PX = 28;
const ROW_PX = 46;
/** Rows drawn beyond the visible part, above and below, so a scroll does not show blanks. */
const MARGIN_PX = 300;

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

/** Time one drawing may take before it leaves the margin rows to the next frame. */
const BUDGET_MS = 8;

/** An instance row on the page, and what it was drawn from: it is built again only when one of them changes. */
interface DrawnRow {
  readonly el: HTMLElement;
  readonly instance: Instance;
  readonly report: TrackedReport | undefined;
  readonly note: string;
}

/** A service's part of the band on the page: its element, its header (with what it shows) and its rows by id. */
interface DrawnService {
  readonly el: HTMLElement;
  head: readonly Node[];
  headShows: string;
  readonly rows: Map<string, DrawnRow>;
}

// What is on the page. Every drawing updates it in place: rows that did not change keep their
// elements (no new style, layout or paint for them), so a frame with changes out of view
// touches nothing in the list, and one in view replaces that row alone.
let vlist: HTMLElement | null = null;
const drawnServices = new Map<string, DrawnService>();

/** Draws the services; returns true when the margin around the rows in view is left for the next frame. */
export function renderServices(): boolean {
  const started = performance.now();
  stats.framesDrawn++;
  layout();
  setText('services-count', `${state.services.size} services · ${state.instanceCount} instances`);
  const box = byId('services');
  // The box is as tall as the list, up to 70 % of the window (the CSS): a short list leaves no blank.
  const fits = `${Math.max(height, 60)}px`;
  if (box.style.getPropertyValue('--list-height') !== fits) box.style.setProperty('--list-height', fits);
  stats.listComplete = true;
  if (placed.length === 0) {
    vlist = null;
    drawnServices.clear();
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
    return false;
  }
  if (vlist === null || box.firstElementChild !== vlist) {
    vlist = h('div', { class: 'vlist' });
    drawnServices.clear();
    box.replaceChildren(vlist);
    stats.listBuilds++;
  }
  const listHeight = `${height}px`;
  if (vlist.style.height !== listHeight) vlist.style.height = listHeight;
  // The rows in view always; the margin either side (so a scroll shows no blanks) as far as
  // the rows it still lacks fit in the frame's budget, and the rest in the next frames. After
  // a jump to another part of a long list every row there is new: the rows in view show in
  // that frame, the margin fills in over the following ones.
  const top = box.scrollTop;
  const bottom = top + (box.clientHeight || 800);
  const inView = rowsMissing(top, bottom);
  // At least a few rows of margin a frame beyond those in view, however slow building is.
  const affordable = Math.max(inView + MIN_MARGIN_ROWS, BUDGET_MS / (msPerRow * RENDER_FACTOR));
  let margin = MARGIN_PX;
  while (margin > MARGIN_STEP_PX && rowsMissing(Math.max(0, top - margin), bottom + margin) > affordable)
    margin -= MARGIN_STEP_PX;
  const built = stats.rowsBuilt;
  drawBand(vlist, Math.max(0, top - margin), bottom + margin);
  if (stats.rowsBuilt > built) {
    const each = (performance.now() - started) / (stats.rowsBuilt - built);
    msPerRow = msPerRow * 0.7 + each * 0.3;
  }
  stats.listComplete = margin >= MARGIN_PX;
  return !stats.listComplete;
}

const MIN_MARGIN_ROWS = 4;
/**
 * What a new row costs the frame in all, against the script time measured here: its style,
 * layout, paint and commit come after the script. In bench:ui's traces they took about five
 * times the script's time.
 */
const RENDER_FACTOR = 5;
const MARGIN_STEP_PX = 100;

/** What building one row costs, measured as rows are built: how many fit in the budget. */
let msPerRow = 0.2;

/** How many rows between from and to have no element on the page to reuse. */
function rowsMissing(from: number, to: number): number {
  let missing = 0;
  for (let n = firstBelow(from); n < placed.length && placed[n]!.top < to; n++) {
    const p = placed[n]!;
    const drawn = drawnServices.get(p.key)?.rows;
    const rowsTop = p.top + p.head;
    const end = Math.min(p.ids.length, Math.ceil((to - rowsTop) / ROW_PX));
    for (let k = Math.max(0, Math.floor((from - rowsTop) / ROW_PX)); k < end; k++) {
      const row = drawn?.get(p.ids[k]!);
      if (row === undefined || row.instance !== p.svc.instances.get(p.ids[k]!)) missing++;
    }
  }
  return missing;
}

/** Brings the list's elements to the services and rows between from and to (list coordinates). */
function drawBand(list: HTMLElement, from: number, to: number): void {
  const want: HTMLElement[] = [];
  const keys = new Set<string>();
  for (let n = firstBelow(from); n < placed.length && placed[n]!.top < to; n++) {
    const p = placed[n]!;
    keys.add(p.key);
    want.push(drawService(p, from, to));
  }
  for (const key of drawnServices.keys()) {
    if (!keys.has(key)) drawnServices.delete(key);
  }
  arrange(list, want);
}

/** Makes parent's children exactly 'want', in order, moving and removing as few as it can. */
function arrange(parent: HTMLElement, want: readonly Node[]): void {
  const keep = new Set(want);
  for (let c = parent.firstChild; c !== null; ) {
    const next = c.nextSibling;
    if (!keep.has(c)) c.remove();
    c = next;
  }
  let at = parent.firstChild;
  for (const node of want) {
    if (node === at) at = at.nextSibling;
    else parent.insertBefore(node, at);
  }
}

/** The part of one service between from and to (list coordinates): its header if in view, and those rows. */
function drawService(p: Placed, from: number, to: number): HTMLElement {
  const rowsTop = p.top + p.head;
  const first = Math.max(0, Math.floor((from - rowsTop) / ROW_PX));
  const end = Math.min(p.ids.length, Math.ceil((to - rowsTop) / ROW_PX));
  const withHead = p.top + p.head > from;
  let d = drawnServices.get(p.key);
  if (d === undefined) {
    d = { el: h('section', { class: 'service', 'data-service': p.key }), head: [], headShows: '', rows: new Map() };
    drawnServices.set(p.key, d);
  }
  const sectionTop = `${withHead ? p.top : rowsTop + first * ROW_PX}px`;
  if (d.el.style.top !== sectionTop) d.el.style.top = sectionTop;
  const firstRow = String(first);
  if (d.el.getAttribute('data-first-row') !== firstRow) d.el.setAttribute('data-first-row', firstRow);
  const want: Node[] = [];
  if (withHead) {
    const c = p.svc.counts;
    const shows = `${c.healthy} ${c.subhealthy} ${c.suspect} ${c.down} ${p.svc.instances.size} ${p.ids.length}`;
    if (d.headShows !== shows || d.head.length === 0) {
      d.head = serviceHead(p).filter((n): n is HTMLElement => n instanceof HTMLElement);
      d.headShows = shows;
    }
    want.push(...d.head);
  }
  const rows = new Map<string, DrawnRow>();
  for (let n = first; n < end; n++) {
    const id = p.ids[n]!;
    const i = p.svc.instances.get(id);
    if (!i) continue;
    const report = state.reports.get(`${p.key}/${id}`);
    const note = report ? '' : state.reportsNote;
    let row = d.rows.get(id);
    if (row === undefined || row.instance !== i || row.report !== report || row.note !== note) {
      row = { el: instanceRow(p.key, i, report), instance: i, report, note };
      stats.rowsBuilt++;
    }
    rows.set(id, row);
    want.push(row.el);
  }
  d.rows.clear();
  for (const [id, row] of rows) d.rows.set(id, row);
  arrange(d.el, want);
  return d.el;
}

/** Sets the element's text if it differs: an unchanged text is not laid out again. */
function setText(id: string, text: string): void {
  const el = document.getElementById(id);
  if (el && el.textContent !== text) el.textContent = text;
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

function instanceRow(serviceKey: string, i: Instance, report: TrackedReport | undefined): HTMLElement {
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
