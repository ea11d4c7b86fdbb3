/** Pure helpers of the scale workloads (scripts/bench/scale.ts) and the per-panel plot axes. No benchmark runs here. */
import { describe, expect, it } from 'vitest';
import { instanceBody, instancePlacement, isFalseExpiry, windowedP99 } from '../scripts/bench/scale.js';
import { renderPlot } from '../scripts/bench/svg.js';

describe('instance placement', () => {
  it('puts the first 10,000 in the big service and spreads the rest over n/100 - 1 services', () => {
    const n = 1_000_000;
    expect(instancePlacement(0, n)).toEqual({ service: 'big', id: 'i0' });
    expect(instancePlacement(9_999, n).service).toBe('big');
    expect(instancePlacement(10_000, n)).toEqual({ service: 'svc00000', id: 'i10000' });
    const services = new Map<string, number>();
    for (let k = 0; k < n; k += 1) {
      const { service } = instancePlacement(k, n);
      services.set(service, (services.get(service) ?? 0) + 1);
    }
    expect(services.size).toBe(10_000);
    expect(services.get('big')).toBe(10_000);
    const others = [...services].filter(([s]) => s !== 'big').map(([, c]) => c);
    expect(Math.min(...others)).toBeGreaterThanOrEqual(99);
    expect(Math.max(...others)).toBeLessThanOrEqual(100);
  });

  it('keeps a small run in one big service and one other', () => {
    expect(instancePlacement(4, 5).service).toBe('big');
    expect(instancePlacement(10_000, 10_100).service).toBe('svc00000');
    expect(instancePlacement(10_005, 10_100).service).toBe('svc00005');
  });

  it('gives every instance an address of its own and a body of about 100 bytes', () => {
    const a = JSON.parse(instanceBody(70_000)) as { address: string; port: number };
    expect(a.address).toBe('10.1.17.112');
    expect(a.port).toBe(8080);
    expect(JSON.parse(instanceBody(1, 9090)).port).toBe(9090);
    expect(instanceBody(999_999).length).toBeLessThan(120);
  });
});

describe('false expiries', () => {
  it('counts an expired answer as false only when it came back within a TTL of the last good keepalive sent', () => {
    expect(isFalseExpiry(1000, 10_999, 10_000)).toBe(true);
    expect(isFalseExpiry(1000, 11_000, 10_000)).toBe(false);
    expect(isFalseExpiry(Number.NaN, 5, 10_000)).toBe(false);
  });
});

describe('windowed p99', () => {
  it('buckets successful requests by start time', () => {
    const records = [
      { start: 100, end: 110, ok: true },
      { start: 200, end: 300, ok: true },
      { start: 250, end: 9_000, ok: false },
      { start: 10_500, end: 10_520, ok: true },
    ];
    expect(windowedP99(records, 10_000)).toEqual([
      { t: 10, p99: 100 },
      { t: 20, p99: 20 },
    ]);
    expect(windowedP99([], 10_000)).toEqual([]);
  });
});

describe('plot with per-panel axes', () => {
  it('gives each panel its own labels and a linear y axis when asked', () => {
    const svg = renderPlot(
      [
        {
          title: 'RSS',
          xLabel: 'instances registered',
          yLabel: 'RSS (MB)',
          yScale: 'linear',
          series: [{ label: 'node 1', color: '#00f', points: [{ x: 100_000, y: 230 }] }],
        },
        {
          title: 'p99',
          xLabel: 'seconds',
          yLabel: 'p99 (ms)',
          series: [{ label: 'node 1', color: '#00f', points: [{ x: 10, y: 3 }] }],
        },
      ],
      { title: 'Scale', sharedAxes: false },
    );
    expect(svg).toContain('>instances registered<');
    expect(svg).toContain('>seconds<');
    expect(svg).toContain('>RSS (MB)<');
    // Linear ticks on the RSS panel (0, 50, ... 250), decades on the other.
    expect(svg).toContain('>250<');
    expect(svg).toContain('>100k<');
    // One legend entry for a series drawn in two panels.
    expect(svg.match(/>node 1</g)).toHaveLength(1);
  });
});
