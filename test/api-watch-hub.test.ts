/**
 * The watch hub alone, over a real registry history and sinks whose flushing the test
 * controls: ordering, filters, resume without gap or duplicate, compaction, fan-out of one
 * encoding, slow watchers, progress. What depends on time runs on vitest's fake timers, so
 * no assertion depends on how fast the machine is.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Command } from '../src/registry/index.js';
import { WatchHub } from '../src/server/watch/hub.js';
import { FakeSink } from './api-sse.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

const reg = (service: string, id: string, extra: Record<string, unknown> = {}): Command =>
  ({ type: 'register', namespace: 'prod', service, id, address: '10.0.0.1', port: 80, ...extra }) as Command;

const hubs: WatchHub[] = [];
function hubFor(node: InMemoryNodeApi, opts: ConstructorParameters<typeof WatchHub>[1] = {}): WatchHub {
  // Fan-out inside the notice, so these tests can check delivery right after apply();
  // the coalesced (default) mode has its own tests below.
  const h = new WatchHub(node.registry.history, { progressMinMs: 60_000, fanOut: 'immediate', ...opts });
  hubs.push(h);
  return h;
}
afterEach(() => {
  for (const h of hubs.splice(0)) h.close();
  vi.useRealTimers();
});

const revs = (s: FakeSink) => s.changes().map((e) => Number(e.id));

describe('watch hub', () => {
  it('delivers live changes in revision order, each to the watchers whose filter matches', async () => {
    const node = await InMemoryNodeApi.create();
    const hub = hubFor(node);
    const all = new FakeSink({ autoFlush: true });
    const ns = new FakeSink({ autoFlush: true });
    const orders = new FakeSink({ autoFlush: true });
    const vip = new FakeSink({ autoFlush: true });
    const other = new FakeSink({ autoFlush: true });
    const now = node.registry.revision;
    hub.open(all, {}, now);
    hub.open(ns, { namespace: 'prod' }, now);
    hub.open(orders, { namespace: 'prod', service: 'orders' }, now);
    hub.open(vip, { namespace: 'prod', service: 'orders', cluster: 'vip' }, now);
    hub.open(other, { namespace: 'test' }, now);
    node.apply(reg('orders', 'o1'));
    node.apply(reg('orders', 'o2', { cluster: 'vip' }));
    node.apply(reg('payments', 'p1'));
    node.apply({ type: 'unregister', namespace: 'prod', service: 'orders', id: 'o1' });
    expect(revs(all)).toEqual([1, 2, 3, 4]);
    expect(revs(ns)).toEqual([1, 2, 3, 4]);
    expect(revs(orders)).toEqual([1, 2, 4]);
    expect(revs(vip)).toEqual([2]);
    // A change in one namespace/service never touches a watcher of another.
    expect(other.chunks).toHaveLength(0);
    const del = orders.changes()[2]!;
    expect(del.data).toMatchObject({ revision: 4, type: 'delete', instance: { id: 'o1' }, cause: 'unregister' });
    expect(hub.stats().live).toBe(5);
  });

  it('writes the same encoded Buffer to every watcher of a change', async () => {
    const node = await InMemoryNodeApi.create();
    const hub = hubFor(node);
    const a = new FakeSink({ autoFlush: true });
    const b = new FakeSink({ autoFlush: true });
    hub.open(a, { namespace: 'prod' }, 0);
    hub.open(b, { namespace: 'prod', service: 'orders' }, 0);
    node.apply(reg('orders', 'o1'));
    expect(a.chunks).toHaveLength(1);
    expect(a.chunks[0]).toBe(b.chunks[0]);
    // A late joiner catching up from history gets the same cached bytes too.
    const c = new FakeSink({ autoFlush: true });
    hub.open(c, {}, 0);
    expect(c.chunks[0]).toBe(a.chunks[0]);
  });

  it('resumes from history then live with no gap and no duplicate, at any resume point', async () => {
    const node = await InMemoryNodeApi.create();
    const hub = hubFor(node);
    for (let i = 1; i <= 6; i++) node.apply(reg('orders', `o${i}`));
    for (let after = 0; after <= 8; after++) {
      const s = new FakeSink({ autoFlush: true });
      hub.open(s, { namespace: 'prod', service: 'orders' }, after);
      node.apply(reg('orders', `late${after}`));
      const expected = [];
      for (let r = after + 1; r <= node.registry.revision; r++) expected.push(r);
      expect(revs(s), `after ${after}`).toEqual(expected.filter((r) => r > after));
    }
  });

  it('answers a resume point older than the history with one compacted event and ends', async () => {
    const node = await InMemoryNodeApi.create({ historySize: 3 });
    const hub = hubFor(node);
    for (let i = 1; i <= 6; i++) node.apply(reg('orders', `o${i}`));
    expect(node.registry.history.floor).toBe(3);
    const s = new FakeSink({ autoFlush: true });
    hub.open(s, {}, 1);
    expect(s.events()).toEqual([
      { event: 'compacted', data: expect.objectContaining({ revision: 6, compactRevision: 3 }) },
    ]);
    expect(s.ended).toBe(true);
    expect(s.events()[0]!.id).toBeUndefined(); // an EventSource must not resume past the gap
    const ok = new FakeSink({ autoFlush: true });
    hub.open(ok, {}, 3);
    expect(revs(ok)).toEqual([4, 5, 6]);
  });

  it('tells every watcher compacted when a snapshot replaces the state', async () => {
    const node = await InMemoryNodeApi.create();
    const hub = hubFor(node);
    const s = new FakeSink({ autoFlush: true });
    hub.open(s, {}, 0);
    node.apply(reg('orders', 'o1'));
    node.registry.history.reset(40);
    expect(s.events().map((e) => e.event)).toEqual(['message', 'compacted']);
    expect(s.events()[1]!.data.revision).toBe(40);
    expect(s.ended).toBe(true);
  });

  it('pages a long catch-up at the pace the client reads, with live changes arriving meanwhile', async () => {
    const node = await InMemoryNodeApi.create();
    const hub = hubFor(node, { pageBytes: 2048 });
    for (let i = 1; i <= 200; i++) node.apply(reg('orders', `o${i}`));
    const s = new FakeSink({ highWaterMark: 1024 });
    hub.open(s, {}, 0);
    expect(hub.stats().catchup).toBe(1);
    const firstPage = revs(s).length;
    expect(firstPage).toBeGreaterThan(0);
    expect(firstPage).toBeLessThan(200);
    for (let round = 0; hub.stats().catchup > 0 && round < 1000; round++) {
      node.apply(reg('payments', `p${round}`));
      s.flush();
      await new Promise((r) => setImmediate(r));
    }
    expect(hub.stats().live).toBe(1);
    node.apply(reg('orders', 'last'));
    const got = revs(s);
    expect(got).toEqual(Array.from({ length: node.registry.revision }, (_, i) => i + 1));
  });

  it('never splits the events of one revision across a page boundary', async () => {
    const node = await InMemoryNodeApi.create();
    node.apply({ type: 'openSession', sessionId: 's1', ttlMs: 10_000, now: 1 } as Command);
    for (let i = 0; i < 20; i++) node.apply(reg('orders', `e${i}`, { sessionId: 's1' }));
    node.apply({ type: 'closeSession', sessionId: 's1' } as Command); // 20 deletes, one revision
    node.apply(reg('orders', 'z'));
    const hub = hubFor(node, { pageBytes: 1 });
    const s = new FakeSink({ highWaterMark: 1 });
    hub.open(s, {}, 21);
    // One page = one whole revision, however small the page.
    expect(s.changes()).toHaveLength(20);
    expect(new Set(revs(s))).toEqual(new Set([22]));
    s.flush();
    expect(revs(s).slice(20)).toEqual([23]);
  });

  it('cuts a watcher that stops reading, naming the revision to resume from, and destroys it after the grace period', async () => {
    const node = await InMemoryNodeApi.create();
    vi.useFakeTimers();
    const cuts: number[] = [];
    const hub = hubFor(node, { maxBufferedBytes: 4096, closeGraceMs: 20, onCut: (i) => cuts.push(i.fromRevision) });
    const slow = new FakeSink();
    const fast = new FakeSink({ autoFlush: true });
    hub.open(slow, {}, 0);
    hub.open(fast, {}, 0);
    const big = { metadata: { blob: 'x'.repeat(1000) } };
    let i = 0;
    while (!slow.ended && i < 100) node.apply(reg('orders', `o${i++}`, big));
    expect(slow.ended).toBe(true);
    const last = slow.events().at(-1)!;
    expect(last.event).toBe('overflow');
    const delivered = revs(slow);
    expect(last.data.fromRevision).toBe(delivered.at(-1)! + 1);
    expect(last.id).toBe(String(delivered.at(-1)));
    expect(cuts).toEqual([last.data.fromRevision]);
    // Memory stays bounded: nothing more is written to it.
    const bytes = slow.buffered;
    expect(bytes).toBeLessThan(4096 + 3000);
    node.apply(reg('orders', 'after'));
    expect(slow.buffered).toBe(bytes);
    expect(revs(fast)).toHaveLength(i + 1); // the others keep going
    // Its client reads nothing: destroyed when the grace period has passed, not before.
    vi.advanceTimersByTime(19);
    expect(slow.destroyed).toBe(false);
    vi.advanceTimersByTime(1);
    expect(slow.destroyed).toBe(true);
    expect(hub.stats()).toMatchObject({ live: 1, closing: 0, overflows: 1 });
  });

  it('sends progress with the current revision on idle streams only', async () => {
    // (This counted progress events in 80 ms of wall-clock time and failed on a loaded machine.)
    const node = await InMemoryNodeApi.create();
    vi.useFakeTimers();
    const hub = hubFor(node, { progressMinMs: 15, progressMaxMs: 15 });
    const idle = new FakeSink({ autoFlush: true });
    const busy = new FakeSink({ autoFlush: true });
    const progressOf = (s: FakeSink) => s.events().filter((e) => e.event === 'progress');
    node.apply(reg('orders', 'o1'));
    hub.open(idle, { namespace: 'test' }, node.registry.revision);
    hub.open(busy, { namespace: 'prod' }, node.registry.revision);
    let n = 1;
    const changes = setInterval(() => node.apply(reg('orders', `o${++n}`)), 3);
    vi.advanceTimersByTime(80); // progress periods end at 15, 30, 45, 60 and 75 ms
    clearInterval(changes);
    const progress = progressOf(idle);
    expect(progress).toHaveLength(5);
    for (const p of progress) expect(Number(p.id)).toBe(p.data.revision);
    expect(progress.map((p) => p.data.revision)).toEqual(
      [...progress.map((p) => p.data.revision)].sort((a, b) => a - b),
    );
    expect(progress.at(-1)!.data.revision).toBeGreaterThan(20);
    expect(progressOf(busy)).toHaveLength(0);
    // Once the changes stop, the busy stream is idle too: a whole period later, both report
    // the revision they are at.
    vi.advanceTimersByTime(30);
    const now = node.registry.revision;
    expect(progressOf(idle).at(-1)).toEqual({ id: String(now), event: 'progress', data: { revision: now } });
    expect(progressOf(busy)).toEqual([{ id: String(now), event: 'progress', data: { revision: now } }]);
  });

  it('shows a cluster watcher an instance moving out as a delete and moving in as a create', async () => {
    const node = await InMemoryNodeApi.create();
    const hub = hubFor(node);
    const a = new FakeSink({ autoFlush: true });
    const b = new FakeSink({ autoFlush: true });
    hub.open(a, { namespace: 'prod', service: 'orders', cluster: 'a' }, 0);
    node.apply(reg('orders', 'o1', { cluster: 'a' }));
    hub.open(b, { namespace: 'prod', service: 'orders', cluster: 'b' }, 0);
    node.apply(reg('orders', 'o1', { cluster: 'b' }));
    expect(a.changes().map((e) => e.data.type)).toEqual(['put', 'delete']);
    expect(a.changes()[1]!.data.instance.cluster).toBe('a');
    expect(b.changes()).toHaveLength(1);
    expect(b.changes()[0]!.data).toMatchObject({ type: 'put', instance: { cluster: 'b' } });
    expect(b.changes()[0]!.data.previous).toBeUndefined();
    // Catch-up sees the same views.
    const late = new FakeSink({ autoFlush: true });
    hub.open(late, { namespace: 'prod', service: 'orders', cluster: 'a' }, 0);
    expect(late.changes().map((e) => e.data.type)).toEqual(['put', 'delete']);
  });

  it('forgets a watcher whose client hangs up', async () => {
    const node = await InMemoryNodeApi.create();
    const hub = hubFor(node);
    const s = new FakeSink({ autoFlush: true });
    hub.open(s, { namespace: 'prod' }, 0);
    s.hangUp();
    node.apply(reg('orders', 'o1'));
    expect(s.chunks).toHaveLength(0);
    expect(hub.stats()).toMatchObject({ live: 0, catchup: 0, closing: 0 });
  });
});

describe('watch hub, coalesced fan-out (the default)', () => {
  const coalesced = (node: InMemoryNodeApi): WatchHub => hubFor(node, { fanOut: 'coalesced' });
  /** Runs what the hub scheduled: a fan-out waits at most 25 ms (MAX_FAN_OUT_WAIT_MS). */
  const fanOut = () => vi.advanceTimersByTime(25);

  it('sends changes applied in one turn as one write per watcher, in revision order', async () => {
    const node = await InMemoryNodeApi.create();
    vi.useFakeTimers();
    const hub = coalesced(node);
    const orders = new FakeSink({ autoFlush: true });
    const vip = new FakeSink({ autoFlush: true });
    const now = node.registry.revision;
    hub.open(orders, { namespace: 'prod', service: 'orders' }, now);
    hub.open(vip, { namespace: 'prod', service: 'orders', cluster: 'vip' }, now);
    node.apply(reg('orders', 'o1'));
    node.apply(reg('orders', 'o2', { cluster: 'vip' }));
    node.apply(reg('payments', 'p1'));
    node.apply(reg('orders', 'o3'));
    expect(orders.chunks).toHaveLength(0); // not inside the apply
    fanOut();
    expect(orders.chunks).toHaveLength(1);
    expect(revs(orders)).toEqual([1, 2, 4]);
    expect(vip.chunks).toHaveLength(1);
    expect(revs(vip)).toEqual([2]);
    expect(hub.stats().framesSent).toBe(4);
    expect(hub.stats().liveWrites).toBe(2);
  });

  it('gives a watcher that catches up between a change and its fan-out every revision once', async () => {
    const node = await InMemoryNodeApi.create();
    vi.useFakeTimers();
    const hub = coalesced(node);
    const early = new FakeSink({ autoFlush: true });
    hub.open(early, {}, 0);
    node.apply(reg('orders', 'o1'));
    node.apply(reg('orders', 'o2'));
    // Opened after the changes were applied but before they were fanned out: catch-up
    // reads them from history, so the fan-out must skip them for this stream...
    const late = new FakeSink({ autoFlush: true });
    hub.open(late, {}, 0);
    // ...and one that resumes between them gets only the rest.
    const middle = new FakeSink({ autoFlush: true });
    hub.open(middle, {}, 1);
    node.apply(reg('orders', 'o3'));
    fanOut();
    expect(revs(early)).toEqual([1, 2, 3]);
    expect(revs(late)).toEqual([1, 2, 3]);
    expect(revs(middle)).toEqual([2, 3]);
  });

  it('delivers pending changes before telling watchers a snapshot replaced the state', async () => {
    const node = await InMemoryNodeApi.create();
    const hub = coalesced(node);
    const s = new FakeSink({ autoFlush: true });
    hub.open(s, {}, 0);
    node.apply(reg('orders', 'o1'));
    node.registry.history.reset(40);
    expect(s.events().map((e) => e.event)).toEqual(['message', 'compacted']);
    expect(s.ended).toBe(true);
  });

  it('reports a revision that carried no events (a rules or policy change) in progress', async () => {
    const node = await InMemoryNodeApi.create();
    vi.useFakeTimers();
    const hub = hubFor(node, { fanOut: 'coalesced', progressMinMs: 20, progressMaxMs: 20 });
    const s = new FakeSink({ autoFlush: true });
    hub.open(s, {}, 0);
    node.apply(reg('orders', 'o1'));
    fanOut(); // (the stream wrote in the first period: no progress at 20 ms)
    expect(revs(s)).toEqual([1]);
    node.registry.history.append([], 5); // what a change without instance events notifies
    fanOut(); // the second period ends at 40 ms
    expect(s.events().filter((e) => e.event === 'progress')).toEqual([
      { id: '5', event: 'progress', data: { revision: 5 } },
    ]);
  });

  /** A watcher whose every write takes `costMs` of the (fake) clock: a fan-out that costs time. */
  class SlowSink extends FakeSink {
    constructor(private readonly costMs: number) {
      super({ autoFlush: true });
    }
    override write(chunk: Buffer): boolean {
      vi.setSystemTime(Date.now() + this.costMs);
      return super.write(chunk);
    }
  }
  const paced = (node: InMemoryNodeApi, fanOutShare?: number): WatchHub =>
    hubFor(node, { fanOut: 'coalesced', now: () => Date.now(), ...(fanOutShare ? { fanOutShare } : {}) });

  it('waits 9× the last fan-out (share 0.1), so a lone writer’s changes leave in one write', async () => {
    const node = await InMemoryNodeApi.create();
    vi.useFakeTimers();
    const hub = paced(node);
    const s = new SlowSink(2);
    hub.open(s, {}, 0);
    node.apply(reg('orders', 'o1'));
    vi.advanceTimersByTime(0); // idle: the next turn
    expect(revs(s)).toEqual([1]); // that fan-out took 2 ms: the next one waits 18
    node.apply(reg('orders', 'o2'));
    vi.advanceTimersByTime(10);
    node.apply(reg('orders', 'o3'));
    vi.advanceTimersByTime(7);
    expect(revs(s)).toEqual([1]);
    vi.advanceTimersByTime(1);
    expect(revs(s)).toEqual([1, 2, 3]);
    expect(s.chunks).toHaveLength(2); // one write for both changes
    expect(hub.stats().liveWrites).toBe(2);
  });

  it('reports what the last fan-out took, in stats and to onFanOut', async () => {
    const node = await InMemoryNodeApi.create();
    vi.useFakeTimers();
    const costs: number[] = [];
    const hub = hubFor(node, { fanOut: 'coalesced', now: () => Date.now(), onFanOut: (sec) => costs.push(sec) });
    expect(hub.stats().lastFanOutMs).toBe(0);
    hub.open(new SlowSink(3), {}, 0);
    node.apply(reg('orders', 'o1'));
    vi.advanceTimersByTime(0);
    expect(hub.stats().lastFanOutMs).toBe(3);
    expect(costs).toEqual([0.003]);
  });

  it('cuts a watcher that stops reading while pacing holds fan-outs back, and the others get every change once', async () => {
    const node = await InMemoryNodeApi.create();
    vi.useFakeTimers();
    const cuts: number[] = [];
    const bound = 8192;
    const hub = hubFor(node, {
      fanOut: 'coalesced',
      now: () => Date.now(),
      maxBufferedBytes: bound,
      onCut: (i) => cuts.push(i.fromRevision),
    });
    // Each fan-out costs 1 ms (the fast watcher's write), so the next waits 9: ~10 changes a write.
    const fast = new SlowSink(1);
    const slow = new FakeSink({ highWaterMark: 2048 }); // reads nothing: pushes back, then queues
    hub.open(fast, {}, 0);
    hub.open(slow, {}, 0);
    let maxUnread = 0;
    for (let i = 0; i < 3000; i++) {
      node.apply(reg('orders', `o${i}`));
      vi.advanceTimersByTime(1);
      maxUnread = Math.max(maxUnread, hub.stats().bufferedBytes);
    }
    vi.advanceTimersByTime(25);
    expect(revs(fast)).toEqual(Array.from({ length: 3000 }, (_, i) => i + 1));
    expect(fast.chunks.length).toBeLessThan(3000 / 5); // paced: several changes a write
    expect(slow.ended).toBe(true);
    const last = slow.events().at(-1)!;
    expect(last.event).toBe('overflow');
    const delivered = revs(slow);
    expect(delivered).toEqual(Array.from({ length: delivered.length }, (_, i) => i + 1));
    expect(last.data.fromRevision).toBe(delivered.at(-1)! + 1);
    expect(cuts).toEqual([last.data.fromRevision]);
    // What the hub held for it never passed the bound by more than one fan-out.
    const oneFanOut = Math.max(...fast.chunks.map((c) => c.length));
    expect(maxUnread).toBeLessThanOrEqual(bound + oneFanOut);
    expect(hub.stats()).toMatchObject({ live: 1, overflows: 1 });
  });

  // The wait after a fan-out that cost `cost` ms: min(cost × (1 − share) / share, 25).
  it.each([
    { what: 'as long as the last fan-out took at share 0.5', share: 0.5, cost: 4, waitMs: 4 },
    { what: 'never more than 25 ms, however long the last fan-out took', share: undefined, cost: 10, waitMs: 25 },
  ])('holds the next change back $what', async ({ share, cost, waitMs }) => {
    const node = await InMemoryNodeApi.create();
    vi.useFakeTimers();
    const hub = paced(node, share);
    const s = new SlowSink(cost);
    hub.open(s, {}, 0);
    node.apply(reg('orders', 'o1'));
    vi.advanceTimersByTime(0);
    node.apply(reg('orders', 'o2'));
    vi.advanceTimersByTime(waitMs - 1);
    expect(revs(s)).toEqual([1]);
    vi.advanceTimersByTime(1);
    expect(revs(s)).toEqual([1, 2]);
  });

  it('sends a change on the next turn once the gap after the last fan-out has passed', async () => {
    const node = await InMemoryNodeApi.create();
    vi.useFakeTimers();
    const hub = paced(node);
    const s = new SlowSink(2);
    hub.open(s, {}, 0);
    node.apply(reg('orders', 'o1'));
    vi.advanceTimersByTime(0);
    vi.advanceTimersByTime(20); // past the 18-ms gap after a 2-ms fan-out
    node.apply(reg('orders', 'o2'));
    vi.advanceTimersByTime(0);
    expect(revs(s)).toEqual([1, 2]);
  });

  it('refuses a fan-out share outside (0, 1]', async () => {
    const node = await InMemoryNodeApi.create();
    expect(() => hubFor(node, { fanOut: 'coalesced', fanOutShare: 1.5 })).toThrow(/fanOutShare/);
  });

  it('clears a paced fan-out timer on close', async () => {
    const node = await InMemoryNodeApi.create();
    vi.useFakeTimers();
    const hub = paced(node);
    const s = new SlowSink(2);
    hub.open(s, {}, 0);
    node.apply(reg('orders', 'o1'));
    vi.advanceTimersByTime(0); // a fan-out that took 2 ms: the next waits 18, on a timer
    node.apply(reg('orders', 'o2'));
    vi.advanceTimersByTime(0);
    expect(revs(s)).toEqual([1]); // held back by the timer, not the next turn
    hub.close();
    s.hangUp(); // its grace timer goes with it
    expect(vi.getTimerCount()).toBe(0);
    expect(revs(s)).toEqual([1]);
  });

  it('drops pending changes on close and writes nothing afterwards', async () => {
    const node = await InMemoryNodeApi.create();
    vi.useFakeTimers();
    const hub = coalesced(node);
    const s = new FakeSink({ autoFlush: true });
    hub.open(s, {}, 0);
    node.apply(reg('orders', 'o1'));
    hub.close();
    vi.runAllTimers(); // everything the hub left scheduled, however far ahead
    expect(vi.getTimerCount()).toBe(0);
    expect(revs(s)).toEqual([]);
    expect(s.ended).toBe(true);
  });
});
