import { describe, expect, it } from 'vitest';
import { runSchedule, Simulator } from '../raft/sim/index.js';

describe('simulator smoke', () => {
  it('elects a leader and commits writes with a reliable network', () => {
    const sim = new Simulator({ seed: 1, nodes: ['n1', 'n2', 'n3'], voters: 3 });
    expect(sim.runUntil(() => sim.leader() !== null, 5000)).toBe(true);
    for (let i = 0; i < 100; i++) {
      sim.propose();
      sim.read('n2');
      sim.runFor(5);
    }
    sim.runFor(500);
    const st = sim.stats();
    expect(st.acked).toBe(100);
    expect(st.readsServed).toBeGreaterThan(90);
    sim.checkLiveness();
  });

  it('survives a leader crash and a partition', () => {
    const sim = new Simulator({ seed: 2, nodes: ['n1', 'n2', 'n3', 'n4', 'n5'], voters: 5 });
    runSchedule(sim, [
      { type: 'propose', count: 20 },
      { type: 'wait', ms: 100 },
      { type: 'crashLeader' },
      { type: 'propose', count: 5 },
      { type: 'wait', ms: 500 },
      { type: 'propose', count: 20 },
      { type: 'partition', split: 1 },
      { type: 'propose', count: 20 },
      { type: 'wait', ms: 800 },
      { type: 'heal' },
      { type: 'read', node: 3 },
      { type: 'wait', ms: 300 },
      { type: 'addLearner', node: 4 },
    ]);
    const st = sim.stats();
    expect(st.leaderChanges).toBeGreaterThanOrEqual(2); // the crash forced a new election
    expect(st.acked).toBeGreaterThanOrEqual(40); // writes before and after the crash committed
  });
});
