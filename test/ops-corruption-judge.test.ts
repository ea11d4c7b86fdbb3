/**
 * The corruption check's verdicts (src/ops/corruption-check.ts, judge): only hashes of the
 * same applied index are compared, the majority hash wins, the checker's breaks a tie; and
 * the checker's rounds while members hash at different indexes.
 */
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/log/index.js';
import { CorruptionChecker, type HashAnswer, judge } from '../src/ops/corruption-check.js';

const ok = (id: string, index: number, hash: string): HashAnswer => ({ id, ok: true, value: { index, hash, keys: 3 } });
const verdicts = (answers: HashAnswer[], self = 'n1') =>
  judge(self, 10, answers, 0).members.map((m) => [m.id, m.verdict]);

describe('judge', () => {
  it('finds every member ok when all hashes at the index agree', () => {
    expect(verdicts([ok('n1', 10, 'a'), ok('n2', 10, 'a'), ok('n3', 10, 'a')])).toEqual([
      ['n1', 'ok'],
      ['n2', 'ok'],
      ['n3', 'ok'],
    ]);
  });

  it('names the member whose hash differs from the majority, the checker included', () => {
    const r = judge('n1', 10, [ok('n1', 10, 'a'), ok('n2', 10, 'b'), ok('n3', 10, 'a')], 0);
    expect(r.corrupt).toBe(true);
    expect(r.members.map((m) => [m.id, m.verdict])).toEqual([
      ['n1', 'ok'],
      ['n2', 'corrupt'],
      ['n3', 'ok'],
    ]);
    expect(r.members[1]!.detail).toContain('n1, n3 have a');
    expect(verdicts([ok('n1', 10, 'x'), ok('n2', 10, 'a'), ok('n3', 10, 'a')])).toEqual([
      ['n1', 'corrupt'],
      ['n2', 'ok'],
      ['n3', 'ok'],
    ]);
  });

  it("breaks a tie with the checker's hash", () => {
    expect(verdicts([ok('n1', 10, 'a'), ok('n2', 10, 'b')])).toEqual([
      ['n1', 'ok'],
      ['n2', 'corrupt'],
    ]);
  });

  it('never compares hashes of different applied indexes: a member alone at its index is skipped', () => {
    const r = judge('n1', 10, [ok('n1', 10, 'a'), ok('n2', 10, 'a'), ok('n3', 12, 'zzz')], 0);
    expect(r.corrupt).toBe(false);
    expect(r.members.map((m) => [m.id, m.verdict])).toEqual([
      ['n1', 'ok'],
      ['n2', 'ok'],
      ['n3', 'skipped'],
    ]);
  });

  it('reports a member that did not answer as unreachable', () => {
    expect(verdicts([ok('n1', 10, 'a'), ok('n2', 10, 'a'), { id: 'n3', ok: false, error: 'timeout' }])).toEqual([
      ['n1', 'ok'],
      ['n2', 'ok'],
      ['n3', 'unreachable'],
    ]);
  });
});

describe('CorruptionChecker', () => {
  const deps = (hashAt: (member: string, round: number) => { index: number; hash: string }) => {
    let round = 0;
    const told: string[] = [];
    const checker = new CorruptionChecker({
      id: 'n1',
      log: createLogger({ level: 'silent' }),
      now: () => 0,
      monotonicNow: () => 0,
      members: () => ['n1', 'n2', 'n3'],
      appliedIndex: () => {
        round++;
        return 10 * round;
      },
      selfHash: async () => ({ ...hashAt('n1', round), keys: 1 }),
      askHash: async (peer) => ({ ...hashAt(peer, round), keys: 1 }),
      tellCorrupt: (peer) => told.push(peer),
    });
    return { checker, told, rounds: () => round };
  };

  it('makes another round while a member hashed at another index, and judges the round where they meet', async () => {
    const t = deps((member, round) => ({ index: round === 1 && member === 'n3' ? 11 : 10 * round, hash: `h${round}` }));
    const report = await t.checker.run(1000);
    expect(t.rounds()).toBe(2);
    expect(report.members.map((m) => [m.id, m.verdict])).toEqual([
      ['n1', 'ok'],
      ['n2', 'ok'],
      ['n3', 'ok'],
    ]);
  });

  it('gives up after three rounds, leaving the member skipped, and tells a corrupt one', async () => {
    const moving = deps((member, round) => ({ index: member === 'n3' ? 10 * round + 1 : 10 * round, hash: 'h' }));
    expect((await moving.checker.run(1000)).members.find((m) => m.id === 'n3')?.verdict).toBe('skipped');
    expect(moving.rounds()).toBe(3);
    const bad = deps((member, round) => ({ index: 10 * round, hash: member === 'n2' ? 'x' : 'h' }));
    const report = await bad.checker.run(1000);
    expect(report.corrupt).toBe(true);
    expect(bad.told).toEqual(['n2']);
    expect(bad.checker.corruptMembers()).toEqual([{ id: 'n2', detail: expect.stringContaining('n1, n3') }]);
    expect(bad.checker.selfCorruption).toBeNull();
  });

  it('keeps to its deadline in monotonic time when the wall clock steps back between rounds', async () => {
    let wall = Date.UTC(2026, 0, 1);
    let monotonic = 0;
    let round = 0;
    const timeouts: number[] = [];
    const checker = new CorruptionChecker({
      id: 'n1',
      log: createLogger({ level: 'silent' }),
      now: () => wall,
      monotonicNow: () => monotonic,
      members: () => ['n1', 'n2', 'n3'],
      appliedIndex: () => 10 * ++round,
      selfHash: async (index) => ({ index, hash: 'h', keys: 1 }),
      askHash: async (peer, index, timeoutMs) => {
        timeouts.push(timeoutMs);
        // Round 1 takes 300 ms, during which the wall clock steps back ten minutes (NTP);
        // n3 answers at another index, so a second round follows.
        if (round === 1 && peer === 'n3') {
          monotonic += 300;
          wall += 300 - 600_000;
          return { index: index + 1, hash: 'h', keys: 1 };
        }
        return { index, hash: 'h', keys: 1 };
      },
      tellCorrupt: () => undefined,
    });
    const report = await checker.run(1000);
    expect(round).toBe(2);
    expect(report.members.every((m) => m.verdict === 'ok')).toBe(true);
    // The second round gets what is left of the second, not ten minutes more.
    expect(timeouts).toEqual([1000, 1000, 700, 700]);
    expect(report.at).toBe(wall);
  });
});
