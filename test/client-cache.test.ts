/** The discovery cache, push-empty protection, filters, the disk snapshot store and the SSE parser, alone. */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { ServiceCache, SseParser, select, type WatchEvent } from '../src/client/index.js';
import { SnapshotStore } from '../src/client/snapshot.js';
import { inst } from './client-helpers.js';

const ids = (xs: readonly { id: string }[]) => xs.map((x) => x.id);
const put = (revision: number, id: string, over = {}): WatchEvent => ({
  type: 'put',
  revision,
  instance: inst(id, { modRevision: revision, ...over }),
});
const del = (revision: number, id: string): WatchEvent => ({ type: 'delete', revision, instance: inst(id) });

describe('ServiceCache', () => {
  it('applies a list then changes, and ignores what it has already applied', () => {
    const c = new ServiceCache('prod', 'orders', true);
    c.reset([inst('b'), inst('a')], 10);
    expect(ids(c.view().instances)).toEqual(['a', 'b']);
    expect(c.apply(put(11, 'c'))).toBe(true);
    expect(c.apply(del(12, 'a'))).toBe(true);
    expect(c.apply(put(11, 'zz'))).toBe(false); // older than the cache
    expect(ids(c.view().instances)).toEqual(['b', 'c']);
    expect(c.view().revision).toBe(12);
    expect(c.apply({ type: 'progress', revision: 50 })).toBe(false);
  });

  it('offers only enabled instances', () => {
    const c = new ServiceCache('prod', 'orders', false);
    c.reset([inst('a'), inst('b')], 1);
    c.apply(put(2, 'a', { enabled: false }));
    expect(ids(c.view().instances)).toEqual(['b']);
  });

  it('holds back an update that would empty the service, and flags it', () => {
    const c = new ServiceCache('prod', 'orders', true);
    c.reset([inst('a'), inst('b')], 1);
    c.apply(del(2, 'a'));
    c.apply(del(3, 'b'));
    expect(c.view()).toMatchObject({ revision: 3, emptyProtected: true });
    expect(ids(c.view().instances)).toEqual(['b']); // the last set that had someone in it
    // Events keep applying underneath; the first instance back releases the hold.
    c.apply(put(4, 'c'));
    expect(c.view().emptyProtected).toBe(false);
    expect(ids(c.view().instances)).toEqual(['c']);
  });

  it('holds back an empty re-list and disabling the last instance, too', () => {
    const c = new ServiceCache('prod', 'orders', true);
    c.reset([inst('a')], 1);
    c.reset([], 9);
    expect(c.view()).toMatchObject({ emptyProtected: true, revision: 9 });
    expect(ids(c.view().instances)).toEqual(['a']);
    const d = new ServiceCache('prod', 'orders', true);
    d.reset([inst('a')], 1);
    d.apply(put(2, 'a', { enabled: false }));
    expect(d.view().emptyProtected).toBe(true);
  });

  it('does not protect a service that never had instances, nor when protection is off', () => {
    const c = new ServiceCache('prod', 'orders', true);
    c.reset([], 1);
    expect(c.view()).toMatchObject({ instances: [], emptyProtected: false });
    const off = new ServiceCache('prod', 'orders', false);
    off.reset([inst('a')], 1);
    off.apply(del(2, 'a'));
    expect(off.view()).toMatchObject({ instances: [], emptyProtected: false });
  });

  it('matches a model under any sequence of events (fast-check)', () => {
    const event = fc.record({
      kind: fc.constantFrom('put', 'put', 'delete', 'disable'),
      id: fc.constantFrom('a', 'b', 'c'),
    });
    fc.assert(
      fc.property(fc.array(event, { maxLength: 40 }), fc.boolean(), (events, protection) => {
        const c = new ServiceCache('prod', 'orders', protection);
        const model = new Map<string, boolean>();
        let lastNonEmpty: string[] = [];
        let rev = 1;
        c.reset([], rev);
        for (const e of events) {
          rev++;
          if (e.kind === 'delete') {
            c.apply(del(rev, e.id));
            model.delete(e.id);
          } else {
            c.apply(put(rev, e.id, { enabled: e.kind === 'put' }));
            model.set(e.id, e.kind === 'put');
          }
          const live = [...model]
            .filter(([, on]) => on)
            .map(([id]) => id)
            .sort();
          const v = c.view();
          if (live.length > 0 || !protection || lastNonEmpty.length === 0) {
            expect(ids(v.instances)).toEqual(live);
            expect(v.emptyProtected).toBe(false);
          } else {
            expect(ids(v.instances)).toEqual(lastNonEmpty);
            expect(v.emptyProtected).toBe(true);
          }
          if (live.length > 0) lastNonEmpty = live;
          expect(v.revision).toBe(rev);
        }
      }),
      { seed: 7, numRuns: 300 },
    );
  });

  it('round-trips through a snapshot', () => {
    const c = new ServiceCache('prod', 'orders', true);
    c.reset([inst('a'), inst('b')], 7);
    const s = c.toSnapshot(1234);
    expect(s).toMatchObject({ format: 1, namespace: 'prod', service: 'orders', revision: 7, savedAt: 1234 });
    const d = new ServiceCache('prod', 'orders', true);
    d.load(s);
    expect(d.view()).toEqual(c.view());
  });
});

describe('select', () => {
  const list = [
    inst('a', { cluster: 'vip', tags: ['x', 'y'] }),
    inst('b', { tags: ['x'], health: 'down' }),
    inst('c', { health: 'suspect' }),
  ];
  it('filters by cluster, every tag, and health (suspect counts as fit)', () => {
    expect(ids(select(list, {}))).toEqual(['a', 'b', 'c']);
    expect(ids(select(list, { cluster: 'vip' }))).toEqual(['a']);
    expect(ids(select(list, { tags: ['x'] }))).toEqual(['a', 'b']);
    expect(ids(select(list, { tags: ['x', 'y'] }))).toEqual(['a']);
    expect(ids(select(list, { healthyOnly: true }))).toEqual(['a', 'c']);
  });
});

describe('SnapshotStore', () => {
  let dir = '';
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('writes atomically, coalesces bursts, and reads back', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'rollcall-snap-'));
    const store = new SnapshotStore(dir);
    const c = new ServiceCache('prod', 'orders', true);
    let takes = 0;
    for (let r = 1; r <= 50; r++) {
      c.apply(put(r, `i${r}`));
      store.save('prod', 'orders', () => {
        takes++;
        return c.toSnapshot(r);
      });
    }
    await store.flush();
    expect(takes).toBeLessThanOrEqual(2); // one write in progress, one with the newest state
    const back = await store.read('prod', 'orders');
    expect(back?.revision).toBe(50);
    expect(back?.instances).toHaveLength(50);
    expect(await readdir(path.join(dir, 'prod'))).toEqual(['orders.json']); // no temporary files left
    expect(await store.read('prod', 'nope')).toBeUndefined();
  });

  it('treats a damaged or foreign file as no snapshot', async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'rollcall-snap-'));
    const store = new SnapshotStore(dir);
    await store.flush();
    const file = store.fileOf('prod', 'orders');
    await import('node:fs/promises').then((fs) => fs.mkdir(path.dirname(file), { recursive: true }));
    await writeFile(file, '{"format":1,"namespace":"prod","serv');
    expect(await store.read('prod', 'orders')).toBeUndefined();
    await writeFile(file, JSON.stringify({ format: 1, namespace: 'test', service: 'orders', instances: [] }));
    expect(await store.read('prod', 'orders')).toBeUndefined();
  });
});

describe('SseParser', () => {
  const stream =
    'retry: 2000\n\nid: 5\ndata: {"revision":5}\n\n: comment\nevent: progress\nid: 9\ndata: {"revision":9}\n\ndata: a\ndata: b\r\n\r\nevent: compacted\ndata:{"revision":12}\n\n';
  const expected = [
    { event: 'message', data: '{"revision":5}', id: '5' },
    { event: 'progress', data: '{"revision":9}', id: '9' },
    { event: 'message', data: 'a\nb', id: '9' },
    { event: 'compacted', data: '{"revision":12}', id: '9' },
  ];

  it('parses events, ids, comments, multi-line data and CRLF', () => {
    expect(new SseParser().push(stream)).toEqual(expected);
  });

  it('gives the same messages however the bytes are split (fast-check)', () => {
    const bytes = Buffer.from(stream.replace('a\n', 'ä€\n'), 'utf8');
    const want = new SseParser().push(bytes);
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: bytes.length - 1 }), { maxLength: 20 }), (cuts) => {
        const p = new SseParser();
        const got = [];
        let at = 0;
        for (const c of [...cuts.sort((a, b) => a - b), bytes.length]) {
          got.push(...p.push(bytes.subarray(at, c)));
          at = c;
        }
        expect(got).toEqual(want);
      }),
      { seed: 11, numRuns: 300 },
    );
  });
});
