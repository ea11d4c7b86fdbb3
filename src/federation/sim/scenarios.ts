/**
 * The measurements of docs/federation.md, as functions over a FederationWorld: how fast a
 * new datacenter becomes known everywhere, how many false verdicts packet loss causes, what
 * the gossip costs, how fast a dead datacenter is declared unreachable and a revived one
 * alive, and how a partition heals. scripts/sim-federation.ts runs them at scale; the vitest
 * test runs a small seeded instance with assertions.
 */
import { SeededRandom } from '../../../raft/rand.js';
import type { GossipTuning } from '../config.js';
import { FederationWorld, mix, type VerdictCounts } from './world.js';

export interface FederationSimOptions {
  readonly seed: number;
  readonly datacenters: number;
  readonly nodesPerDatacenter: number;
  readonly loss: number;
  /** Rounds of steady state over which false verdicts and bytes are measured. */
  readonly steadyRounds: number;
  /** Give up on any one wait after this many rounds. */
  readonly maxWaitRounds?: number;
  readonly tuning?: Partial<GossipTuning>;
  /** Skip the partition phase (the most expensive). */
  readonly skipPartition?: boolean;
}

export interface FederationSimReport {
  readonly seed: number;
  readonly datacenters: number;
  readonly nodesPerDatacenter: number;
  readonly loss: number;
  /** Rounds until every node knew every datacenter, each datacenter having joined through one node of another. */
  readonly bootstrapRounds: number | null;
  /** A new datacenter joins through one node: rounds until every node knows it, and sees it alive. */
  readonly newDatacenterKnownRounds: number | null;
  readonly newDatacenterAliveRounds: number | null;
  readonly steadyRounds: number;
  readonly bytesPerNodePerRound: number;
  readonly messagesPerNodePerRound: number;
  /** Over the steady-state window only. */
  readonly steady: VerdictCounts;
  /** Every node of one datacenter killed: rounds until every other node sees it unreachable. */
  readonly killedUnreachableRounds: number | null;
  /** The same datacenter restarted from durable knowledge: rounds until every node sees it alive. */
  readonly revivedAliveRounds: number | null;
  /** Datacenters split in two halves: rounds until each side sees the other unreachable, then alive after healing. */
  readonly partitionDetectedRounds: number | null;
  readonly partitionHealedRounds: number | null;
  /** Over the whole run. */
  readonly total: VerdictCounts;
  readonly falseVerdictLog: readonly string[];
  readonly virtualRounds: number;
}

export function dcName(i: number): string {
  return `dc-${String(i).padStart(2, '0')}`;
}

export function runFederationSim(o: FederationSimOptions): FederationSimReport {
  const world = new FederationWorld({ seed: o.seed, loss: o.loss, ...(o.tuning ? { tuning: o.tuning } : {}) });
  const topology = new SeededRandom(mix(o.seed, 'topology', 0));
  const round = world.roundMs;
  const maxWait = (o.maxWaitRounds ?? 200) * round;
  const rounds = (ms: number | null): number | null => (ms === null ? null : Number((ms / round).toFixed(1)));
  const randomAddress = (): string => {
    const names = [...world.datacenters.keys()];
    const nodes = world.datacenters.get(names[topology.int(names.length)]!)!;
    return nodes[topology.int(nodes.length)]!.address;
  };

  // 1. Bootstrap: each datacenter joins through one node of one that already exists.
  for (let i = 1; i <= o.datacenters; i++)
    world.addDatacenter(dcName(i), o.nodesPerDatacenter, i === 1 ? [] : [randomAddress()]);
  const bootstrapRounds = rounds(world.runUntil(() => world.fullyJoined(), maxWait));
  world.runFor(10 * round);

  // 2. Steady state under loss: false verdicts and cost.
  const before = { ...world.counts };
  const bytesBefore = world.totalBytes();
  const messagesBefore = [...world.nodes.values()].reduce((s, n) => s + n.messagesSent, 0);
  world.runFor(o.steadyRounds * round);
  const nodeRounds = world.upNodes().length * o.steadyRounds;
  const steady = diff(world.counts, before);
  const bytesPerNodePerRound = Math.round((world.totalBytes() - bytesBefore) / nodeRounds);
  const messagesPerNodePerRound = Number(
    (([...world.nodes.values()].reduce((s, n) => s + n.messagesSent, 0) - messagesBefore) / nodeRounds).toFixed(1),
  );

  // 3. A new datacenter joins through a single node of a random one.
  const fresh = 'dc-new';
  world.addDatacenter(fresh, o.nodesPerDatacenter, [randomAddress()]);
  const t0 = world.now;
  const newDatacenterKnownRounds = rounds(world.runUntil(() => world.allSee(fresh, 'known'), maxWait));
  const aliveAt = world.runUntil(() => world.allSee(fresh, 'alive'), maxWait);
  const newDatacenterAliveRounds = rounds(aliveAt === null ? null : world.now - t0);

  // 4. Kill every node of one datacenter, wait, bring it back with only its durable knowledge.
  const victim = dcName(1 + topology.int(o.datacenters));
  world.killDatacenter(victim);
  const killedUnreachableRounds = rounds(world.runUntil(() => world.allSee(victim, 'unreachable'), maxWait));
  world.runFor(20 * round);
  world.restartDatacenter(victim);
  const revivedAliveRounds = rounds(world.runUntil(() => world.allSee(victim, 'alive'), maxWait));

  // 5. Partition the datacenters into two halves, then heal.
  let partitionDetectedRounds: number | null = null;
  let partitionHealedRounds: number | null = null;
  if (!o.skipPartition) {
    const names = [...world.datacenters.keys()];
    const left = names.filter((_, i) => i % 2 === 0);
    const right = names.filter((_, i) => i % 2 === 1);
    world.runFor(10 * round);
    world.partition(left, right);
    const sidesSeeEachOtherDown = (): boolean =>
      world
        .upNodes()
        .every((n) =>
          (left.includes(n.datacenter) ? right : left).every((dc) => n.engine!.route(dc)?.status === 'unreachable'),
        );
    partitionDetectedRounds = rounds(world.runUntil(sidesSeeEachOtherDown, maxWait));
    world.runFor(10 * round);
    world.heal();
    partitionHealedRounds = rounds(world.runUntil(() => names.every((dc) => world.allSee(dc, 'alive')), maxWait));
  }

  return {
    seed: o.seed,
    datacenters: o.datacenters,
    nodesPerDatacenter: o.nodesPerDatacenter,
    loss: o.loss,
    bootstrapRounds,
    newDatacenterKnownRounds,
    newDatacenterAliveRounds,
    steadyRounds: o.steadyRounds,
    bytesPerNodePerRound,
    messagesPerNodePerRound,
    steady,
    killedUnreachableRounds,
    revivedAliveRounds,
    partitionDetectedRounds,
    partitionHealedRounds,
    total: { ...world.counts },
    falseVerdictLog: world.falseVerdictLog,
    virtualRounds: Math.round(world.now / round),
  };
}

function diff(a: VerdictCounts, b: VerdictCounts): VerdictCounts {
  return {
    falseMemberVerdicts: a.falseMemberVerdicts - b.falseMemberVerdicts,
    falseDatacenterVerdicts: a.falseDatacenterVerdicts - b.falseDatacenterVerdicts,
    falseSuspicions: a.falseSuspicions - b.falseSuspicions,
    refutations: a.refutations - b.refutations,
  };
}
