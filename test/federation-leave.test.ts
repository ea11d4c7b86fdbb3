/**
 * A graceful leave (`rollcall federation leave`, FederationEngine.leave): the node tells the
 * others at once, so they stop routing to it without waiting out the failure detector, and
 * a later join with a higher incarnation brings it back. Engines on a hand-driven network
 * and a fake clock.
 */
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../raft/rand.js';
import { FederationEngine, type GossipTuning, type MemberInfo } from '../src/federation/index.js';

const WALL = Date.UTC(2026, 0, 1);
const TUNING: Partial<GossipTuning> = {
  probeIntervalMs: 100,
  probeTimeoutMs: 50,
  syncIntervalMs: 100,
  timestampWindowMs: 10_000,
};

class Net {
  t = 0;
  readonly engines = new Map<string, FederationEngine>();
  readonly queue: { to: string; from: string; bytes: Uint8Array }[] = [];

  add(datacenter: string, id: string, members: MemberInfo[], join: string[] = [], startIncarnation?: number) {
    const address = `${datacenter}-${id}`;
    const engine = new FederationEngine({
      datacenter,
      nodeId: id,
      address,
      secret: 'the-secret',
      clock: { now: () => this.t, wallNow: () => WALL + this.t },
      random: new SeededRandom(this.engines.size + 7),
      send: (to, bytes) => this.queue.push({ to, from: address, bytes }),
      view: { members, leader: members[0]!.id, revision: 1, term: 1 },
      join,
      tuning: TUNING,
      ...(startIncarnation === undefined ? {} : { startIncarnation }),
    });
    this.engines.set(address, engine);
    return engine;
  }

  /** Delivers what is queued, without time passing. */
  pump(): void {
    for (let i = 0; i < 10_000 && this.queue.length > 0; i++) {
      const p = this.queue.shift()!;
      this.engines.get(p.to)?.receive(p.from, p.bytes);
    }
  }

  run(ms: number): void {
    for (const end = this.t + ms; this.t < end; this.t += 10) {
      for (const e of this.engines.values()) e.tick(this.t);
      this.pump();
    }
  }
}

const members = (dc: string, ids: string[]): MemberInfo[] =>
  ids.map((id) => ({ id, address: `${dc}-${id}`, role: 'voter' }));
const statusOf = (e: FederationEngine, dc: string, id: string) =>
  e
    .snapshot()
    .datacenters.find((d) => d.name === dc)
    ?.members.find((m) => m.id === id)?.status;

describe('a graceful leave', () => {
  it('is known to every node at once, not after the suspicion timeout; a join brings it back', () => {
    const net = new Net();
    const a = members('dc-a', ['n1', 'n2']);
    const a1 = net.add('dc-a', 'n1', a);
    net.add('dc-a', 'n2', a);
    const b1 = net.add('dc-b', 'n1', members('dc-b', ['n1']), ['dc-a-n1']);
    net.run(3_000);
    for (const e of net.engines.values()) expect(statusOf(e, 'dc-a', 'n1')).toBe('alive');

    a1.leave();
    net.engines.delete('dc-a-n1'); // the host drops the engine that left
    net.pump(); // no time passes: no probe, no suspicion, only the leave's messages
    for (const e of net.engines.values()) expect(statusOf(e, 'dc-a', 'n1')).toBe('unreachable');
    expect(b1.route('dc-a')!.members.map((m) => m.id)).toEqual(['n2']);
    // Sticky: more rounds (its old incarnation still in others' gossip) do not bring it back.
    net.run(2_000);
    expect(statusOf(b1, 'dc-a', 'n1')).toBe('unreachable');

    // Joined again (the host starts the engine above the stored incarnation): alive everywhere.
    net.add('dc-a', 'n1', a, ['dc-b-n1'], a1.incarnation + 1);
    net.run(3_000);
    for (const e of net.engines.values()) expect(statusOf(e, 'dc-a', 'n1')).toBe('alive');
  });
});
