/**
 * `--force-new-cluster` in the core (raft/standalone.ts): the plan that rewrites a
 * survivor's membership through its log, alone and driven through a RawNode restart.
 */
import { describe, expect, it } from 'vitest';
import { bootstrapEntries, bootstrapHardState } from '../raft/bootstrap.js';
import { decodeConfChange, encodeConfChange } from '../raft/confchange.js';
import type { ConfState, Entry, HardState } from '../raft/messages.js';
import { SeededRandom } from '../raft/rand.js';
import { RawNode } from '../raft/rawnode.js';
import { standalonePlan } from '../raft/standalone.js';
import { MemoryStorage } from '../raft/storage.js';
import { enc } from './helpers/raft-network.js';

const THREE: ConfState = { voters: ['a', 'b', 'c'], learners: [] };
const normal = (index: number, term: number): Entry => ({ index, term, type: 'normal', data: enc(`w${index}`) });
const hs = (term: number, commit: number): HardState => ({ term, vote: 'a', commit });

describe('standalonePlan', () => {
  it('removes every other member after the last entry, in the current term, and commits the whole log', () => {
    const plan = standalonePlan({
      self: 'b',
      appliedConf: { voters: ['a', 'b', 'c'], learners: ['d'] },
      unapplied: [],
      lastIndex: 40,
      hardState: hs(7, 38),
    });
    expect(plan.entries.map((e) => [e.index, e.term, e.type, decodeConfChange(e.data)])).toEqual([
      [41, 7, 'conf', { type: 'removeNode', node: 'a' }],
      [42, 7, 'conf', { type: 'removeNode', node: 'c' }],
      [43, 7, 'conf', { type: 'removeNode', node: 'd' }],
    ]);
    // The uncommitted tail (39, 40) is kept and committed with the rest: see standalone.ts.
    expect(plan.hardState).toEqual({ term: 7, vote: 'a', commit: 43 });
    expect(plan.conf).toEqual({ voters: ['b'], learners: [] });
    expect(plan.before).toEqual({ voters: ['a', 'b', 'c'], learners: ['d'] });
  });

  it('counts the conf changes not yet applied, and makes a learner survivor a voter before removing the rest', () => {
    const unapplied: Entry[] = [
      normal(11, 3),
      { index: 12, term: 3, type: 'conf', data: encodeConfChange({ type: 'addLearner', node: 'e' }) },
      { index: 13, term: 3, type: 'conf', data: encodeConfChange({ type: 'removeNode', node: 'c' }) },
    ];
    const plan = standalonePlan({ self: 'e', appliedConf: THREE, unapplied, lastIndex: 13, hardState: hs(3, 10) });
    expect(plan.before).toEqual({ voters: ['a', 'b'], learners: ['e'] });
    expect(plan.entries.map((e) => decodeConfChange(e.data))).toEqual([
      { type: 'addVoter', node: 'e' },
      { type: 'removeNode', node: 'a' },
      { type: 'removeNode', node: 'b' },
    ]);
    expect(plan.hardState.commit).toBe(16);
  });

  it('is a no-op for a node that already is a one-member cluster with its log committed', () => {
    const plan = standalonePlan({
      self: 'a',
      appliedConf: { voters: ['a'], learners: [] },
      unapplied: [],
      lastIndex: 9,
      hardState: hs(2, 9),
    });
    expect(plan.entries).toEqual([]);
    expect(plan.hardState).toEqual(hs(2, 9));
  });
});

describe('a survivor restarted with the plan', () => {
  it('applies the whole log, then the removals, and elects itself alone', () => {
    // Node b of {a, b, c}: bootstrap (1-3), writes 4-8 in term 2 of which it knows 4-6 committed.
    const storage = new MemoryStorage({ voters: [], learners: [] });
    storage.append(bootstrapEntries(['a', 'b', 'c']));
    storage.setHardState(bootstrapHardState(['a', 'b', 'c']));
    storage.append([4, 5, 6, 7, 8].map((i) => normal(i, 2)));
    storage.setHardState({ term: 2, vote: 'a', commit: 6 });
    const applied = 3;
    const plan = standalonePlan({
      self: 'b',
      appliedConf: THREE,
      unapplied: [4, 5, 6, 7, 8].map((i) => normal(i, 2)),
      lastIndex: storage.lastIndex(),
      hardState: storage.initialState().hardState,
    });
    storage.append(plan.entries);
    storage.setHardState(plan.hardState);

    const rn = new RawNode({
      id: 'b',
      storage,
      electionTick: 10,
      heartbeatTick: 1,
      random: new SeededRandom(7),
      applied,
      confState: THREE,
    });
    let conf = THREE;
    const appliedData: string[] = [];
    const drive = (): void => {
      while (rn.hasReady()) {
        const rd = rn.ready();
        if (rd.entries.length > 0) storage.append(rd.entries);
        if (rd.hardState) storage.setHardState(rd.hardState);
        let last = 0;
        for (const e of rd.committedEntries) {
          if (e.type === 'conf') conf = rn.applyConfChange(decodeConfChange(e.data));
          else if (e.data.length > 0) appliedData.push(new TextDecoder().decode(e.data));
          last = e.index;
        }
        rn.advance(rd);
        if (last > 0) rn.appliedTo(last);
      }
    };
    drive();
    // Everything the survivor held is applied, the uncommitted tail (7, 8) included.
    expect(appliedData).toEqual(['w4', 'w5', 'w6', 'w7', 'w8']);
    expect(conf).toEqual({ voters: ['b'], learners: [] });
    for (let i = 0; i < 40 && rn.status().softState.role !== 'leader'; i++) {
      rn.tick();
      drive();
    }
    expect(rn.status().softState.role).toBe('leader');
    expect(rn.status().hardState.term).toBeGreaterThan(2);
    const proposed = rn.propose(enc('after'));
    expect(proposed.ok).toBe(true);
    drive();
    expect(appliedData.at(-1)).toBe('after');
  });
});
