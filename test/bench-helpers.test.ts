/** Pure helpers of the benchmark harness (scripts/bench): statistics, HTTP parsing, formatting, plot, profile. */
import { describe, expect, it } from 'vitest';
import {
  buildReport,
  formatRatio,
  formatValue,
  goalMet,
  makeFigure,
  ratioOf,
  renderTable,
} from '../scripts/bench/format.js';
import { buildRequest, RecordSplitter, ResponseParser } from '../scripts/bench/http1.js';
import { areaOf, summarizeProfile } from '../scripts/bench/profile.js';
import { median, percentile, Samples, summarize } from '../scripts/bench/stats.js';
import { linearTicks, logTicks, renderPlot } from '../scripts/bench/svg.js';
import {
  etcdKeepaliveOutcome,
  keyName,
  parseEtcdWatchRecord,
  parseRollcallWatchRecord,
  payloadOf,
} from '../scripts/bench/systems.js';
import { analyseFailover } from '../scripts/bench/workloads.js';

describe('percentiles', () => {
  it('uses the nearest rank', () => {
    const xs = Float64Array.from({ length: 100 }, (_, i) => i + 1); // 1..100
    expect(percentile(xs, 50)).toBe(50);
    expect(percentile(xs, 99)).toBe(99);
    expect(percentile(xs, 99.9)).toBe(100);
    expect(percentile(xs, 100)).toBe(100);
    expect(percentile(xs, 0)).toBe(1);
    expect(percentile([7], 99.9)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });

  it('summarizes unsorted samples without changing them', () => {
    const xs = [5, 1, 4, 2, 3];
    const s = summarize(xs);
    expect(xs).toEqual([5, 1, 4, 2, 3]);
    expect(s).toMatchObject({ count: 5, min: 1, max: 5, p50: 3, mean: 3 });
    expect(summarize([]).count).toBe(0);
  });

  it('grows the sample buffer', () => {
    const s = new Samples(16);
    for (let i = 0; i < 1000; i++) s.push(i);
    expect(s.length).toBe(1000);
    expect(s.summary().p999).toBe(999);
    expect(s.summary().p50).toBe(499);
  });

  it('takes medians of finite values', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 2, 3])).toBe(2.5);
    expect(median([Number.NaN, 5])).toBe(5);
    expect(median([])).toBeNaN();
  });
});

describe('HTTP/1.1 response parsing', () => {
  const collect = () => {
    const done: number[] = [];
    const bodies: string[] = [];
    let body = '';
    const p = new ResponseParser({
      onBody: (b) => {
        body += b.toString('utf8');
      },
      onComplete: (s) => {
        done.push(s);
        bodies.push(body);
        body = '';
      },
    });
    return { p, done, bodies };
  };

  it('handles Content-Length bodies fed byte by byte', () => {
    const { p, done, bodies } = collect();
    const raw = Buffer.from(
      'HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: y\r\n\r\nhelloHTTP/1.1 404 Not Found\r\ncontent-length: 2\r\n\r\nno',
    );
    for (let i = 0; i < raw.length; i++) p.feed(raw.subarray(i, i + 1));
    expect(done).toEqual([200, 404]);
    expect(bodies).toEqual(['hello', 'no']);
  });

  it('handles chunked bodies, trailers and empty bodies', () => {
    const { p, done, bodies } = collect();
    p.feed(
      Buffer.from(
        'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\nTrailer: x\r\n\r\n',
      ),
    );
    p.feed(Buffer.from('HTTP/1.1 204 No Content\r\n\r\n'));
    p.feed(Buffer.from('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n'));
    expect(done).toEqual([200, 204, 201]);
    expect(bodies[0]).toBe('abcdefg');
  });

  it('notices Connection: close and rejects garbage', () => {
    const { p } = collect();
    p.feed(Buffer.from('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n'));
    expect(p.closeAfter).toBe(true);
    expect(() => collect().p.feed(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n'))).toThrow(/not an HTTP/);
  });

  it('builds requests with a length and splits streams into records', () => {
    const r = buildRequest({ method: 'PUT', path: '/x', host: '127.0.0.1', body: '{"a":"é"}' }).toString('utf8');
    expect(r).toMatch(/^PUT \/x HTTP\/1\.1\r\nHost: 127\.0\.0\.1\r\n/);
    expect(r).toContain('Content-Length: 10\r\n');
    expect(r.endsWith('\r\n\r\n{"a":"é"}')).toBe(true);
    const s = new RecordSplitter('\n\n');
    expect(s.push('id: 1\ndata: a\n\nid: 2\nda')).toEqual(['id: 1\ndata: a']);
    expect(s.push('ta: b\n\n')).toEqual(['id: 2\ndata: b']);
  });
});

describe('figures and the table', () => {
  it('computes ratio = rollcall / etcd, null when either is missing', () => {
    expect(ratioOf(300, 100)).toBe(3);
    expect(ratioOf(300, null)).toBeNull();
    expect(ratioOf(0, 0)).toBe(1);
    expect(ratioOf(5, 0)).toBeNull();
    const f = makeFigure('write leader 64c throughput', 'ops/s', 'higher', 7000, 3500, { goal: '>= 2' });
    expect(f).toMatchObject({ ratio: 2, better: 'higher', goal: '>= 2' });
    expect(goalMet(f)).toBe(true);
    expect(goalMet(makeFigure('watch p99', 'ms', 'lower', 120, 50, { goal: '<= 100 ms' }))).toBe(false);
    expect(goalMet(makeFigure('lost', 'events', 'lower', 0, 0, { goal: '= 0 events' }))).toBe(true);
    expect(makeFigure('x', 'ms', 'lower', Number.NaN, 3).rollcall).toBeNull();
  });

  it('formats values and ratios for people', () => {
    expect(formatValue(12345.6)).toBe('12,346');
    expect(formatValue(123.4)).toBe('123');
    expect(formatValue(12.34)).toBe('12.3');
    expect(formatValue(1.234)).toBe('1.23');
    expect(formatValue(0.01234)).toBe('0.012');
    expect(formatValue(null)).toBe('n/a');
    expect(formatRatio(2)).toBe('2.00×');
    expect(formatRatio(null)).toBe('n/a');
  });

  it('renders an aligned Markdown table and a JSON report', () => {
    const figs = [
      makeFigure('write leader 1c p99', 'ms', 'lower', 4, 8, { goal: '<= 1' }),
      makeFigure('read x', 'ops/s', 'higher', 10, null),
    ];
    const t = renderTable(figs).split('\n');
    expect(t).toHaveLength(4);
    expect(new Set(t.map((l) => [...l].length)).size).toBe(1);
    expect(t[2]).toContain('0.50×');
    expect(t[2]).toContain('<= 1 ✓');
    expect(t[3]).toContain('n/a');
    const rep = buildReport({ cores: 2 }, figs, { writeSeries: [] });
    expect(JSON.parse(JSON.stringify(rep))).toMatchObject({
      machine: { cores: 2 },
      figures: [
        { name: 'write leader 1c p99', ratio: 0.5, better: 'lower' },
        { etcd: null, ratio: null },
      ],
    });
  });
});

describe('failover analysis', () => {
  it('measures from the kill to the first success of a write sent after it', () => {
    const out = analyseFailover(
      [
        { start: 0, end: 10, ok: true },
        { start: 100, end: 900, ok: true }, // slow, but answered before the kill
        { start: 990, end: 6000, ok: false }, // hung across the kill
        { start: 1005, end: 1010, ok: false },
        { start: 1500, end: 1510, ok: true }, // first success sent after the kill
        { start: 999, end: 1600, ok: true }, // sent before the kill: does not count
      ],
      1000,
    );
    expect(out.outageMs).toBe(510);
    expect(out.longestMs).toBe(5010);
    expect(out.longestBeforeKillMs).toBe(800);
    expect(out.failed).toBe(2);
    expect(out.pastDeadline).toBe(0);
    expect(analyseFailover([{ start: 0, end: 1, ok: true }], 5).outageMs).toBeNaN();
  });
});

describe('plot', () => {
  it('picks round ticks', () => {
    expect(linearTicks(4300)).toEqual([0, 1000, 2000, 3000, 4000, 5000]);
    expect(logTicks(0.8, 150)).toEqual([0.1, 1, 10, 100, 1000]);
    expect(logTicks(2, 90)).toEqual([1, 2, 5, 10, 20, 50, 100]);
    expect(logTicks(2, 900)[0]).toBe(1);
  });

  it('renders an SVG with one path per series', () => {
    const svg = renderPlot(
      [
        {
          title: 'p99 <latency>',
          series: [
            {
              label: 'Rollcall',
              color: '#00f',
              points: [
                { x: 100, y: 2, label: '1c' },
                { x: 2000, y: 20 },
              ],
            },
            { label: 'etcd', color: '#f80', dashed: true, points: [{ x: 90, y: 3 }] },
          ],
        },
      ],
      { title: 'Writes & latency' },
    );
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trim().endsWith('</svg>')).toBe(true);
    expect(svg.match(/<path /g)).toHaveLength(2);
    expect(svg).toContain('Writes &amp; latency');
    expect(svg).toContain('p99 &lt;latency&gt;');
    expect(svg).toContain('stroke-dasharray');
  });
});

describe('profile summary', () => {
  it('splits self and inclusive time by function and area', () => {
    const cf = (functionName: string, url = '') => ({ functionName, url, lineNumber: 0 });
    const profile = {
      startTime: 0,
      endTime: 4000,
      nodes: [
        { id: 1, callFrame: cf('(root)'), children: [2, 5] },
        { id: 2, callFrame: cf('loop', 'file:///w/dist/src/node/node.js'), children: [3, 4] },
        { id: 3, callFrame: cf('encode', 'file:///w/node_modules/msgpackr/pack.js') },
        { id: 4, callFrame: cf('(garbage collector)') },
        { id: 5, callFrame: cf('(idle)') },
      ],
      samples: [3, 3, 4, 5, 2],
      timeDeltas: [0, 1000, 1000, 1000, 1000],
    };
    const s = summarizeProfile(profile);
    expect(s.totalMs).toBe(4); // the last sample has no following interval
    expect(s.busyMs).toBe(3);
    expect(s.areas.find((a) => a.key === 'pkg:msgpackr')?.ms).toBe(2);
    expect(s.inclusive[0]).toMatchObject({ key: 'loop src/node/node.js:1', ms: 3 });
    expect(areaOf('node:internal/streams', 'x')).toBe('node internals');
    expect(areaOf('file:///w/node_modules/@fastify/ajv/x.js', 'x')).toBe('pkg:@fastify/ajv');
    expect(areaOf('file:///w/dist/raft/raft.js', 'x')).toBe('raft');
  });
});

describe('workload data', () => {
  it('names keys in sortable order and builds exact payloads', () => {
    expect(keyName(42)).toBe('k0000042');
    expect(payloadOf(256)).toHaveLength(256);
    expect(Buffer.byteLength(payloadOf(256))).toBe(256);
  });

  it('classifies etcd keepalive answers', () => {
    expect(etcdKeepaliveOutcome('{"result":{"header":{},"ID":"1000001","TTL":"10"}}')).toBe('alive');
    expect(etcdKeepaliveOutcome('{"result":{"header":{},"ID":"1000001"}}')).toBe('expired');
    expect(etcdKeepaliveOutcome('{"error":{"grpc_code":14,"message":"etcdserver: leader changed"}}')).toBe('error');
  });

  it('finds the change numbers in watch records of both systems', () => {
    expect(
      parseRollcallWatchRecord(
        'id: 17\ndata: {"revision":17,"type":"put","instance":{"id":"k0000042","namespace":"bench"}}',
      ).changes,
    ).toEqual([42]);
    expect(parseRollcallWatchRecord('event: progress\ndata: {"revision":17}').changes).toEqual([]);
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const line = JSON.stringify({
      result: {
        header: { revision: '9' },
        events: [{ kv: { key: b64('bench/w/k0000007'), value: b64('x') } }, { kv: { key: b64('bench/w/k0000008') } }],
      },
    });
    expect(parseEtcdWatchRecord('bench/w/k', line)).toEqual({ changes: [7, 8], created: false });
    expect(parseEtcdWatchRecord('bench/w/k', '{"result":{"header":{},"created":true}}').created).toBe(true);
  });
});
