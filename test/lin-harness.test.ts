/**
 * The linearizability harness itself, without a cluster: generated cases are
 * reproducible from their seed, the recorder writes histories the checker accepts, and a
 * client records the right completion for each answer (against a scripted HTTP server on
 * loopback): retries keep their seq, unknown outcomes become info, CAS refusals fail, and
 * a write answer that shows another write's instance is not taken as this write's version.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { caseForSeed } from '../scripts/lin/case.js';
import { LinClient } from '../scripts/lin/client.js';
import { ClusterView } from '../scripts/lin/cluster-view.js';
import { FAULT_KINDS, NETSPLIT_SHAPES, netsplitPlan } from '../scripts/lin/faults.js';
import { HistoryRecorder } from '../scripts/lin/recorder.js';
import type { LocalCluster } from '../scripts/local-cluster.js';
import { checkHistory, parseHistory } from '../src/lincheck/index.js';

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise<void>((r) => {
          s.closeAllConnections();
          s.close(() => r());
        }),
    ),
  );
});

async function fakeNode(handler: Handler): Promise<string> {
  const srv = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => handler(req, body, res));
  });
  servers.push(srv);
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
}

function view(urls: readonly string[]): ClusterView {
  const nodes = urls.map((url, i) => ({ id: `n${i + 1}`, url, proc: null, paused: false }));
  const fake = { nodes, node: (id: string) => nodes.find((n) => n.id === id)! };
  return new ClusterView(fake as unknown as LocalCluster);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'x-rollcall-leader': 'n1' });
  res.end(JSON.stringify(body));
}

const key = { ns: 'lin-test', svc: 'lin', id: 'k0' };
const fields = { address: '10.77.0.1', port: 8000, weight: 5, metadata: { w: '0.1' } };
const instance = (f: typeof fields, version: number) => ({ id: 'k0', ...f, tags: [], health: 'healthy', version });

describe('generated cases', () => {
  it('are the same for the same seed, and consecutive seeds start with every kind of fault', () => {
    expect(caseForSeed(1234)).toEqual(caseForSeed(1234));
    expect(caseForSeed(1234)).not.toEqual(caseForSeed(1235));
    const firsts = new Set(Array.from({ length: FAULT_KINDS.length }, (_, i) => caseForSeed(500 + i).faults[0]!.kind));
    expect(firsts.size).toBe(FAULT_KINDS.length);
    for (let s = 0; s < 50; s++) {
      const c = caseForSeed(s);
      expect(c.workload.clients.length).toBeGreaterThanOrEqual(4);
      expect(c.workload.clients.length).toBeLessThanOrEqual(6);
      for (const cl of c.workload.clients) for (const op of cl.ops) expect(op.key).toBeLessThan(c.workload.keys);
    }
  });
});

describe('netsplit plans', () => {
  it('cover every shape and both cut modes, whichever node the same number picks', () => {
    const all = Array.from({ length: 10_000 }, (_, n) => netsplitPlan(n / 10_000));
    expect(new Set(all.map((p) => `${p.shape}/${p.mode}`)).size).toBe(NETSPLIT_SHAPES.length * 2);
    // Delays stay below the 500 ms election timeout; the bridge's peer is a fraction.
    expect(all.filter((p) => !(p.delayMs > 0 && p.delayMs + p.jitterMs < 500 && p.peer >= 0 && p.peer < 1))).toEqual(
      [],
    );
    // The node is floor(r * candidates): each of two candidates meets every shape and mode.
    for (const half of [all.slice(0, 5000), all.slice(5000)])
      expect(new Set(half.map((p) => `${p.shape}/${p.mode}`)).size).toBe(10);
  });
});

describe('the recorder', () => {
  it('writes JSON lines the checker reads, with monotonic time, one operation in flight per process', () => {
    const r = new HistoryRecorder();
    const a = r.invoke(0, 'register', 'ns/s/k', fields);
    const b = r.invoke(1, 'get', 'ns/s/k', null);
    expect(() => r.invoke(0, 'get', 'ns/s/k', null)).toThrow(/in flight/);
    r.complete(a, 'ok', 1);
    r.complete(b, 'ok', { ...fields, version: 1 });
    const c = r.invoke(0, 'unregister', 'ns/s/k', null);
    r.complete(c, 'info');
    expect(() => r.complete(c, 'ok')).toThrow();
    const events = parseHistory(r.toJsonLines(), { model: 'registry' });
    expect(events).toHaveLength(6);
    const times = events.map((e) => e.time!);
    expect([...times].sort((x, y) => x - y)).toEqual(times);
    expect(checkHistory(events, { model: 'registry' }).linearizable).toBe(true);
  });
});

describe('a workload client', () => {
  it('retries a write with the same seq until it gets an answer', async () => {
    const seen: string[] = [];
    const url = await fakeNode((req, body, res) => {
      seen.push(`${req.headers['x-rollcall-client-id']}#${req.headers['x-rollcall-seq']}`);
      if (seen.length < 3) return json(res, 503, { error: { code: 'NO_LEADER', message: 'x' } });
      json(res, 200, { revision: 1, instance: instance(JSON.parse(body), 1) });
    });
    const rec = new HistoryRecorder();
    const c = new LinClient(0, 'client-a', view([url]), rec, { attemptTimeoutMs: 500 });
    await c.register(key, fields, 'any', 0);
    await c.register(key, { ...fields, metadata: { w: '0.2' } }, 'any', 0);
    expect(seen).toEqual(['client-a#1', 'client-a#1', 'client-a#1', 'client-a#2']);
    expect(rec.events.map((e) => `${e.type}:${JSON.stringify(e.value)}`)).toEqual([
      `invoke:${JSON.stringify(fields)}`,
      'ok:1',
      `invoke:${JSON.stringify({ ...fields, metadata: { w: '0.2' } })}`,
      'ok:1',
    ]);
    expect(c.known.get('lin-test/lin/k0')).toBe(1);
  });

  it('records info when a write never gets a definite answer, and moves to the next seq', async () => {
    const seqs: string[] = [];
    const url = await fakeNode((req) => {
      seqs.push(String(req.headers['x-rollcall-seq']));
      /* never answers */
    });
    const rec = new HistoryRecorder();
    const c = new LinClient(2, 'client-b', view([url]), rec, { attemptTimeoutMs: 150, writeDeadlineMs: 500 });
    await c.unregister(key, 'any', 0);
    expect(rec.events.map((e) => e.type)).toEqual(['invoke', 'info']);
    expect(seqs.length).toBeGreaterThan(1);
    expect(new Set(seqs)).toEqual(new Set(['1']));
  });

  it('fails a refused compare-and-set, learns the current version, and sends If-Match', async () => {
    const ifMatch: string[] = [];
    const url = await fakeNode((req, _body, res) => {
      ifMatch.push(String(req.headers['if-match']));
      json(res, 412, { error: { code: 'VERSION_MISMATCH', message: 'x', currentVersion: 7 } });
    });
    const rec = new HistoryRecorder();
    const c = new LinClient(1, 'client-c', view([url]), rec);
    await c.update(key, 3, fields, 'leader', 0);
    expect(ifMatch).toEqual(['3']);
    expect(rec.events.map((e) => e.type)).toEqual(['invoke', 'fail']);
    expect(rec.events[0]!.value).toEqual({ expected: 3, instance: fields });
    expect(c.known.get('lin-test/lin/k0')).toBe(7);
  });

  it('reads: 404 is absent, a timeout is info, a refused connection is fail, serializable on request', async () => {
    const queries: string[] = [];
    let mode: 'missing' | 'hang' = 'missing';
    const url = await fakeNode((req, _body, res) => {
      queries.push(req.url ?? '');
      if (mode === 'missing') json(res, 404, { error: { code: 'INSTANCE_NOT_FOUND', message: 'x' } });
    });
    const closed = await fakeNode(() => {});
    await new Promise<void>((r) => servers.pop()!.close(() => r()));
    const rec = new HistoryRecorder();
    const c = new LinClient(3, 'client-d', view([url, closed]), rec, { attemptTimeoutMs: 200 });
    await c.get(key, { node: 'n1' }, 0, 'serializable');
    mode = 'hang';
    await c.get(key, { node: 'n1' }, 0);
    await c.get(key, { node: 'n2' }, 0);
    expect(rec.events.filter((e) => e.type !== 'invoke').map((e) => `${e.type}:${JSON.stringify(e.value)}`)).toEqual([
      'ok:null',
      'info:null',
      'fail:null',
    ]);
    expect(queries[0]).toMatch(/\?consistency=serializable$/);
    expect(queries[1]).not.toMatch(/consistency/);
  });

  it("does not take a write answer that shows another write's instance as this write's version", async () => {
    const later = { ...fields, weight: 9, metadata: { w: '4.2' } };
    const url = await fakeNode((_req, _body, res) => json(res, 200, { revision: 5, instance: instance(later, 2) }));
    const rec = new HistoryRecorder();
    const c = new LinClient(0, 'client-e', view([url]), rec);
    await c.register(key, fields, 'any', 0);
    expect(rec.events[1]).toMatchObject({ type: 'ok', value: null });
    expect(c.notes.laterStateReplies).toBe(1);
    expect(c.notes.laterStateSamples[0]).toEqual({
      key: 'lin-test/lin/k0',
      f: 'register',
      wrote: '0.1',
      answered: { w: '4.2', version: 2 },
    });

    const naive = new LinClient(1, 'client-f', view([url]), rec, { trustWriteReplies: true });
    await naive.register(key, fields, 'any', 0);
    expect(rec.events[3]).toMatchObject({ type: 'ok', value: 2 });
  });
});
