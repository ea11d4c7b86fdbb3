/**
 * The plots of docs/benchmarks.md as standalone SVG strings. By default (the
 * latency-against-throughput plot): one panel per latency percentile, throughput on x
 * (linear), latency on y (log10), one line per system and target through its
 * 1/16/64-connection points, all panels on one pair of axes. With `sharedAxes: false`
 * each panel has its own axes, labels and y scale (the scale workloads' plot). Pure: no I/O.
 */

export interface PlotPoint {
  /** Throughput, operations per second. */
  readonly x: number;
  /** Latency, ms. */
  readonly y: number;
  /** Shown beside the point (e.g. the connection count). */
  readonly label?: string;
}

export interface PlotSeries {
  readonly label: string;
  readonly color: string;
  readonly dashed?: boolean;
  readonly points: readonly PlotPoint[];
}

export interface PlotPanel {
  readonly title: string;
  readonly series: readonly PlotSeries[];
  /** With `sharedAxes: false`: this panel's axis labels (else the plot's) and y scale (default log). */
  readonly xLabel?: string;
  readonly yLabel?: string;
  readonly yScale?: 'log' | 'linear';
}

export interface PlotOptions {
  readonly title: string;
  readonly subtitle?: string;
  readonly xLabel?: string;
  readonly yLabel?: string;
  readonly panelWidth?: number;
  readonly panelHeight?: number;
  /** One x range and one y range for every panel (default); false: each panel its own. */
  readonly sharedAxes?: boolean;
}

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** Round numbers for a linear axis: about `n` ticks from 0 to at least max. */
export function linearTicks(max: number, n = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / n;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  const ticks: number[] = [];
  for (let v = 0; v < max + step * 0.999; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

/** Decade ticks (1, 10, 100, ...) covering [min, max], with 2 and 5 between when the range is small. */
export function logTicks(min: number, max: number): number[] {
  const lo = Math.floor(Math.log10(Math.max(min, 1e-6)));
  const hi = Math.ceil(Math.log10(Math.max(max, min * 1.0001, 1e-6)));
  const ticks: number[] = [];
  const fine = hi - lo <= 2;
  for (let e = lo; e <= hi; e++) {
    for (const m of fine ? [1, 2, 5] : [1]) {
      const v = m * 10 ** e;
      if (v >= 10 ** lo && v <= 10 ** hi) ticks.push(Number(v.toPrecision(6)));
    }
  }
  return ticks;
}

function fmtTick(v: number): string {
  if (v >= 1000) return `${v / 1000}k`;
  return String(v);
}

interface Axes {
  readonly xTicks: readonly number[];
  readonly yTicks: readonly number[];
  readonly sy: (y: number, oy: number, ph: number) => number;
}

function axesOf(points: readonly PlotPoint[], yScale: 'log' | 'linear'): Axes {
  const xMax = Math.max(1, ...points.map((p) => p.x)) * 1.08;
  const xTicks = linearTicks(xMax);
  if (yScale === 'linear') {
    const yTicks = linearTicks(Math.max(1, ...points.map((p) => p.y)) * 1.08);
    const yTop = yTicks[yTicks.length - 1]!;
    return { xTicks, yTicks, sy: (y, oy, ph) => oy + ph - (y / yTop) * ph };
  }
  const yTicks = logTicks(Math.min(...points.map((p) => p.y), 1), Math.max(...points.map((p) => p.y), 10));
  const yLo = Math.log10(yTicks[0]!);
  const yHi = Math.log10(yTicks[yTicks.length - 1]!);
  return { xTicks, yTicks, sy: (y, oy, ph) => oy + ph - ((Math.log10(y) - yLo) / (yHi - yLo || 1)) * ph };
}

export function renderPlot(panels: readonly PlotPanel[], opts: PlotOptions): string {
  const pw = opts.panelWidth ?? 420;
  const ph = opts.panelHeight ?? 300;
  const margin = { left: 64, right: 20, top: 70, bottom: 90 };
  const gap = 40;
  const width = margin.left + panels.length * pw + (panels.length - 1) * (gap + margin.left / 2) + margin.right;
  const height = margin.top + ph + margin.bottom;
  const shared = opts.sharedAxes ?? true;
  const visible = (p: PlotPanel) =>
    p.series.flatMap((s) => s.points).filter((pt) => pt.x > 0 && (p.yScale === 'linear' ? pt.y >= 0 : pt.y > 0));
  const sharedAxes = shared ? axesOf(panels.flatMap(visible), 'log') : null;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
  );
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  out.push(
    `<text x="${width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">${escapeXml(opts.title)}</text>`,
  );
  if (opts.subtitle)
    out.push(`<text x="${width / 2}" y="44" text-anchor="middle" fill="#555">${escapeXml(opts.subtitle)}</text>`);

  panels.forEach((panel, pi) => {
    const yScale = shared ? 'log' : (panel.yScale ?? 'log');
    const axes = sharedAxes ?? axesOf(visible(panel), yScale);
    const { xTicks, yTicks } = axes;
    const xTop = xTicks[xTicks.length - 1]!;
    const ox = margin.left + pi * (pw + gap + margin.left / 2);
    const oy = margin.top;
    const sx = (x: number) => ox + (x / xTop) * pw;
    const sy = (y: number) => axes.sy(y, oy, ph);
    const xLabel = (shared ? undefined : panel.xLabel) ?? opts.xLabel ?? 'throughput (ops/s)';
    const yLabel =
      (shared ? undefined : panel.yLabel) ??
      opts.yLabel ??
      (yScale === 'log' ? 'latency (ms, log scale)' : 'latency (ms)');
    out.push(`<g>`);
    out.push(
      `<text x="${ox + pw / 2}" y="${oy - 8}" text-anchor="middle" font-weight="bold">${escapeXml(panel.title)}</text>`,
    );
    out.push(`<rect x="${ox}" y="${oy}" width="${pw}" height="${ph}" fill="none" stroke="#333"/>`);
    for (const t of xTicks) {
      const x = sx(t).toFixed(1);
      out.push(`<line x1="${x}" y1="${oy}" x2="${x}" y2="${oy + ph}" stroke="#e5e5e5"/>`);
      out.push(`<text x="${x}" y="${oy + ph + 16}" text-anchor="middle">${fmtTick(t)}</text>`);
    }
    for (const t of yTicks) {
      const y = sy(t).toFixed(1);
      out.push(`<line x1="${ox}" y1="${y}" x2="${ox + pw}" y2="${y}" stroke="#e5e5e5"/>`);
      out.push(`<text x="${ox - 6}" y="${Number(y) + 4}" text-anchor="end">${fmtTick(t)}</text>`);
    }
    out.push(`<text x="${ox + pw / 2}" y="${oy + ph + 36}" text-anchor="middle">${escapeXml(xLabel)}</text>`);
    out.push(
      `<text transform="translate(${ox - 46},${oy + ph / 2}) rotate(-90)" text-anchor="middle">${escapeXml(yLabel)}</text>`,
    );
    for (const s of panel.series) {
      const pts = s.points
        .filter((p) => p.x > 0 && (yScale === 'linear' ? p.y >= 0 : p.y > 0))
        .slice()
        .sort((a, b) => a.x - b.x);
      if (pts.length === 0) continue;
      const d = pts.map((p, i) => `${i === 0 ? 'M' : 'L'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ');
      out.push(
        `<path d="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6,4"' : ''}/>`,
      );
      for (const p of pts) {
        out.push(`<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="3.5" fill="${s.color}"/>`);
        if (p.label)
          out.push(
            `<text x="${(sx(p.x) + 5).toFixed(1)}" y="${(sy(p.y) - 6).toFixed(1)}" fill="${s.color}" font-size="10">${escapeXml(p.label)}</text>`,
          );
      }
    }
    out.push(`</g>`);
  });

  // Legend under the panels: every distinct series label, in order of first appearance.
  const legend: PlotSeries[] = [];
  for (const s of panels.flatMap((p) => p.series))
    if (!legend.some((l) => l.label === s.label && l.color === s.color && l.dashed === s.dashed)) legend.push(s);
  // Flowed left to right, wrapping: about 6.5 px a character at 12 px.
  let lx = margin.left;
  let ly = margin.top + ph + 62;
  for (const s of legend) {
    const w = 34 + escapeXml(s.label).length * 6.5 + 24;
    if (lx > margin.left && lx + w > width - margin.right) {
      lx = margin.left;
      ly += 18;
    }
    out.push(
      `<line x1="${lx}" y1="${ly}" x2="${lx + 28}" y2="${ly}" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6,4"' : ''}/>`,
    );
    out.push(`<text x="${lx + 34}" y="${ly + 4}">${escapeXml(s.label)}</text>`);
    lx += Math.max(190, w);
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
