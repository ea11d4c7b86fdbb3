/**
 * The gossip layer at small scale in the deterministic simulator (virtual time, seeded lossy
 * network): 8 datacenters × 3 nodes under 10 % packet loss; and a datacenter whose nodes
 * learn their own cluster piecemeal, as real hosts do. The full-scale run (50 × 5) is
 * `npm run sim:federation`; its figures are in docs/federation.md.
 *
 * Replay a failure with the seed it prints: FEDSIM_SEED=<seed> npx vitest run test/federation-gossip-sim.test.ts
 */
import { describe, expect, it } from 'vitest';

import { SeededRandom } from '../raft/rand.js';
import type { DatacenterSnapshot, LocalView, MemberInfo } from '../src/federation/index.js';
import { FederationWorld, mix, runFederationSim, type SimNode } from '../src/federation/sim/index.js';

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

describe('a datacenter whose nodes learn their members one by one (issue 18)', () => {
  const replay18 = `seed ${seed}; replay: FEDSIM_SEED=${seed} npx vitest run test/federation-gossip-sim.test.ts -t "one by one"`;

  it('every node ends with its newest description at one version, also after a node restarts', () => {
    const world = new FederationWorld({ seed, loss: 0.1 });
    const pick = new SeededRandom(mix(seed, 'views', 0));
    const round = world.roundMs;
    world.addDatacenter('dc-a', 3);
    world.addDatacenter('dc-c', 3, ['http://dc-a-n1:7300']);
    const b = world.addDatacenter('dc-b', 3, ['http://dc-a-n1:7300']);
    const view = (members: readonly SimNode[], leader: string | null, term: number): LocalView => ({
      members: members.map((n): MemberInfo => ({ id: n.id, address: n.address, role: 'voter' })),
      leader,
      revision: 1,
      term,
    });
    /** dc-b as every up node sees it: its members, leader and version. */
    const seen = () =>
      world.upNodes().map((n) => ({
        node: n.address,
        ...pickDescription(n.engine!.snapshot().datacenters.find((d) => d.name === 'dc-b')),
      }));
    const everyoneSees = (leader: string) => (): boolean => {
      const all = seen();
      return (
        all.every((s) => s.ids === 'n1,n2,n3' && s.leader === leader) && new Set(all.map((s) => s.version)).size === 1
      );
    };
    const why = () => `${replay18}\n${JSON.stringify(seen(), null, 1)}`;

    // Right after start a node's host knows only itself and no leader, and gossips that; as in
    // the 9-process test, every node of dc-b joins through dc-a's first node.
    for (const n of b) {
      world.setView(n, view([n], null, 1));
      n.engine!.join('http://dc-a-n1:7300');
    }
    world.runFor(3 * round);
    // Then, at seeded times within two rounds, each learns the leader and its peers one by one
    // (their status reports arriving): nothing is written, the Raft term stands still.
    for (const n of b) {
      const known = [n];
      const changes = [view(known, 'n1', 1)];
      for (const peer of b) {
        if (peer === n) continue;
        known.push(peer);
        changes.push(view(known, 'n1', 1));
      }
      const times = changes.map(() => pick.int(2 * round)).sort((x, y) => x - y);
      for (const [i, v] of changes.entries()) world.queue.schedule(times[i]! + i, () => world.setView(n, v));
    }
    expect(world.runUntil(everyoneSees('n1'), 20 * round), why()).not.toBeNull();

    // n1 of dc-b is killed and restarts knowing only itself, then its peers again; then n2 is
    // elected (term 2) and every node of dc-b learns it.
    world.kill(b[0]!);
    world.runFor(2 * round);
    world.setView(b[0]!, view([b[0]!], null, 2));
    world.start(b[0]!);
    world.runFor(round / 2);
    for (const n of b) world.setView(n, view(b, 'n2', 2));
    expect(world.runUntil(everyoneSees('n2'), 20 * round), why()).not.toBeNull();
  });
});

function pickDescription(d: DatacenterSnapshot | undefined): { ids: string; leader: string | null; version: string } {
  return {
    ids: d?.members.map((m) => m.id).join() ?? '',
    leader: d?.leader ?? null,
    version: d ? `${d.version.term}.${d.version.index}` : '',
  };
}
