/**
 * Raft safety under arbitrary fault schedules, checked after every simulated event:
 * election safety, log matching, state machine safety, leader completeness, durability
 * of acknowledged writes, linearizable ReadIndex; then liveness after healing.
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { scheduleArb } from '../raft/sim/arbitraries.js';
import { runSchedule, Simulator } from '../raft/sim/index.js';

const FIXED_SEED = 20261123;
const envSeed = process.env.SEED ? Number(process.env.SEED) : undefined;
const runs = Number(process.env.SIM_RUNS ?? 1000);

function property() {
  return fc.property(scheduleArb, ({ simSeed, voters, compactEvery, maxMessageBytes, actions }) => {
    const sim = new Simulator({
      seed: simSeed,
      nodes: ['n1', 'n2', 'n3', 'n4', 'n5'],
      voters,
      compactEvery,
      maxMessageBytes,
    });
    runSchedule(sim, actions);
  });
}

function check(seed: number, numRuns: number): void {
  const out = fc.check(property(), { seed, numRuns, endOnFailure: false });
  if (out.failed) {
    throw new Error(
      `simulation failed (seed ${seed}, path ${out.counterexamplePath}): ${String(out.errorInstance)}\n` +
        `counterexample: ${JSON.stringify(out.counterexample)}\n` +
        `replay: SEED=${seed} npx vitest run test/raft-sim-properties.test.ts`,
    );
  }
}

describe('Raft safety in the deterministic simulator', () => {
  it(`holds for a fixed seed range (${runs} schedules)`, () => {
    check(envSeed ?? FIXED_SEED, runs);
  }, 240_000);

  it('holds for a few fresh seeds', () => {
    const seed = envSeed ?? Date.now() % 0x7fffffff;
    check(seed, 20);
  }, 120_000);
});
