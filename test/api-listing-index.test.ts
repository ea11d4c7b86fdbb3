/**
 * The listing index and the revision views, against plain models: the sorted map against a
 * sorted array, and every view against the registry's whole state recorded at its revision
 * (random writes, deletes, cluster moves, health and disabled flips, seeded).
 */
import { describe, expect, it } from 'vitest';
import type { Command, Instance } from '../src/registry/index.js';
import { healthSummary, total } from '../src/server/listing/counts.js';
import { InstanceIndex, instanceSortKey, rangeEnd } from '../src/server/listing/instance-index.js';
import { RevisionView } from '../src/server/listing/revision-view.js';
import { SortedMap } from '../src/server/listing/sorted-map.js';
import { seeded as rng } from './client-helpers.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

const SEED = Number(process.env.LISTING_SEED ?? Date.now() % 1_000_000);

describe('SortedMap', () => {
  it(`keeps keys sorted through inserts and deletes, and walks any range (seed ${SEED}; replay with LISTING_SEED=${SEED})`, () => {
    const r = rng(SEED);
    const m = new SortedMap<number>();
    const model = new Map<string, number>();
    const key = () => `k${Math.floor(r() * 3000).toString(36)}`;
    for (let step = 0; step < 20_000; step++) {
      const k = key();
      if (r() < 0.6) {
        m.set(k, step);
        model.set(k, step);
      } else {
        expect(m.delete(k)).toBe(model.delete(k));
      }
      if (step % 2000 === 0 || step === 19_999) {
        const sorted = [...model.keys()].sort();
        expect([...m.entries()].map(([x]) => x)).toEqual(sorted);
        expect(m.size).toBe(sorted.length);
        const after = key();
        const before = key();
        const want = sorted.filter((x) => x > after && x < before);
        const got: string[] = [];
        m.forRange(after, before, (x, v) => {
          expect(v).toBe(model.get(x));
          got.push(x);
          return true;
        });
        expect(got).toEqual(want);
        const c = m.cursor(after, before);
        const viaCursor: string[] = [];
        for (; c.key !== null; c.next()) viaCursor.push(c.key);
        expect(viaCursor).toEqual(want);
      }
    }
    const built = SortedMap.fromSorted([...model.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
    expect([...built.entries()]).toEqual([...m.entries()]);
  });
});

describe('SortedMap.append', () => {
  it(`keeps keys sorted when most come ascending and some do not (seed ${SEED})`, () => {
    const r = rng(SEED);
    const m = new SortedMap<number>();
    const model = new Map<string, number>();
    let next = 0;
    for (let step = 0; step < 5000; step++) {
      // Mostly the next key up; sometimes one below (a change behind the read position) or a repeat.
      const k =
        r() < 0.8
          ? `k${(next++).toString().padStart(6, '0')}`
          : `k${Math.floor(r() * (next + 1))
              .toString()
              .padStart(6, '0')}x`;
      m.append(k, step);
      model.set(k, step);
    }
    const sorted = [...model.entries()].sort(([a], [b]) => (a < b ? -1 : 1));
    expect([...m.entries()]).toEqual(sorted);
    expect(m.size).toBe(model.size);
    expect(m.firstAfter(sorted[100]![0], '\uffff')).toBe(sorted[101]![0]);
  });
});

describe('RevisionView', () => {
  it(`answers as of its revision while the registry changes (seed ${SEED})`, async () => {
    const r = rng(SEED);
    const node = await InMemoryNodeApi.create({ historySize: 100_000 });
    const index = InstanceIndex.acquire(node.registry);
    try {
      const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
      const services = ['a', 'b', 'c', 'c-d'];
      const ids = Array.from({ length: 60 }, (_, i) => `i${i}`);
      /** The whole registry, sorted, at each revision. */
      const states = new Map<number, Instance[]>();
      const record = () => states.set(node.registry.revision, node.registry.dump().instances.slice());
      const views: RevisionView[] = [];
      record();
      for (let step = 0; step < 1500; step++) {
        const ns = pick(['prod', 'test']);
        const service = pick(services);
        const id = pick(ids);
        const roll = r();
        let command: Command;
        if (roll < 0.5)
          command = {
            type: 'register',
            namespace: ns,
            service,
            id,
            address: '10.0.0.1',
            port: 1 + Math.floor(r() * 100),
            cluster: pick(['x', 'y', 'vip']),
            enabled: r() > 0.2,
          } as Command;
        else if (roll < 0.75) command = { type: 'unregister', namespace: ns, service, id } as Command;
        else
          command = {
            type: 'setHealth',
            term: 1,
            namespace: ns,
            service,
            id,
            health: pick(['healthy', 'subhealthy', 'down'] as const),
          } as Command;
        node.apply(command);
        record();
        if (step % 50 === 0) views.push(RevisionView.current(index));
        if (step % 100 === 0) {
          const older = Math.max(index.floor, node.registry.revision - Math.floor(r() * 200));
          const v = RevisionView.at(index, older);
          if (v !== 'compacted') views.push(v);
        }
      }
      expect(views.length).toBeGreaterThan(20);
      for (const v of views) {
        const want = states.get(v.revision)!;
        const got: Instance[] = [];
        v.scan(null, '\uffff', (k, i) => {
          expect(k).toBe(instanceSortKey(i));
          got.push(i);
          return true;
        });
        const byKey = (a: Instance, b: Instance) => (instanceSortKey(a) < instanceSortKey(b) ? -1 : 1);
        expect(got).toEqual([...want].sort(byKey));
        // A range from the middle, as a later page reads it.
        const middle = want[Math.floor(want.length / 2)];
        const from = middle === undefined ? 'prod' : instanceSortKey(middle);
        const part: Instance[] = [];
        v.scan(from, rangeEnd('prod\0'), (_k, i) => {
          part.push(i);
          return true;
        });
        expect(part).toEqual(
          [...want].sort(byKey).filter((i) => instanceSortKey(i) > from && instanceSortKey(i) < rangeEnd('prod\0')),
        );
        // Service summaries as of the view: counts and the revision of each service's last change.
        const summaries: string[] = [];
        v.scanServices(null, '\uffff', (_k, s) => {
          summaries.push(
            `${s.namespace}/${s.service} ${total(s.counts)} ${JSON.stringify(healthSummary(s.counts))} ${s.revision}`,
          );
          return true;
        });
        const expected = new Map<string, Instance[]>();
        for (const i of want)
          expected.set(`${i.namespace}/${i.service}`, [...(expected.get(`${i.namespace}/${i.service}`) ?? []), i]);
        const wantSummaries = [...expected.entries()]
          .sort(([a], [b]) => (a.replace('/', '\0') < b.replace('/', '\0') ? -1 : 1))
          .map(([key, list]) => {
            const h = { healthy: 0, subhealthy: 0, suspect: 0, down: 0, disabled: 0 };
            for (const i of list) {
              if (i.enabled) h[i.health]++;
              else h.disabled++;
            }
            return `${key} ${list.length} ${JSON.stringify(h)} ${lastChange(states, v.revision, key)}`;
          });
        expect(summaries).toEqual(wantSummaries);
        v.close();
      }
      expect(index.openViews).toBe(0);
    } finally {
      index.release();
    }
  });
});

/** The revision at or before `at` where the service's instances last differed from the revision before. */
function lastChange(states: Map<number, Instance[]>, at: number, key: string): number {
  const of = (rev: number) =>
    JSON.stringify((states.get(rev) ?? []).filter((i) => `${i.namespace}/${i.service}` === key));
  for (let rev = at; rev > 0; rev--) if (of(rev) !== of(rev - 1)) return rev;
  return 0;
}

/** Registers prod/{service}/{id} in `cluster` on `node`. */
function registerIn(node: InMemoryNodeApi) {
  return (service: string, id: string, cluster: string) =>
    node.apply({
      type: 'register',
      namespace: 'prod',
      service,
      id,
      address: '10.0.0.1',
      port: 80,
      cluster,
    } as Command);
}

describe('InstanceIndex', () => {
  it('builds its sorted instances on first use, from the registry as it is then, and keeps them current after', async () => {
    const node = await InMemoryNodeApi.create();
    const register = registerIn(node);
    for (let k = 0; k < 30; k++) register(`s${k % 3}`, `i${k}`, k % 2 === 0 ? 'x' : 'y');
    const index = InstanceIndex.acquire(node.registry);
    try {
      const sorted = () =>
        node.registry
          .dump()
          .instances.map((i) => instanceSortKey(i))
          .sort();
      const keys = () => [...index.instances.entries()].map(([k]) => k);
      // Changes before the first reader: the counts follow them, the sorted map is not built yet.
      register('s0', 'i0', 'y');
      node.apply({ type: 'unregister', namespace: 'prod', service: 's1', id: 'i1' } as Command);
      register('s9', 'new', 'x');
      expect(total(index.namespaceCounts(undefined))).toBe(30);
      expect(keys()).toEqual(sorted());
      // Once built, kept current.
      register('s1', 'i4', 'x');
      node.apply({ type: 'unregister', namespace: 'prod', service: 's2', id: 'i2' } as Command);
      expect(keys()).toEqual(sorted());
      expect(index.instances.size).toBe(29);
    } finally {
      index.release();
    }
  });
});

describe('InstanceIndex, sorted in the background', () => {
  it('builds its sorted instances in slices after the rest, taking in the changes made between them', async () => {
    const node = await InMemoryNodeApi.create();
    const register = registerIn(node);
    for (let k = 0; k < 40_000; k++) register(`s${k % 40}`, `i${k}`, k % 2 === 0 ? 'x' : 'y');
    // No delay, short slices: the build spans many turns (api-listing-index-build has the special cases).
    const index = InstanceIndex.acquire(node.registry, { sortDelayMs: 0, sortSliceMs: 1, sortChunk: 256 });
    try {
      const r = rng(SEED);
      let changesDuringBuild = 0;
      const giveUp = performance.now() + 30_000;
      // Until it is built: a change every turn, to services read already and not yet, new
      // ones, moves between clusters and removals.
      while (!index.sorted) {
        const k = Math.floor(r() * 50_000);
        const service = `s${Math.floor(r() * 45)}`;
        if (index.building) changesDuringBuild++;
        if (r() < 0.3) node.apply({ type: 'unregister', namespace: 'prod', service, id: `i${k}` } as Command);
        else register(service, `i${k}`, r() < 0.5 ? 'x' : 'y');
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (performance.now() > giveUp) throw new Error('the background build did not finish in 30 s');
      }
      expect(changesDuringBuild).toBeGreaterThan(10);
      const sorted = node.registry
        .dump()
        .instances.map((i) => instanceSortKey(i))
        .sort();
      expect([...index.instances.entries()].map(([k]) => k)).toEqual(sorted);
    } finally {
      index.release();
    }
  });
});
