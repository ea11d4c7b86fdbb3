/** Pickers and cluster routing, alone: no I/O. */
import { describe, expect, it } from 'vitest';
import {
  createPicker,
  LeastOutstandingPicker,
  RandomPicker,
  RoundRobinPicker,
  route,
  WeightedPicker,
} from '../src/client/index.js';
import { inst, seeded } from './client-helpers.js';

const three = [inst('a'), inst('b'), inst('c')];

describe('round-robin', () => {
  it('takes each instance in turn', () => {
    const p = new RoundRobinPicker();
    expect(Array.from({ length: 6 }, () => p.pick(three)!.instance.id)).toEqual(['a', 'b', 'c', 'a', 'b', 'c']);
  });

  it('skips weight 0 and gives nothing when every weight is 0', () => {
    const p = new RoundRobinPicker();
    const list = [inst('a'), inst('b', { weight: 0 }), inst('c')];
    expect(Array.from({ length: 4 }, () => p.pick(list)!.instance.id)).toEqual(['a', 'c', 'a', 'c']);
    expect(p.pick([inst('z', { weight: 0 })])).toBeUndefined();
    expect(p.pick([])).toBeUndefined();
  });
});

describe('random', () => {
  it('is uniform enough and replays with the same seed', () => {
    const run = (seed: number) => {
      const p = new RandomPicker(seeded(seed));
      return Array.from({ length: 3000 }, () => p.pick(three)!.instance.id);
    };
    const picks = run(42);
    expect(run(42)).toEqual(picks);
    for (const id of ['a', 'b', 'c']) {
      const n = picks.filter((x) => x === id).length;
      expect(n).toBeGreaterThan(850);
      expect(n).toBeLessThan(1150);
    }
  });
});

describe('weighted', () => {
  it('picks in proportion to weight, spread evenly (smooth weighted round-robin)', () => {
    const p = new WeightedPicker();
    const list = [inst('a', { weight: 500 }), inst('b', { weight: 100 }), inst('c', { weight: 100 })];
    const seq = Array.from({ length: 7 }, () => p.pick(list)!.instance.id);
    expect(seq).toEqual(['a', 'a', 'b', 'a', 'c', 'a', 'a']);
    const many = Array.from({ length: 700 }, () => p.pick(list)!.instance.id);
    expect(many.filter((x) => x === 'a').length).toBe(500);
    expect(many.filter((x) => x === 'b').length).toBe(100);
  });

  it('never picks weight 0 and adapts when the list changes', () => {
    const p = new WeightedPicker();
    const list = [inst('a', { weight: 1 }), inst('b', { weight: 0 }), inst('c', { weight: 1 })];
    const seq = Array.from({ length: 10 }, () => p.pick(list)!.instance.id);
    expect(seq).not.toContain('b');
    const after = Array.from(
      { length: 4 },
      () => p.pick([inst('c', { weight: 1 }), inst('d', { weight: 1 })])!.instance.id,
    );
    expect(new Set(after)).toEqual(new Set(['c', 'd']));
  });
});

describe('least-outstanding', () => {
  it('sends to the instance with the fewest calls in flight, round-robin among ties', () => {
    const p = new LeastOutstandingPicker();
    const picks = [p.pick(three)!, p.pick(three)!, p.pick(three)!];
    expect(picks.map((k) => k.instance.id).sort()).toEqual(['a', 'b', 'c']);
    const byId = (id: string) => picks.find((k) => k.instance.id === id)!;
    byId('b').done();
    expect(p.pick(three)!.instance.id).toBe('b'); // the only one with 0 in flight
    byId('a').done();
    byId('a').done(); // idempotent: does not go negative
    expect(p.outstanding('a')).toBe(0);
    expect(p.outstanding('b')).toBe(1);
    expect(p.pick(three)!.instance.id).toBe('a');
  });

  it('balances a steady load where one instance is slow', () => {
    const p = new LeastOutstandingPicker();
    const inflight: { id: string; done: () => void }[] = [];
    const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (let t = 0; t < 300; t++) {
      const k = p.pick(three)!;
      counts[k.instance.id]!++;
      inflight.push({ id: k.instance.id, done: k.done });
      // a and b finish at once; c is slow and holds its calls for a while.
      for (const f of inflight.filter((x) => x.id !== 'c')) f.done();
      if (t % 10 === 9) for (const f of inflight.filter((x) => x.id === 'c')) f.done();
      inflight.splice(0, inflight.length, ...inflight.filter((x) => x.id === 'c' && t % 10 !== 9));
    }
    expect(counts.c).toBeLessThan(counts.a! / 3);
  });
});

describe('createPicker', () => {
  it('builds each picker by name', () => {
    for (const name of ['round-robin', 'random', 'weighted', 'least-outstanding'] as const)
      expect(createPicker(name, seeded(1)).name).toBe(name);
  });
});

describe('cluster routing', () => {
  const list = [
    inst('v1', { cluster: 'vip' }),
    inst('z1a', { cluster: 'z1' }),
    inst('z2a', { cluster: 'z2' }),
    inst('d1'),
  ];
  const ids = (xs: readonly { id: string }[]) => xs.map((x) => x.id);

  it('sends VIP consumers only to the vip cluster, even when it is empty', () => {
    expect(ids(route(list, { consumerCluster: 'vip' }))).toEqual(['v1']);
    expect(
      route(
        list.filter((i) => i.cluster !== 'vip'),
        { consumerCluster: 'vip' },
      ),
    ).toEqual([]);
  });

  it('never sends ordinary consumers to vip', () => {
    expect(ids(route(list, {}))).toEqual(['z1a', 'z2a', 'd1']);
    expect(ids(route(list, { consumerCluster: 'z1' }))).toEqual(['z1a']);
  });

  it('prefers the consumer zone and falls back to the others (unless told not to)', () => {
    const noZ1 = list.filter((i) => i.cluster !== 'z1');
    expect(ids(route(noZ1, { consumerCluster: 'z1' }))).toEqual(['z2a', 'd1']);
    expect(route(noZ1, { consumerCluster: 'z1', fallback: false })).toEqual([]);
  });

  it('takes other reserved clusters', () => {
    expect(ids(route(list, { reservedClusters: ['z2'] }))).toEqual(['v1', 'z1a', 'd1']);
    expect(ids(route(list, { reservedClusters: [] }))).toEqual(['v1', 'z1a', 'z2a', 'd1']);
  });
});
