/**
 * The nemesis: plays a fault schedule against a LocalCluster while the workload runs, logs
 * every fault (with the recorder's clock, so faults line up with the history), and heals
 * the cluster afterwards: resume, restart, heal the proxies on the peer links, clear the
 * fault hook, remove an added member, bring the cluster back to its size if a rejoin did
 * not finish.
 */
import { rm } from 'node:fs/promises';
import type { PeerNet } from '../peer-net.js';
import { clearFaults, findLeader, isolate, leadersSeen, reachable, setFaults } from './cluster-control.js';
import type { ClusterView } from './cluster-view.js';
import { FAULT_KINDS, type FaultKind, type NetsplitPlan, netsplitPlan, type PlannedFault } from './faults.js';
import { request, sleep } from './http.js';
import { requestAdd, requestRemove, waitVoter } from './membership.js';

/** How long a removed node keeps running before the nemesis stops it (the node itself stops taking part after two election timeouts). */
const REMOVED_LINGER_MS = 1000;

export interface FaultRecord {
  readonly kind: FaultKind;
  /** The node it hit (for transfer: the new leader; for membership: the added node; for rejoin: the removed leader). */
  node: string | null;
  /** Whether the node was the leader when the fault started. */
  wasLeader: boolean;
  /** Recorder time (ns) when injected and when undone. */
  start: number;
  end: number | null;
  /** Set when a step failed (the run reports it; heal tries again). */
  error?: string;
  detail?: string;
}

/** Restart and membership steps that did not work: the cluster did not recover as expected. */
export interface NemesisProblem {
  readonly step: string;
  readonly message: string;
}

export class Nemesis {
  readonly log: FaultRecord[] = [];
  readonly problems: NemesisProblem[] = [];

  constructor(
    private readonly view: ClusterView,
    /** The history's clock (HistoryRecorder.now). */
    private readonly now: () => number,
  ) {}

  /** Plays `schedule` in order until it ends or `signal` aborts (a fault in progress is still undone). */
  async run(schedule: readonly PlannedFault[], signal: AbortSignal): Promise<void> {
    for (const f of schedule) {
      await sleep(f.delayMs, signal);
      if (signal.aborted) return;
      await this.inject(f, signal);
    }
  }

  /**
   * Injects one fault, holds it for its duration (cut short by `signal`) and undoes it.
   * `onInjected` runs once the fault is in place.
   */
  async inject(f: PlannedFault, signal: AbortSignal, onInjected?: (rec: FaultRecord) => void): Promise<FaultRecord> {
    const leader = await findLeader(this.view, 3000);
    const node = f.node ?? this.choose(f, leader);
    const rec: FaultRecord = {
      kind: f.kind,
      node,
      wasLeader: node !== null && node === leader,
      start: this.now(),
      end: null,
    };
    this.log.push(rec);
    const hold = async (ms: number) => {
      onInjected?.(rec);
      await sleep(ms, signal);
    };
    const c = this.view.cluster;
    try {
      switch (f.kind) {
        case 'kill':
          await c.kill(node!);
          await hold(f.durationMs);
          await this.restart(node!);
          break;
        case 'pause':
          c.pause(node!);
          await hold(f.durationMs);
          c.resume(node!);
          break;
        case 'isolate':
          if (!(await isolate(this.view, node!))) rec.error = 'not every node took the fault lists';
          await hold(f.durationMs);
          if (!(await clearFaults(this.view))) rec.error = 'could not clear the fault lists';
          break;
        case 'oneway': {
          const others = this.view.members.filter((m) => m !== node);
          const outgoing = f.r < 0.5;
          rec.detail = outgoing ? 'drops its outgoing peer messages' : 'drops its incoming peer messages';
          await setFaults(this.view, node!, outgoing ? others : [], outgoing ? [] : others);
          await hold(f.durationMs);
          if (!(await clearFaults(this.view))) rec.error = 'could not clear the fault lists';
          break;
        }
        case 'transfer': {
          const to = this.view.members.filter((m) => m !== leader);
          const target = to[Math.floor(f.r * to.length)] ?? null;
          rec.node = target;
          if (target !== null) {
            const via = reachable(this.view)[0];
            if (via) {
              const r = await request(
                'POST',
                `${this.view.url(via)}/v1/cluster/leader`,
                { to: target },
                {},
                6000,
              ).catch((err: Error) => ({ status: 0, body: err.message }));
              rec.detail = `answer ${r.status}${r.status === 200 ? '' : ` ${JSON.stringify(r.body).slice(0, 200)}`}`;
            }
          }
          await hold(f.durationMs);
          break;
        }
        case 'membership':
          await this.membership(rec, f.durationMs, hold);
          break;
        case 'crash': {
          const all = [...this.view.members];
          await Promise.all(all.map((id) => c.kill(id)));
          await hold(f.durationMs);
          const restarted = await Promise.allSettled(all.map((id) => this.restart(id)));
          if (restarted.some((r) => r.status === 'rejected')) rec.error = 'a node did not restart';
          break;
        }
        case 'rejoin':
          await this.rejoin(rec, leader, f.durationMs, hold);
          break;
        case 'netsplit': {
          const net = c.net;
          if (net === null) throw new Error('netsplit needs peer links through proxies (LocalClusterOptions.proxied)');
          rec.detail = this.netsplit(net, node!, f.netsplit ?? netsplitPlan(f.r));
          await hold(f.durationMs);
          // Whom each member follows at the end of the hold: did the split move leadership?
          rec.detail += `; leaders seen before healing: ${await leadersSeen(this.view)}`;
          net.heal();
          break;
        }
      }
    } catch (err) {
      rec.error = (err as Error).message;
    }
    rec.end = this.now();
    return rec;
  }

  private choose(f: PlannedFault, leader: string | null): string | null {
    if (f.kind === 'transfer' || f.kind === 'membership' || f.kind === 'crash') return null;
    if (f.kind === 'rejoin') return leader;
    const members = this.view.members;
    const followers = members.filter((m) => m !== leader);
    const pool =
      f.target === 'leader' && leader !== null
        ? [leader]
        : f.target === 'follower' && leader !== null
          ? followers
          : members;
    return pool[Math.floor(f.r * pool.length)] ?? members[0]!;
  }

  /** Applies a netsplit around `node` through the proxies; says what it did. */
  private netsplit(net: PeerNet, node: string, plan: NetsplitPlan): string {
    const others = this.view.members.filter((m) => m !== node);
    const how = plan.mode === 'reset' ? 'reset' : 'blackholed';
    switch (plan.shape) {
      case 'isolate':
        net.isolate(node, others, plan.mode);
        return `${node} <-> ${others.join(', ')} cut both ways (${how})`;
      case 'outgoing':
        for (const o of others) net.cut(node, o, plan.mode);
        return `${node} -> ${others.join(', ')} cut (${how}); the other way flows`;
      case 'incoming':
        for (const o of others) net.cut(o, node, plan.mode);
        return `${others.join(', ')} -> ${node} cut (${how}); the other way flows`;
      case 'bridge': {
        const peer = others[Math.floor(plan.peer * others.length)];
        if (peer === undefined) return 'no other member to cut off';
        net.isolate(node, [peer], plan.mode);
        const rest = others.filter((o) => o !== peer);
        return `${node} <-> ${peer} cut both ways (${how}); both still reach ${rest.join(', ') || 'nobody'}`;
      }
      case 'delay':
        for (const o of others) {
          net.delay(node, o, plan.delayMs, plan.jitterMs);
          net.delay(o, node, plan.delayMs, plan.jitterMs);
        }
        return `every link to and from ${node} delayed ${plan.delayMs} ms (+ up to ${plan.jitterMs} ms)`;
    }
  }

  private async restart(id: string): Promise<void> {
    try {
      await this.view.cluster.restart(id);
    } catch (err) {
      this.problems.push({ step: `restart ${id}`, message: (err as Error).message.slice(0, 2000) });
      throw err;
    }
  }

  private async membership(rec: FaultRecord, holdMs: number, hold: (ms: number) => Promise<void>): Promise<void> {
    const added = await this.addMember(false);
    if (added === null) return;
    const id = added.id;
    rec.node = id;
    rec.detail = 'added as learner';
    await hold(holdMs);
    await this.removeMember(id);
    rec.detail = 'added as learner, then removed';
  }

  /**
   * Removes the leader through the admin API, waits for another leader, stops the removed
   * node and deletes its data, holds, then brings it back the safe way (as etcd's runtime
   * reconfiguration guide says): under a new id, with an empty data directory, added as a
   * learner and promoted. Never under its old id or with its old data: an old copy of the
   * data forgets the votes it cast and the entries it acknowledged since, and an empty
   * directory under the old id forgets them all, while the others still count on them. A new
   * id starts with nothing anyone counts on.
   */
  private async rejoin(
    rec: FaultRecord,
    leader: string | null,
    holdMs: number,
    hold: (ms: number) => Promise<void>,
  ): Promise<void> {
    if (leader === null) throw new Error('no leader to remove');
    const c = this.view.cluster;
    const t0 = Date.now();
    if (!(await requestRemove(this.view, leader))) {
      this.problems.push({
        step: `remove ${leader} (leader)`,
        message: 'the cluster did not remove its leader within 20 s',
      });
      throw new Error(`could not remove ${leader}`);
    }
    // Clients stop picking it; it keeps running for a moment (it hands over, then lingers),
    // and the straggler reads it meanwhile.
    this.view.removeMember(leader);
    this.view.lingering.add(leader);
    const next = await findLeader(this.view, 10_000);
    rec.detail = `removed ${leader} (leader); ${next === null ? 'no other leader within 10 s' : `${next} leads ${Date.now() - t0} ms after the request`}`;
    await sleep(REMOVED_LINGER_MS);
    this.view.lingering.delete(leader);
    await c.kill(leader);
    await rm(c.node(leader).dataDir, { recursive: true, force: true });
    if (next === null && (await findLeader(this.view, 10_000)) === null) {
      this.problems.push({
        step: `rejoin ${leader}`,
        message: 'no leader among the remaining members within 20 s of removing the leader',
      });
    }
    await hold(holdMs);
    const back = await this.addMember(true);
    rec.detail +=
      back === null
        ? '; not brought back'
        : `; back as ${back.id} (new id, empty data), ${back.voter ? 'voter' : 'not promoted'}`;
  }

  /**
   * Starts a fresh node (`--join`, empty data, the next unused id), adds it as a learner and,
   * for a member that replaces a removed one (`base`), waits until the leader promotes it,
   * so later faults again meet a full cluster of voters. Null when it was not added (a
   * problem is logged, as is a member that was not promoted).
   */
  private async addMember(base: boolean): Promise<{ id: string; voter: boolean } | null> {
    const c = this.view.cluster;
    let n;
    try {
      n = await c.addNode();
    } catch (err) {
      this.problems.push({ step: 'start a new node', message: (err as Error).message.slice(0, 2000) });
      return null;
    }
    if (!(await requestAdd(this.view, n))) {
      this.problems.push({ step: `add ${n.id}`, message: 'the cluster did not accept the new member within 15 s' });
      await c.kill(n.id);
      return null;
    }
    this.view.addMember(n.id, base);
    const voter = base && (await waitVoter(this.view, n.id)) !== null;
    if (base && !voter)
      this.problems.push({
        step: `promote ${n.id}`,
        message: 'the leader did not promote the new member to voter within 20 s',
      });
    return { id: n.id, voter };
  }

  /** Removes a member added by a membership fault and stops its process. */
  async removeMember(id: string): Promise<void> {
    if (!(await requestRemove(this.view, id))) {
      this.problems.push({ step: `remove ${id}`, message: 'the cluster did not remove the member within 20 s' });
      return;
    }
    this.view.removeMember(id);
    await this.view.cluster.kill(id);
  }

  /** Undoes everything: resume stopped nodes, restart killed ones, heal the proxies, clear the fault hook, remove added members. */
  async heal(): Promise<void> {
    const c = this.view.cluster;
    c.net?.heal();
    for (const id of this.view.members) if (c.node(id).paused) c.resume(id);
    for (const id of this.view.members) {
      if (c.node(id).proc === null) {
        try {
          await this.restart(id);
        } catch {
          /* recorded in problems */
        }
      }
    }
    await clearFaults(this.view);
    const base = new Set(this.view.baseMembers);
    for (const id of [...this.view.members]) if (!base.has(id)) await this.removeMember(id);
    // A rejoin that removed the leader but could not bring a node back: try again.
    while (this.view.baseMembers.length < this.view.size) {
      if ((await this.addMember(true)) === null) break;
    }
  }

  /** Faults injected, by kind. */
  counts(): Record<FaultKind, number> {
    const out = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
    for (const r of this.log) out[r.kind]++;
    return out;
  }
}
