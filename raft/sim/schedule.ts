/**
 * Fault schedules: plain data that fast-check generates and the simulator replays.
 * A failing schedule prints as JSON, so it can be pasted into a regression test.
 */
import type { NodeId } from '../messages.js';
import type { Simulator } from './simulator.js';

export type SimAction =
  | { readonly type: 'wait'; readonly ms: number }
  | { readonly type: 'propose'; readonly count: number }
  | { readonly type: 'proposeOn'; readonly node: number }
  | { readonly type: 'read'; readonly node: number }
  | { readonly type: 'crash'; readonly node: number }
  | { readonly type: 'crashLeader' }
  | { readonly type: 'restart'; readonly node: number }
  | { readonly type: 'pause'; readonly node: number }
  | { readonly type: 'resume'; readonly node: number }
  | { readonly type: 'partition'; readonly split: number }
  | { readonly type: 'isolate'; readonly node: number }
  | { readonly type: 'cutOneWay'; readonly from: number; readonly to: number }
  | { readonly type: 'unreliable'; readonly loss: number; readonly duplicate: number; readonly maxDelay: number }
  | { readonly type: 'heal' }
  | { readonly type: 'transfer'; readonly node: number }
  | { readonly type: 'addLearner'; readonly node: number }
  | { readonly type: 'promote'; readonly node: number }
  | { readonly type: 'remove'; readonly node: number }
  /** MIT 6.5840's Figure 8 churn: propose, let it half-replicate, crash the leader, restart someone. */
  | { readonly type: 'figure8'; readonly rounds: number };

function pick(sim: Simulator, i: number): NodeId {
  const ids = [...sim.nodes.keys()];
  return ids[i % ids.length]!;
}

export function applyAction(sim: Simulator, a: SimAction): void {
  switch (a.type) {
    case 'wait':
      sim.runFor(a.ms);
      return;
    case 'propose':
      for (let i = 0; i < a.count; i++) sim.propose();
      return;
    case 'proposeOn':
      sim.propose(pick(sim, a.node));
      return;
    case 'read':
      sim.read(pick(sim, a.node));
      return;
    case 'crash':
      sim.crash(pick(sim, a.node));
      return;
    case 'crashLeader': {
      const l = sim.leader();
      if (l) sim.crash(l.id);
      return;
    }
    case 'restart':
      sim.restart(pick(sim, a.node));
      return;
    case 'pause':
      sim.nodes.get(pick(sim, a.node))?.pause();
      return;
    case 'resume':
      sim.nodes.get(pick(sim, a.node))?.resume();
      return;
    case 'partition': {
      const ids = [...sim.nodes.keys()];
      const k = 1 + (a.split % (ids.length - 1));
      sim.network.partition([ids.slice(0, k), ids.slice(k)]);
      return;
    }
    case 'isolate': {
      const id = pick(sim, a.node);
      sim.network.partition([[id], [...sim.nodes.keys()].filter((x) => x !== id)]);
      return;
    }
    case 'cutOneWay':
      sim.network.cutOneWay(pick(sim, a.from), pick(sim, a.to));
      return;
    case 'unreliable':
      sim.setLinkFaults({ minDelay: 1, maxDelay: a.maxDelay, loss: a.loss, duplicate: a.duplicate });
      return;
    case 'heal':
      sim.network.heal();
      return;
    case 'transfer':
      sim.transfer(pick(sim, a.node));
      return;
    case 'addLearner':
      sim.confChange({ type: 'addLearner', node: pick(sim, a.node) });
      return;
    case 'promote':
      sim.confChange({ type: 'addVoter', node: pick(sim, a.node) });
      return;
    case 'remove':
      sim.confChange({ type: 'removeNode', node: pick(sim, a.node) });
      return;
    case 'figure8':
      figure8(sim, a.rounds);
      return;
  }
}

function figure8(sim: Simulator, rounds: number): void {
  const ids = [...sim.nodes.keys()];
  const r = sim.random;
  for (let i = 0; i < rounds; i++) {
    const leader = sim.leader();
    if (leader) sim.propose(leader.id);
    // Mostly very short waits, so an entry often reaches only some followers.
    sim.runFor(r.int(2) === 0 ? 1 + r.int(3) : 1 + r.int(20));
    const l = sim.leader();
    if (l && r.int(2) === 0) sim.crash(l.id);
    if (r.int(2) === 0) sim.restart(ids[r.int(ids.length)]!);
  }
}

/** Replays a schedule, then heals and checks liveness. Throws InvariantViolation on a breach. */
export function runSchedule(sim: Simulator, actions: readonly SimAction[]): void {
  // Let the cluster elect its first leader before the faults start.
  sim.runUntil(() => sim.leader() !== null, 10_000);
  for (const a of actions) applyAction(sim, a);
  sim.runFor(50);
  sim.checkLogMatching();
  sim.checkLiveness();
}
