/**
 * The corruption check's verdicts (src/ops/corruption-check.ts, judge): only hashes of the
 * same applied index are compared, the majority hash wins, the checker's breaks a tie.
 */
import { describe, expect, it } from 'vitest';
import { type HashAnswer, judge } from '../src/ops/corruption-check.js';

const ok = (id: string, index: number, hash: string): HashAnswer => ({ id, ok: true, value: { index, hash, keys: 3 } });
const verdicts = (answers: HashAnswer[], self = 'n1') => judge(self, 10, answers, 0).members.map((m) => [m.id, m.verdict]);

describe('judge', () => {
  it('finds every member ok when all hashes at the index agree', () => {
    expect(verdicts([ok('n1', 10, 'a'), ok('n2', 10, 'a'), ok('n3', 10, 'a')])).toEqual([['n1', 'ok'], ['n2', 'ok'], ['n3', 'ok']]);
  });

  it('names the member whose hash differs from the majority, the checker included', () => {
    const r = judge('n1', 10, [ok('n1', 10, 'a'), ok('n2', 10, 'b'), ok('n3', 10, 'a')], 0);
    expect(r.corrupt).toBe(true);
    expect(r.members.map((m) => [m.id, m.verdict])).toEqual([['n1', 'ok'], ['n2', 'corrupt'], ['n3', 'ok']]);
    expect(r.members[1]!.detail).toContain('n1, n3 have a');
    expect(verdicts([ok('n1', 10, 'x'), ok('n2', 10, 'a'), ok('n3', 10, 'a')])).toEqual([['n1', 'corrupt'], ['n2', 'ok'], ['n3', 'ok']]);
  });

  it("breaks a tie with the checker's hash", () => {
    expect(verdicts([ok('n1', 10, 'a'), ok('n2', 10, 'b')])).toEqual([['n1', 'ok'], ['n2', 'corrupt']]);
  });

  it('never compares hashes of different applied indexes: a member alone at its index is skipped', () => {
    const r = judge('n1', 10, [ok('n1', 10, 'a'), ok('n2', 10, 'a'), ok('n3', 12, 'zzz')], 0);
    expect(r.corrupt).toBe(false);
    expect(r.members.map((m) => [m.id, m.verdict])).toEqual([['n1', 'ok'], ['n2', 'ok'], ['n3', 'skipped']]);
  });

  it('reports a member that did not answer as unreachable', () => {
    expect(verdicts([ok('n1', 10, 'a'), ok('n2', 10, 'a'), { id: 'n3', ok: false, error: 'timeout' }])).toEqual([['n1', 'ok'], ['n2', 'ok'], ['n3', 'unreachable']]);
  });
});
