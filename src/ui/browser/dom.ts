// Small DOM and formatting helpers. Text always goes in as text nodes: nothing from the
// registry (ids, metadata) is ever parsed as HTML.

/** What h() and fill() append: nodes, text, nested lists; null, undefined and false add nothing. */
export type Child = Node | string | number | null | undefined | false | readonly Child[];

type AttrValue = string | number | boolean | null | undefined;

/**
 * Attributes of h(): `class`, `text` (the element's text), `style` (set through the CSSOM),
 * `on<event>` listeners, and any other attribute (true: present and empty). null, undefined
 * and false leave one out.
 */
export interface Attrs {
  readonly style?: Partial<CSSStyleDeclaration>;
  readonly [name: string]: AttrValue | EventListener | Partial<CSSStyleDeclaration>;
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = String(v);
    else if (k === 'text') el.textContent = String(v);
    // Through the CSSOM: the page's CSP refuses inline style attributes.
    else if (k === 'style') Object.assign(el.style, v);
    else if (k.startsWith('on')) {
      if (typeof v === 'function') el.addEventListener(k.slice(2), v);
    } else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el: Element, children: readonly Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of the element with this id. */
export function fill(id: string, ...children: Child[]): void {
  const el = document.getElementById(id);
  if (!el) return;
  el.replaceChildren();
  append(el, children);
}

/** The page's element with this id; the skeleton (index-html) has every one the scripts ask for. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`no #${id} in the page`);
  return el as T;
}

export function ago(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 1 : 0)} s`;
  if (ms < 3600000) return `${Math.round(ms / 60000)} min`;
  return `${Math.round(ms / 3600000)} h`;
}

export function pct(f: number | null | undefined): string {
  return f === undefined || f === null ? '—' : `${Math.round(f * 100)}%`;
}

export function clock(t: number): string {
  const d = new Date(t);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

export function num(n: number | null | undefined): string {
  return n === null || n === undefined ? '—' : String(n);
}
