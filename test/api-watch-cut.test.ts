/**
 * Issue 22, item 4, on the hub alone: slow watchers are cut the same way whether they
 * catch up or are live (one byte budget, one `overflow` event), what the hub holds for a
 * watcher stays bounded, and a cut stream's final event reaches a client that reads again
 * instead of being destroyed with it on a fixed timer.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Command } from '../src/registry/index.js';
import { WatchHub, type WatchHubOptions } from '../src/server/watch/hub.js';
import { FakeSink } from './api-sse.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

const BLOB = { blob: 'x'.repeat(1000) };
const reg = (id: string, namespace = 'prod'): Command =>
  ({ type: 'register', namespace, service: 'orders', id, address: '10.0.0.1', port: 80, metadata: BLOB }) as Command;

/** A FakeSink whose client reads part of what is buffered, and whose end completes once all is read. */
class ReadingSink extends FakeSink {
  /** The client reads `n` bytes (everything when n >= buffered). */
  read(n: number): void {
    if (n < this.buffered) {
      this.buffered -= n;
      return;
    }
    this.flush();
    // An ended response whose last byte went out is finished: it closes by itself.
    if (this.ended && !this.destroyed) this.emit('close');
  }
}

const hubs: WatchHub[] = [];
function hubFor(node: InMemoryNodeApi, opts: WatchHubOptions): WatchHub {
  const h = new WatchHub(node.registry.history, { progressMinMs: 60_000, fanOut: 'immediate', ...opts });
  hubs.push(h);
  return h;
}
afterEach(() => {
  for (const h of hubs.splice(0)) h.close();
  vi.useRealTimers();
});

const revs = (s: FakeSink) => s.changes().map((e) => Number(e.id));

describe('a watcher that stalls during catch-up', () => {
  it('is cut with an overflow event once the changes it misses pass the byte budget', async () => {
    const node = await InMemoryNodeApi.create();
    for (let i = 0; i < 300; i++) node.apply(reg(`old${i}`));
    const cuts: number[] = [];
    const hub = hubFor(node, { maxBufferedBytes: 8192, onCut: (i) => cuts.push(i.fromRevision) });
    const slow = new ReadingSink({ highWaterMark: 2048 });
    hub.open(slow, { namespace: 'prod' }, 0);
    // It stopped at its socket's high-water mark, far behind.
    const written = revs(slow);
    expect(written.length).toBeGreaterThan(0);
    expect(written.length).toBeLessThan(10);
    expect(hub.stats()).toMatchObject({ catchup: 1, overflows: 0 });
    // Changes elsewhere are not its business: they do not count against it.
    for (let i = 0; i < 50; i++) node.apply(reg(`other${i}`, 'test'));
    expect(hub.stats()).toMatchObject({ catchup: 1, overflows: 0 });
    // Changes it would have to read do, like the bytes a live watcher leaves unread.
    let applied = 0;
    while (!slow.ended && applied < 100) node.apply(reg(`new${applied++}`));
    expect(slow.ended).toBe(true);
    const unreadAtStall = slow.buffered;
    expect(applied).toBeGreaterThan(Math.floor((8192 - unreadAtStall) / 1300));
    expect(applied).toBeLessThan(Math.ceil((8192 - unreadAtStall) / 1000) + 3);
    const last = slow.events().at(-1)!;
    expect(last).toMatchObject({
      event: 'overflow',
      id: String(written.at(-1)),
      data: { fromRevision: written.at(-1)! + 1 },
    });
    expect(revs(slow)).toEqual(written); // nothing more was written to it
    expect(cuts).toEqual([written.at(-1)! + 1]);
    expect(hub.stats()).toMatchObject({ catchup: 0, closing: 1, overflows: 1 });
    // The client reads again: the overflow event is there, and the stream is done.
    slow.read(Number.MAX_SAFE_INTEGER);
    expect(hub.stats()).toMatchObject({ closing: 0, bufferedBytes: 0 });
  });

  it('goes on catching up where it stopped when its client reads again before the cut', async () => {
    const node = await InMemoryNodeApi.create();
    for (let i = 0; i < 100; i++) node.apply(reg(`old${i}`));
    const hub = hubFor(node, { maxBufferedBytes: 64 * 1024 });
    const s = new ReadingSink({ highWaterMark: 2048 });
    hub.open(s, {}, 0);
    for (let round = 0; round < 1000 && hub.stats().catchup > 0; round++) {
      node.apply(reg(`new${round}`)); // charged while it waits, forgotten once it drains
      s.read(Number.MAX_SAFE_INTEGER);
      await new Promise((r) => setImmediate(r));
    }
    expect(hub.stats()).toMatchObject({ live: 1, overflows: 0 });
    expect(revs(s)).toEqual(Array.from({ length: node.registry.revision }, (_, i) => i + 1));
  });

  it('is told compacted when its resume point left history while it was stalled', async () => {
    const node = await InMemoryNodeApi.create({ historySize: 12 });
    for (let i = 0; i < 10; i++) node.apply(reg(`old${i}`));
    const hub = hubFor(node, { maxBufferedBytes: 8192 });
    const slow = new ReadingSink({ highWaterMark: 2048 });
    hub.open(slow, { namespace: 'prod' }, 0);
    const written = revs(slow);
    for (let i = 0; i < 100 && !slow.ended; i++) node.apply(reg(`new${i}`));
    expect(node.registry.history.floor).toBeGreaterThan(written.at(-1)!);
    expect(slow.events().at(-1)).toMatchObject({ event: 'compacted' });
    expect(slow.events().at(-1)!.id).toBeUndefined();
  });
});

describe('a live watcher whose socket pushes back', () => {
  it('has later changes queued in order, not piled on the socket, and gets them as it drains', async () => {
    const node = await InMemoryNodeApi.create();
    const hub = hubFor(node, { maxBufferedBytes: 64 * 1024 });
    const s = new ReadingSink({ highWaterMark: 2048 });
    hub.open(s, {}, 0);
    for (let i = 0; i < 10; i++) node.apply(reg(`o${i}`));
    // Two changes fill the socket; the other eight wait in the hub.
    expect(revs(s)).toEqual([1, 2]);
    expect(s.buffered).toBeLessThan(2048 + 1300);
    expect(hub.stats().bufferedBytes).toBeGreaterThan(s.buffered + 7 * 1000);
    // A drain hands the socket what it takes before it pushes back again (two changes
    // here), not the whole queue: the socket never holds more than its high-water mark
    // and one write, whatever waits in the hub.
    s.read(Number.MAX_SAFE_INTEGER);
    expect(revs(s)).toEqual([1, 2, 3, 4]);
    expect(s.buffered).toBeLessThan(2048 + 1300);
    for (let drains = 0; drains < 10 && revs(s).length < 10; drains++) s.read(Number.MAX_SAFE_INTEGER);
    expect(revs(s)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(hub.stats().bufferedBytes).toBe(s.buffered);
    // The last of them filled the socket again: the next change waits for the next drain.
    node.apply(reg('o10'));
    expect(revs(s).at(-1)).toBe(10);
    s.read(Number.MAX_SAFE_INTEGER);
    expect(revs(s).at(-1)).toBe(11);
  });

  it('is cut by dropping the queue, so the overflow event goes right behind what the socket holds', async () => {
    const node = await InMemoryNodeApi.create();
    const hub = hubFor(node, { maxBufferedBytes: 16 * 1024 });
    const slow = new ReadingSink({ highWaterMark: 2048 });
    hub.open(slow, {}, 0);
    let i = 0;
    while (!slow.ended && i < 100) node.apply(reg(`o${i++}`));
    expect(slow.ended).toBe(true);
    expect(i).toBeGreaterThan(12);
    // Only what the socket took before it pushed back, then the final event.
    expect(slow.buffered).toBeLessThan(2048 + 1300 + 300);
    expect(hub.stats().bufferedBytes).toBe(slow.buffered);
    const events = slow.events();
    expect(revs(slow)).toEqual([1, 2]);
    expect(events.at(-1)).toMatchObject({ event: 'overflow', id: '2', data: { fromRevision: 3 } });
  });

  it('is cut after a drain with only what the socket took behind the overflow event', async () => {
    // The queue used to go to the socket whole when it drained: a cut soon after could no
    // longer drop it, and the overflow event waited behind up to a whole budget of changes.
    const node = await InMemoryNodeApi.create();
    const hub = hubFor(node, { maxBufferedBytes: 16 * 1024 });
    const slow = new ReadingSink({ highWaterMark: 2048 });
    hub.open(slow, {}, 0);
    let i = 0;
    for (; i < 12; i++) node.apply(reg(`o${i}`)); // two on the socket, ten queued (~12 KB)
    slow.read(Number.MAX_SAFE_INTEGER); // the client reads once, then stops again
    while (!slow.ended && i < 100) node.apply(reg(`o${i++}`));
    expect(slow.ended).toBe(true);
    const frame = Math.max(...slow.chunks.map((c) => c.length));
    expect(slow.buffered).toBeLessThan(2048 + frame + 300);
    expect(hub.stats().bufferedBytes).toBe(slow.buffered);
    // Every change up to the cut, in order, then the overflow event naming the next one.
    const delivered = revs(slow);
    expect(delivered).toEqual([1, 2, 3, 4]);
    expect(slow.events().at(-1)).toMatchObject({ event: 'overflow', id: '4', data: { fromRevision: 5 } });
  });
});

describe('a cut stream', () => {
  const GRACE = 1000;
  async function cutStream(
    opts: WatchHubOptions = {},
  ): Promise<{ node: InMemoryNodeApi; hub: WatchHub; slow: ReadingSink }> {
    const node = await InMemoryNodeApi.create();
    const hub = hubFor(node, { maxBufferedBytes: 8192, closeGraceMs: GRACE, ...opts });
    // A socket that took a lot before pushing back: what is unflushed when the cut comes.
    const slow = new ReadingSink({ highWaterMark: 64 * 1024 });
    hub.open(slow, {}, 0);
    for (let i = 0; i < 100 && !slow.ended; i++) node.apply(reg(`o${i}`));
    expect(slow.ended).toBe(true);
    expect(slow.events().at(-1)!.event).toBe('overflow');
    return { node, hub, slow };
  }

  it('is not destroyed while its client is still reading, so the overflow event reaches it', async () => {
    vi.useFakeTimers();
    const { hub, slow } = await cutStream();
    const unread = slow.buffered;
    expect(unread).toBeGreaterThan(8192);
    // The client reads a little now and then, never pausing as long as the grace period,
    // and needs more than the grace period in all.
    const step = Math.ceil(unread / 8);
    for (let _t = 0; !slow.destroyed && slow.buffered > 0; _t++) {
      vi.advanceTimersByTime(GRACE * 0.6);
      if (slow.destroyed) break;
      slow.read(step);
    }
    expect(slow.destroyed).toBe(false); // it finished by itself: everything was read
    expect(hub.stats()).toMatchObject({ closing: 0, overflows: 1 });
  });

  it('is destroyed once its client has read nothing for the grace period', async () => {
    vi.useFakeTimers();
    const { hub, slow } = await cutStream();
    vi.advanceTimersByTime(GRACE * 0.6);
    slow.read(100);
    vi.advanceTimersByTime(GRACE * 0.6);
    expect(slow.destroyed).toBe(false); // it read during the first period
    vi.advanceTimersByTime(GRACE * 1.2);
    expect(slow.destroyed).toBe(true);
    expect(hub.stats()).toMatchObject({ closing: 0 });
  });

  it('is destroyed after closeMaxMs however steadily its client trickles', async () => {
    vi.useFakeTimers();
    const { slow } = await cutStream({ closeMaxMs: GRACE * 5 });
    for (let t = 0; t < 20 && !slow.destroyed; t++) {
      vi.advanceTimersByTime(GRACE * 0.5);
      slow.read(10);
    }
    expect(slow.destroyed).toBe(true);
    expect(slow.buffered).toBeGreaterThan(0);
  });
});
