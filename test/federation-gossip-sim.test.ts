/**
 * The gossip layer at small scale in the deterministic simulator (virtual time, seeded lossy
 * network): 8 datacenters × 3 nodes under 10 % packet loss. The full-scale run (50 × 5) is
 * `npm run sim:federation`; its figures are in docs/federation.md.
 *
 * Replay a failure with the seed it prints: FEDSIM_SEED=<seed> npx vitest run test/federation-gossip-sim.test.ts
 */
import { describe, expect, it } from 'vitest';

import { runFederationSim } from '../src/federation/sim/index.js';

const seed = Number(process.env.FEDSIM_SEED ?? 20260118);
const replay = `seed ${seed}; replay: FEDSIM_SEED=${seed} npx vitest run test/federation-gossip-sim.test.ts`;

describe('federation gossip simulation (seeded)', () => {
  it('8 datacenters × 3 nodes at 10 % loss: converges, no false verdicts, detects a dead datacenter and its return', () => {
    const r = runFederationSim({
      seed,
      datacenters: 8,
      nodesPerDatacenter: 3,
      loss: 0.1,
      steadyRounds: 40,
      maxWaitRounds: 80,
    });
    const why = `${replay}\n${JSON.stringify(r, null, 1)}`;
    expect(r.bootstrapRounds, why).not.toBeNull();
    expect(r.bootstrapRounds!, why).toBeLessThanOrEqual(15);
    expect(r.newDatacenterKnownRounds, why).not.toBeNull();
    expect(r.newDatacenterKnownRounds!, why).toBeLessThanOrEqual(10);
    expect(r.total.falseMemberVerdicts, why).toBe(0);
    expect(r.total.falseDatacenterVerdicts, why).toBe(0);
    // 24 members: min suspicion timeout 4 × log10(24) ≈ 5.5 rounds; a few rounds to be suspected by all.
    expect(r.killedUnreachableRounds, why).not.toBeNull();
    expect(r.killedUnreachableRounds!, why).toBeLessThanOrEqual(20);
    expect(r.revivedAliveRounds, why).not.toBeNull();
    expect(r.revivedAliveRounds!, why).toBeLessThanOrEqual(10);
    expect(r.partitionDetectedRounds, why).not.toBeNull();
    expect(r.partitionHealedRounds, why).not.toBeNull();
    expect(r.partitionHealedRounds!, why).toBeLessThanOrEqual(10);
    expect(r.bytesPerNodePerRound, why).toBeGreaterThan(0);
  });

  it('is a pure function of its seed', () => {
    const options = { seed, datacenters: 4, nodesPerDatacenter: 2, loss: 0.2, steadyRounds: 20, skipPartition: true };
    expect(runFederationSim(options), replay).toEqual(runFederationSim(options));
  });
});
