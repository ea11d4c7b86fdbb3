import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { HistoryNotice, Instance, RegistryEvent } from '../src/registry/index.js';
import { EventHistory } from '../src/registry/index.js';
import { inst, Log, seed } from './registry-helpers.js';

const fake = { id: 'x' } as Instance;
const ev = (revision: number): RegistryEvent => ({ type: 'put', revision, instance: fake, cause: 'register' });

describe('EventHistory', () => {
  it('answers since(r) with the events after r, oldest first', () => {
    const h = new EventHistory(10, 0);
    h.append([ev(1)], 1);
    h.append([ev(2), ev(2)], 2);
    h.append([ev(4)], 4);
    expect(h.since(0)).toEqual([ev(1), ev(2), ev(2), ev(4)]);
    expect(h.since(1)).toEqual([ev(2), ev(2), ev(4)]);
    expect(h.since(3)).toEqual([ev(4)]);
    expect(h.since(4)).toEqual([]);
    expect(h.since(99)).toEqual([]);
  });

  it('is bounded, drops whole revisions, and answers compacted below its floor', () => {
    const h = new EventHistory(3, 0);
    h.append([ev(1), ev(1)], 1);
    h.append([ev(2)], 2);
    expect(h.floor).toBe(0);
    h.append([ev(3)], 3); // full: revision 1 (both events) goes
    expect(h.size).toBe(2);
    expect(h.floor).toBe(1);
    expect(h.since(0)).toBe('compacted');
    expect(h.since(1)).toEqual([ev(2), ev(3)]);
  });

  it('starts at the revision it was opened at and resets on reload', () => {
    const h = new EventHistory(5, 7);
    expect(h.since(6)).toBe('compacted');
    expect(h.since(7)).toEqual([]);
    const seen: HistoryNotice[] = [];
    h.subscribe((n) => seen.push(n));
    h.append([ev(8)], 8);
    h.append([], 9); // an idle advance (session opened) is reported as progress
    h.append([], 9); // no advance, no notice
    h.reset(20);
    expect(seen).toEqual([
      { kind: 'events', events: [ev(8)], revision: 8 },
      { kind: 'events', events: [], revision: 9 },
      { kind: 'reset', revision: 20 },
    ]);
    expect(h.since(9)).toBe('compacted');
  });

  it('matches a reference model for any append sequence', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.nat(3), { maxLength: 40 }),
        fc.nat(50),
        (capacity, sizes, probe) => {
          const h = new EventHistory(capacity, 0);
          const all: RegistryEvent[] = [];
          let rev = 0;
          for (const n of sizes) {
            rev++;
            const batch = Array.from({ length: n }, () => ev(rev));
            all.push(...batch);
            h.append(batch, rev);
          }
          expect(h.size).toBeLessThanOrEqual(capacity);
          const r = probe % (rev + 2);
          const got = h.since(r);
          if (got === 'compacted') {
            expect(r).toBeLessThan(h.floor);
            // compacted only if something after r really is gone
            expect(all.filter((e) => e.revision > r).length).toBeGreaterThan(h.size);
          } else {
            expect(got).toEqual(all.filter((e) => e.revision > r));
          }
        },
      ),
      { seed: seed(7) },
    );
  });

  it('a throwing listener does not stop the others; its error is reported', () => {
    const errors: unknown[] = [];
    const h = new EventHistory(5, 0, (e) => errors.push(e));
    const seen: number[] = [];
    h.subscribe(() => {
      throw new Error('boom');
    });
    const off = h.subscribe((n) => seen.push(n.revision));
    h.append([ev(1)], 1);
    off();
    h.append([ev(2)], 2);
    expect(seen).toEqual([1]);
    expect(errors.map((e) => (e as Error).message)).toEqual(['boom', 'boom']);
  });
});

describe('registry history', () => {
  it('records applied events for watchers and resets on reload', async () => {
    const log = await Log.open({ historySize: 100 });
    const notices: HistoryNotice[] = [];
    log.registry.history.subscribe((n) => notices.push(n));
    log.apply(inst('a'));
    log.apply(inst('b'));
    expect(log.registry.history.since(1)).toMatchObject([{ revision: 2, instance: { id: 'b' } }]);
    await log.registry.reload();
    expect(log.registry.history.since(1)).toBe('compacted');
    expect(notices.map((n) => n.kind)).toEqual(['events', 'events', 'reset']);
  });
});
