import { describe, expect, it } from 'vitest';

import {
  compareDescriptors,
  DEFAULT_TUNING,
  type Liveness,
  makeDescriptor,
  mergeLiveness,
  suspicionBounds,
  suspicionTimeoutMs,
} from '../src/federation/index.js';

const alive = (incarnation: number): Liveness => ({ incarnation, status: 'alive', suspectors: [] });
const suspect = (incarnation: number, ...suspectors: string[]): Liveness => ({
  incarnation,
  status: 'suspect',
  suspectors,
});
const unreachable = (incarnation: number): Liveness => ({ incarnation, status: 'unreachable', suspectors: [] });

describe('mergeLiveness (SWIM rules)', () => {
  it('a newer incarnation wins whatever the statuses', () => {
    expect(mergeLiveness(suspect(3, 'a/1'), alive(4), 3)).toEqual(alive(4));
    expect(mergeLiveness(unreachable(3), alive(4), 3)).toEqual(alive(4));
    expect(mergeLiveness(alive(3), suspect(4, 'a/1'), 3)).toEqual(suspect(4, 'a/1'));
  });

  it('an older incarnation changes nothing (same object back)', () => {
    const local = alive(5);
    expect(mergeLiveness(local, unreachable(4), 3)).toBe(local);
    expect(mergeLiveness(local, suspect(4, 'a/1'), 3)).toBe(local);
  });

  it('at equal incarnation the accusation wins: alive < suspect < unreachable', () => {
    expect(mergeLiveness(alive(2), suspect(2, 'b/1'), 3)).toEqual(suspect(2, 'b/1'));
    const s = suspect(2, 'b/1');
    expect(mergeLiveness(s, alive(2), 3)).toBe(s);
    const u = unreachable(2);
    expect(mergeLiveness(u, suspect(2, 'b/1'), 3)).toBe(u);
    expect(mergeLiveness(u, alive(2), 3)).toBe(u);
  });

  it("another node's verdict is only a suspicion here, so it does not spread as a verdict", () => {
    expect(mergeLiveness(alive(2), unreachable(2), 3)).toEqual(suspect(2));
    expect(mergeLiveness(alive(1), unreachable(2), 3)).toEqual(suspect(2));
    const s = suspect(2, 'b/1');
    expect(mergeLiveness(s, unreachable(2), 3)).toBe(s);
  });

  it('suspicions at one incarnation combine their suspectors, capped to the smallest ones', () => {
    expect(mergeLiveness(suspect(1, 'c/1'), suspect(1, 'a/1'), 3)).toEqual(suspect(1, 'a/1', 'c/1'));
    expect(mergeLiveness(suspect(1, 'b/1', 'c/1'), suspect(1, 'a/1', 'd/1'), 3)).toEqual(
      suspect(1, 'a/1', 'b/1', 'c/1'),
    );
    const s = suspect(1, 'a/1', 'b/1');
    expect(mergeLiveness(s, suspect(1, 'b/1'), 3)).toBe(s);
  });

  it('is order-independent: any merge order of the same news ends in the same belief', () => {
    const news = [alive(1), suspect(1, 'x/1'), suspect(1, 'y/1'), unreachable(1), alive(2), suspect(2, 'z/1')];
    const orders = [news, [...news].reverse(), [news[3]!, news[0]!, news[5]!, news[1]!, news[4]!, news[2]!]];
    const results = orders.map((o) => o.reduce((acc, n) => mergeLiveness(acc, n, 3), alive(0)));
    expect(results[1]).toEqual(results[0]);
    expect(results[2]).toEqual(results[0]);
    expect(results[0]).toEqual(suspect(2, 'z/1'));
  });
});

describe('compareDescriptors (per-datacenter versioning)', () => {
  const m = (id: string) => ({ id, address: `http://${id}:7300`, role: 'voter' as const });

  it('a newer term wins, then a newer configuration index', () => {
    const old = makeDescriptor({ term: 2, index: 50 }, 'n1', [m('n1'), m('n2')]);
    const newTerm = makeDescriptor({ term: 3, index: 10 }, 'n2', [m('n1'), m('n2')]);
    const newConf = makeDescriptor({ term: 2, index: 60 }, 'n1', [m('n1'), m('n2'), m('n3')]);
    expect(compareDescriptors(newTerm, old)).toBeGreaterThan(0);
    expect(compareDescriptors(newConf, old)).toBeGreaterThan(0);
    expect(compareDescriptors(old, newConf)).toBeLessThan(0);
  });

  it('at one version, knowing the leader wins, then the content decides the same way everywhere', () => {
    const noLeader = makeDescriptor({ term: 4, index: 9 }, null, [m('n1'), m('n2')]);
    const leader = makeDescriptor({ term: 4, index: 9 }, 'n2', [m('n2'), m('n1')]);
    expect(compareDescriptors(leader, noLeader)).toBeGreaterThan(0);
    const a = makeDescriptor({ term: 4, index: 9 }, 'n1', [m('n1'), m('n2')]);
    const b = makeDescriptor({ term: 4, index: 9 }, 'n2', [m('n1'), m('n2')]);
    expect(Math.sign(compareDescriptors(a, b))).toBe(-Math.sign(compareDescriptors(b, a)));
    expect(compareDescriptors(a, b)).not.toBe(0);
    expect(compareDescriptors(a, makeDescriptor({ term: 4, index: 9 }, 'n1', [m('n2'), m('n1')]))).toBe(0);
  });
});

describe('suspicion timeout (Lifeguard)', () => {
  it('starts at the maximum and falls to the minimum as independent confirmations arrive', () => {
    const bounds = suspicionBounds(250, DEFAULT_TUNING);
    expect(bounds.confirmationsWanted).toBe(2);
    expect(bounds.minMs).toBe(Math.floor(4 * Math.log10(250) * 1000));
    expect(suspicionTimeoutMs(0, bounds)).toBe(bounds.maxMs);
    expect(suspicionTimeoutMs(1, bounds)).toBeLessThan(bounds.maxMs);
    expect(suspicionTimeoutMs(2, bounds)).toBe(bounds.minMs);
    expect(suspicionTimeoutMs(9, bounds)).toBe(bounds.minMs);
  });

  it('with too few members to confirm, goes straight to the minimum', () => {
    const bounds = suspicionBounds(3, DEFAULT_TUNING);
    expect(bounds.confirmationsWanted).toBe(0);
    expect(suspicionTimeoutMs(0, bounds)).toBe(bounds.minMs);
  });
});
