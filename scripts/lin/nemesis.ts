/**
 * The nemesis: plays a fault schedule against a LocalCluster while the workload runs, logs
 * every fault (with the recorder's clock, so faults line up with the history), and heals
 * the cluster afterwards: resume, restart, clear the fault hook, remove an added member.
 */
import type { ClusterView } from './cluster-view.js';
import { clearFaults, findLeader, isolate, poll, reachable, setFaults } from './cluster-control.js';
import type { FaultKind, PlannedFault } from './faults.js';
import { request, sleep } from './http.js';

export interface FaultRecord {
  readonly kind: FaultKind;
  /** The node it hit (for transfer: the new leader; for membership: the added node). */
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
    const rec: FaultRecord = { kind: f.kind, node, wasLeader: node !== null && node === leader, start: this.now(), end: null };
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
              const r = await request('POST', `${this.view.url(via)}/v1/cluster/leader`, { to: target }, {}, 6000).catch((err: Error) => ({ status: 0, body: err.message }));
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
      }
    } catch (err) {
      rec.error = (err as Error).message;
    }
    rec.end = this.now();
    return rec;
  }

  private choose(f: PlannedFault, leader: string | null): string | null {
    if (f.kind === 'transfer' || f.kind === 'membership' || f.kind === 'crash') return null;
    const members = this.view.members;
    const followers = members.filter((m) => m !== leader);
    const pool = f.target === 'leader' && leader !== null ? [leader] : f.target === 'follower' && leader !== null ? followers : members;
    return pool[Math.floor(f.r * pool.length)] ?? members[0]!;
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
    const c = this.view.cluster;
    const n = await c.addNode();
    rec.node = n.id;
    const added = await poll(async () => {
      const via = reachable(this.view)[0];
      if (!via) return undefined;
      const r = await request('POST', `${this.view.url(via)}/v1/cluster/members`, { id: n.id, peerAddress: `127.0.0.1:${n.peerPort}` }, {}, 6000);
      if (r.status === 201) return true;
      // An earlier attempt may have gone through after its answer was lost.
      if ((await this.memberIds(via))?.includes(n.id)) return true;
      if (r.status >= 500 || r.body?.error?.code === 'CONF_CHANGE_PENDING') return undefined;
      throw new Error(`adding ${n.id}: ${r.status} ${JSON.stringify(r.body)}`);
    }, 15_000, 200);
    if (added === null) {
      this.problems.push({ step: `add ${n.id}`, message: 'the cluster did not accept the new member within 15 s' });
      await c.kill(n.id);
      return;
    }
    this.view.addMember(n.id);
    rec.detail = 'added as learner';
    await hold(holdMs);
    await this.removeMember(n.id);
    rec.detail = 'added as learner, then removed';
  }

  /** Removes a member added by a membership fault and stops its process. */
  async removeMember(id: string): Promise<void> {
    const removed = await poll(async () => {
      const via = reachable(this.view).find((m) => m !== id) ?? reachable(this.view)[0];
      if (!via) return undefined;
      const r = await request('DELETE', `${this.view.url(via)}/v1/cluster/members/${id}`, undefined, {}, 6000);
      if (r.status === 200 || r.body?.error?.code === 'NOT_MEMBER') return true;
      const ids = await this.memberIds(via);
      if (ids !== null && !ids.includes(id)) return true;
      if (r.status >= 500 || r.body?.error?.code === 'CONF_CHANGE_PENDING') return undefined;
      throw new Error(`removing ${id}: ${r.status} ${JSON.stringify(r.body)}`);
    }, 20_000, 200);
    if (removed === null) {
      this.problems.push({ step: `remove ${id}`, message: 'the cluster did not remove the member within 20 s' });
      return;
    }
    this.view.removeMember(id);
    await this.view.cluster.kill(id);
  }

  /** The membership as node `via` sees it, or null. */
  private async memberIds(via: string): Promise<string[] | null> {
    const r = await request('GET', `${this.view.url(via)}/v1/cluster`, undefined, {}, 1000).catch(() => null);
    return r?.status === 200 ? (r.body.members as { id: string }[]).map((m) => m.id) : null;
  }

  /** Undoes everything: resume stopped nodes, restart killed ones, clear the fault hook, remove added members. */
  async heal(): Promise<void> {
    const c = this.view.cluster;
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
    const original = new Set(this.view.originalMembers);
    for (const id of [...this.view.members]) if (!original.has(id)) await this.removeMember(id);
  }

  /** Faults injected, by kind. */
  counts(): Record<FaultKind, number> {
    const out = { kill: 0, pause: 0, isolate: 0, oneway: 0, transfer: 0, membership: 0, crash: 0 };
    for (const r of this.log) out[r.kind]++;
    return out;
  }
}
