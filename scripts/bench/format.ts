/**
 * Figures, the comparison table and the JSON report. Pure: no I/O.
 *
 * A figure is one measured quantity for both systems; ratio = rollcall / etcd, so whether
 * a ratio above 1 is good depends on `better`. A figure that does not apply to a system
 * (or could not be measured) has null there, shown as "n/a", and then no ratio.
 */

export type Better = 'higher' | 'lower';

export interface Figure {
  readonly name: string;
  readonly unit: string;
  readonly rollcall: number | null;
  readonly etcd: number | null;
  readonly ratio: number | null;
  readonly better: Better;
  /** The issue's target for this ratio, e.g. ">= 2". */
  readonly goal?: string;
  /** Why a value is missing, or what qualifies it. */
  readonly note?: string;
}

export interface FigureExtra {
  readonly goal?: string;
  readonly note?: string;
}

function finite(v: number | null | undefined): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

export function ratioOf(rollcall: number | null, etcd: number | null): number | null {
  const r = finite(rollcall);
  const e = finite(etcd);
  if (r === null || e === null) return null;
  if (e === 0) return r === 0 ? 1 : null;
  return r / e;
}

export function makeFigure(
  name: string,
  unit: string,
  better: Better,
  rollcall: number | null | undefined,
  etcd: number | null | undefined,
  extra: FigureExtra = {},
): Figure {
  const r = finite(rollcall);
  const e = finite(etcd);
  return {
    name,
    unit,
    rollcall: r,
    etcd: e,
    ratio: ratioOf(r, e),
    better,
    ...(extra.goal !== undefined ? { goal: extra.goal } : {}),
    ...(extra.note !== undefined ? { note: extra.note } : {}),
  };
}

/** A value for humans: thousands separators above 1000, three significant digits below. */
export function formatValue(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return 'n/a';
  const a = Math.abs(v);
  if (a >= 1000) return Math.round(v).toLocaleString('en-US');
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1) return v.toFixed(2);
  if (a === 0) return '0';
  return v.toPrecision(2);
}

export function formatRatio(r: number | null): string {
  if (r === null || !Number.isFinite(r)) return 'n/a';
  if (r >= 100) return `${r.toFixed(0)}×`;
  if (r >= 10) return `${r.toFixed(1)}×`;
  return `${r.toFixed(2)}×`;
}

/**
 * Whether the goal holds: goals are written ">= X" or "<= X" on the ratio, or
 * "= X" / "<= X ms" on Rollcall's own value when they end in a unit.
 */
export function goalMet(f: Figure): boolean | null {
  if (!f.goal) return null;
  const m = /^(>=|<=|=)\s*([0-9.]+)\s*(.*)$/.exec(f.goal.trim());
  if (!m) return null;
  const target = Number(m[2]);
  const onValue = m[3]!.length > 0 && m[3] !== '×';
  const v = onValue ? f.rollcall : f.ratio;
  if (v === null) return null;
  if (m[1] === '>=') return v >= target;
  if (m[1] === '<=') return v <= target;
  return v === target;
}

function pad(s: string, width: number, right: boolean): string {
  const len = [...s].length;
  if (len >= width) return s;
  return right ? ' '.repeat(width - len) + s : s + ' '.repeat(width - len);
}

/** A Markdown pipe table, aligned so it also reads well in a terminal. */
export function renderTable(figures: readonly Figure[]): string {
  const header = ['figure', 'unit', 'Rollcall', 'etcd', 'ratio', 'better', 'goal'];
  const rows = figures.map((f) => {
    const met = goalMet(f);
    const goal = f.goal ? `${f.goal}${met === null ? '' : met ? ' ✓' : ' ✗'}` : '';
    return [f.name, f.unit, formatValue(f.rollcall), formatValue(f.etcd), formatRatio(f.ratio), f.better, goal];
  });
  const right = [false, false, true, true, true, false, false];
  const widths = header.map((h, i) => Math.max([...h].length, ...rows.map((r) => [...r[i]!].length)));
  const line = (cells: readonly string[]) => `| ${cells.map((c, i) => pad(c, widths[i]!, right[i]!)).join(' | ')} |`;
  const sep = `|${widths.map((w, i) => (right[i] ? `${'-'.repeat(w + 1)}:` : `${'-'.repeat(w + 2)}`)).join('|')}|`;
  return [line(header), sep, ...rows.map(line)].join('\n');
}

export interface Report {
  readonly machine: Record<string, unknown>;
  readonly figures: readonly Figure[];
  readonly [extra: string]: unknown;
}

/** The JSON written by --out: machine, figures, then whatever raw series the plot needs. */
export function buildReport(
  machine: Record<string, unknown>,
  figures: readonly Figure[],
  extra: Record<string, unknown> = {},
): Report {
  return { machine, figures: figures.map((f) => ({ ...f })), ...extra };
}
