/**
 * The federation engine, node by node, on a hand-driven network and a fake clock: joining,
 * refutation, suspicion → unreachable → alive again, and the messages it must refuse
 * (wrong secret, forged datacenter, replay, stale, misdirected) with nothing changed.
 */
import { describe, expect, it } from 'vitest';

import { SeededRandom } from '../raft/rand.js';
import { decode, encode } from '../src/codec/index.js';
import { FederationEngine, type FederationEvent, type GossipTuning, type MemberInfo } from '../src/federation/index.js';
import { compareVersions } from '../src/federation/merge.js';

const WALL = Date.UTC(2026, 0, 1);
/** Short rounds keep the arithmetic readable: probe every 100 ms, timeout 50 ms. */
const TUNING: Partial<GossipTuning> = {
  probeIntervalMs: 100,
  probeTimeoutMs: 50,
  syncIntervalMs: 100,
  timestampWindowMs: 10_000,
};

interface Packet {
  readonly from: string;
  readonly to: string;
  readonly bytes: Uint8Array;
}

/** Engines on one fake clock; `pump` delivers queued packets (FIFO) unless a side is cut off. */
class Net {
  t = 0;
  readonly clock = { now: () => this.t, wallNow: () => WALL + this.t };
  readonly engines = new Map<string, FederationEngine>();
  readonly events = new Map<string, FederationEvent[]>();
  readonly queue: Packet[] = [];
  readonly delivered: Packet[] = [];
  readonly cutOff = new Set<string>();
  /**
   * Accept that a node refuses a member of its own datacenter its cluster has not told it of
   * yet (forged-datacenter), as a node does until the member's status report arrives.
   */
  ownClusterCatchingUp = false;

  add(
    datacenter: string,
    id: string,
    opts: { members?: MemberInfo[]; join?: string[]; secret?: string; wallSkewMs?: number } = {},
  ): FederationEngine {
    const address = addr(datacenter, id);
    const members = opts.members ?? [{ id, address, role: 'voter' }];
    const skew = opts.wallSkewMs ?? 0;
    const engine = new FederationEngine({
      datacenter,
      nodeId: id,
      address,
      secret: opts.secret ?? 'the-secret',
      clock: { now: this.clock.now, wallNow: () => this.clock.wallNow() + skew },
      random: new SeededRandom(this.engines.size + 1),
      send: (to, bytes) => this.queue.push({ from: address, to, bytes }),
      view: { members, leader: members[0]!.id, revision: 1, term: 1 },
      join: opts.join ?? [],
      tuning: TUNING,
    });
    this.engines.set(address, engine);
    this.events.set(address, []);
    return engine;
  }

  pump(): void {
    for (let i = 0; i < 10_000 && this.queue.length > 0; i++) {
      const p = this.queue.shift()!;
      if (this.cutOff.has(p.from) || this.cutOff.has(p.to)) continue;
      const engine = this.engines.get(p.to);
      if (!engine) continue;
      const r = engine.receive(p.from, p.bytes);
      const sameDatacenter = p.from.split('-n')[0] === p.to.split('-n')[0];
      if (this.ownClusterCatchingUp && sameDatacenter && r.kind === 'refused' && r.reason === 'forged-datacenter')
        continue;
      expect(r.kind, `${p.from} -> ${p.to}`).toBe('accepted');
      this.delivered.push(p);
      this.drain(p.to);
    }
  }

  /** Advances time in 10 ms steps, ticking every engine and delivering at each step. */
  advance(ms: number): void {
    const until = this.t + ms;
    while (this.t < until) {
      this.t += 10;
      for (const [address, e] of this.engines) {
        if (this.cutOff.has(address)) continue;
        e.tick(this.t);
        this.drain(address);
      }
      this.pump();
    }
  }

  private drain(address: string): void {
    this.events.get(address)!.push(...this.engines.get(address)!.drainEvents());
  }
}

function addr(datacenter: string, id: string): string {
  return `http://${datacenter}-${id}:7300`;
}

function status(e: FederationEngine, dc: string, id: string): { status: string; incarnation: number } | undefined {
  const m = e
    .snapshot()
    .datacenters.find((d) => d.name === dc)
    ?.members.find((x) => x.id === id);
  return m && { status: m.status, incarnation: m.incarnation };
}

/** A three-datacenter federation, one node each, joined through dc-a. */
function threeDatacenters(): { net: Net; a: FederationEngine; b: FederationEngine; c: FederationEngine } {
  const net = new Net();
  const a = net.add('dc-a', 'n1');
  const b = net.add('dc-b', 'n1', { join: [addr('dc-a', 'n1')] });
  const c = net.add('dc-c', 'n1', { join: [addr('dc-a', 'n1')] });
  net.advance(1_000);
  return { net, a, b, c };
}

describe('FederationEngine: joining', () => {
  it('a datacenter joined through one seed becomes known to every node, and the knowledge is reported for storage', () => {
    const { net, a, b, c } = threeDatacenters();
    for (const e of [a, b, c]) {
      expect(e.snapshot().datacenters.map((d) => [d.name, d.status])).toEqual([
        ['dc-a', 'alive'],
        ['dc-b', 'alive'],
        ['dc-c', 'alive'],
      ]);
      expect(e.pendingJoins()).toEqual([]);
    }
    // b learnt of c only through a.
    expect(b.knowledge()).toEqual({
      datacenters: [
        { name: 'dc-a', seeds: [addr('dc-a', 'n1')] },
        { name: 'dc-c', seeds: [addr('dc-c', 'n1')] },
      ],
    });
    const reported = net.events.get(addr('dc-b', 'n1'))!.filter((e) => e.kind === 'knowledge-changed');
    expect(reported.at(-1)).toEqual({ kind: 'knowledge-changed', knowledge: b.knowledge() });
    expect(b.datacentersByRtt()[0]).toBe('dc-b');
    expect(b.snapshot().datacenters.find((d) => d.name === 'dc-a')!.rttMs).not.toBeNull();
  });

  it('a restarted node rejoins from its stored knowledge alone', () => {
    const { net, b } = threeDatacenters();
    const knowledge = b.knowledge();
    net.engines.delete(addr('dc-b', 'n1'));
    const restarted = new FederationEngine({
      datacenter: 'dc-b',
      nodeId: 'n1',
      address: addr('dc-b', 'n1'),
      secret: 'the-secret',
      clock: net.clock,
      random: new SeededRandom(99),
      send: (to, bytes) => net.queue.push({ from: addr('dc-b', 'n1'), to, bytes }),
      knowledge,
      tuning: TUNING,
    });
    net.engines.set(addr('dc-b', 'n1'), restarted);
    expect(restarted.snapshot().datacenters.find((d) => d.name === 'dc-c')!.members).toEqual([]);
    net.advance(500);
    expect(restarted.route('dc-c')).toMatchObject({ status: 'alive', members: [{ id: 'n1' }] });
  });
});

/** What `e` holds about `dc`: member ids, leader and version. */
function described(
  e: FederationEngine,
  dc: string,
): { ids: string[]; leader: string | null; version: { term: number; index: number } } {
  const d = e.snapshot().datacenters.find((x) => x.name === dc)!;
  return { ids: d.members.map((m) => m.id), leader: d.leader, version: d.version };
}

describe("FederationEngine: a datacenter's description, newest wins (issue 18)", () => {
  const dcB = (ids: string[]): MemberInfo[] => ids.map((id) => ({ id, address: addr('dc-b', id), role: 'voter' }));

  it('a fuller member list replaces an earlier, smaller one on every node, though the Raft term did not change', () => {
    // As in the 9-process test: every node of dc-b first knows only itself (its peers' status
    // reports have not arrived), gossips that, then learns the others with nothing written.
    const net = new Net();
    net.ownClusterCatchingUp = true;
    const a = net.add('dc-a', 'n1');
    const a2 = net.add('dc-a', 'n2', {
      members: [
        { id: 'n1', address: addr('dc-a', 'n1'), role: 'voter' },
        { id: 'n2', address: addr('dc-a', 'n2'), role: 'voter' },
      ],
    });
    a.setLocalView({
      members: [
        { id: 'n1', address: addr('dc-a', 'n1'), role: 'voter' },
        { id: 'n2', address: addr('dc-a', 'n2'), role: 'voter' },
      ],
      leader: 'n1',
      revision: 1,
      term: 1,
    });
    const b = ['n1', 'n2', 'n3'].map((id) => net.add('dc-b', id, { join: [addr('dc-a', 'n1')] }));
    net.advance(1_000);
    expect(described(a, 'dc-b').ids).toHaveLength(1);
    for (const e of b) e.setLocalView({ members: dcB(['n1', 'n2']), leader: 'n1', revision: 1, term: 1 });
    net.advance(20);
    for (const e of b) e.setLocalView({ members: dcB(['n1', 'n2', 'n3']), leader: 'n1', revision: 1, term: 1 });
    net.advance(1_500);
    const views = [a, a2, ...b].map((e) => described(e, 'dc-b'));
    for (const v of views) expect(v, JSON.stringify(views)).toMatchObject({ ids: ['n1', 'n2', 'n3'], leader: 'n1' });
    // One content, one version everywhere: the digests agree, nothing keeps travelling.
    expect(new Set(views.map((v) => JSON.stringify(v.version))).size, JSON.stringify(views)).toBe(1);
  });

  it('a change wins over every description its node had heard, even when its wall clock is behind', () => {
    const net = new Net();
    net.ownClusterCatchingUp = true;
    const a = net.add('dc-a', 'n1');
    const b1 = net.add('dc-b', 'n1', { members: dcB(['n1', 'n2']), join: [addr('dc-a', 'n1')] });
    // n2's wall clock is 5 s behind: its stamps alone would lose to n1's for 5 s.
    const b2 = net.add('dc-b', 'n2', { members: dcB(['n1', 'n2']), wallSkewMs: -5_000 });
    net.advance(1_000);
    expect(described(a, 'dc-b')).toMatchObject({ ids: ['n1', 'n2'], leader: 'n1' });
    // n2 becomes the leader (n1 does not hear of it yet): n2's view is the newest.
    b2.setLocalView({ members: dcB(['n1', 'n2']), leader: 'n2', revision: 1, term: 2 });
    net.cutOff.add(addr('dc-b', 'n1'));
    net.advance(500);
    expect(described(a, 'dc-b').leader).toBe('n2');
    // n1, with the newer wall clock but an old view, changes nothing by being heard again.
    net.cutOff.clear();
    net.advance(1_000);
    expect(described(a, 'dc-b').leader).toBe('n2');
    expect(described(b1, 'dc-b').leader).toBe('n1'); // its own cluster has not told it yet
    // n1 sees a third member (a change, stamped by n1's clock, 5 s ahead of n2's), and n2,
    // having heard it, changes last: n2's change must win though its clock says it is older.
    b1.setLocalView({ members: dcB(['n1', 'n2', 'n3']), leader: 'n2', revision: 1, term: 2 });
    net.advance(1_000);
    expect(described(a, 'dc-b').ids).toEqual(['n1', 'n2', 'n3']);
    b2.setLocalView({ members: dcB(['n2']), leader: 'n2', revision: 1, term: 2 });
    net.advance(1_000);
    expect(described(a, 'dc-b'), 'n2 left n1 out last').toMatchObject({ ids: ['n2'], leader: 'n2' });
    expect(described(b1, 'dc-b').ids, 'its own cluster decides what n1 itself shows').toEqual(['n1', 'n2', 'n3']);
  });

  it("a restarted node's new description beats the one it published before the restart", () => {
    const net = new Net();
    const a = net.add('dc-a', 'n1');
    net.add('dc-b', 'n1', { members: dcB(['n1', 'n2']), join: [addr('dc-a', 'n1')] });
    net.advance(1_000);
    const before = described(a, 'dc-b');
    expect(before).toMatchObject({ ids: ['n1', 'n2'], leader: 'n1' });
    // Restarted with the same term, knowing less at first (n2 has not reported yet), then n2 leads.
    net.engines.delete(addr('dc-b', 'n1'));
    net.advance(100);
    const restarted = net.add('dc-b', 'n1', { join: [addr('dc-a', 'n1')] });
    net.advance(500);
    restarted.setLocalView({ members: dcB(['n1', 'n2']), leader: 'n2', revision: 1, term: 1 });
    net.advance(1_000);
    expect(described(a, 'dc-b')).toMatchObject({ ids: ['n1', 'n2'], leader: 'n2' });
    expect(compareVersions(described(a, 'dc-b').version, before.version)).toBeGreaterThan(0);
  });
});

describe('FederationEngine: routes for forwarding', () => {
  it('lists live members first, the leader first among them, leaves unreachable ones out, and knows no stranger', () => {
    const net = new Net();
    const a = net.add('dc-a', 'n1');
    const members: MemberInfo[] = ['n2', 'n1', 'n3'].map((id) => ({ id, address: addr('dc-b', id), role: 'voter' }));
    for (const id of ['n1', 'n2', 'n3'])
      net.add('dc-b', id, { members, join: id === 'n1' ? [addr('dc-a', 'n1')] : [] });
    net.advance(1_000);
    expect(a.route('dc-b')!.members.map((m) => m.id)).toEqual(['n2', 'n1', 'n3']);
    expect(a.route('dc-nowhere')).toBeNull();
    // The leader goes quiet: first suspect (kept, after the live ones), then unreachable (left out).
    net.cutOff.add(addr('dc-b', 'n2'));
    net.advance(2_000);
    expect(a.route('dc-b')).toMatchObject({ status: 'alive', members: [{ id: 'n1' }, { id: 'n3' }] });
  });
});

describe('FederationEngine: failure detection', () => {
  it('refutation: a member that hears itself suspected bumps its incarnation and the newer incarnation wins', () => {
    const { net, a, b } = threeDatacenters();
    const before = b.incarnation;
    // Cut b off long enough for a probe of it to fail, but far shorter than the suspicion timeout.
    net.cutOff.add(addr('dc-b', 'n1'));
    net.advance(300);
    expect(status(a, 'dc-b', 'n1')).toEqual({ status: 'suspect', incarnation: before });
    net.cutOff.clear();
    net.advance(500);
    expect(b.incarnation).toBeGreaterThan(before);
    expect(net.events.get(addr('dc-b', 'n1'))).toContainEqual({ kind: 'refuted', incarnation: b.incarnation });
    expect(status(a, 'dc-b', 'n1')).toEqual({ status: 'alive', incarnation: b.incarnation });
    expect(net.events.get(addr('dc-a', 'n1'))!.some((e) => e.kind === 'member-status' && e.to === 'unreachable')).toBe(
      false,
    );
  });

  it('suspect, then unreachable after the suspicion timeout, then alive again when the member comes back', () => {
    const { net, a, c } = threeDatacenters();
    net.cutOff.add(addr('dc-b', 'n1'));
    net.advance(300);
    expect(a.route('dc-b')!.status).toBe('suspect');
    // 3 members: nobody can confirm, so the minimum timeout: 4 × log10(3) → 4 × 1 × 100 ms.
    net.advance(600);
    for (const e of [a, c]) {
      expect(e.route('dc-b')).toEqual({ datacenter: 'dc-b', status: 'unreachable', members: [] });
    }
    const events = net.events.get(addr('dc-a', 'n1'))!;
    expect(events).toContainEqual({
      kind: 'datacenter-status',
      datacenter: 'dc-b',
      from: 'suspect',
      to: 'unreachable',
    });
    net.cutOff.clear();
    net.advance(1_000);
    for (const e of [a, c]) expect(e.route('dc-b')!.status).toBe('alive');
    expect(events).toContainEqual({ kind: 'datacenter-status', datacenter: 'dc-b', from: 'unreachable', to: 'alive' });
  });

  it('lost packets cost nothing: with every direct ping from a lost, the indirect probes keep everyone alive', () => {
    const { net, a } = threeDatacenters();
    let dropped = 0;
    for (let step = 0; step < 300; step++) {
      net.t += 10;
      for (const e of net.engines.values()) e.tick(net.t);
      for (let i = net.queue.length - 1; i >= 0; i--) {
        const p = net.queue[i]!;
        if (p.from === addr('dc-a', 'n1') && decodeBody(p.bytes).t === 'ping') {
          net.queue.splice(i, 1);
          dropped++;
        }
      }
      net.pump();
    }
    expect(dropped).toBeGreaterThan(40);
    expect(a.stats().indirectProbes).toBeGreaterThan(20);
    expect(a.stats().suspicions).toBe(0);
    expect(a.snapshot().datacenters.every((d) => d.status === 'alive')).toBe(true);
  });
});

describe('FederationEngine: refused messages change nothing', () => {
  /** Runs `attack` against b with a snapshot taken before and compared after. */
  function refusedWithNothingChanged(net: Net, target: FederationEngine, bytes: Uint8Array, reason: string): void {
    const before = JSON.stringify(target.snapshot());
    const knowledge = JSON.stringify(target.knowledge());
    const result = target.receive('198.51.100.7:4444', bytes);
    expect(result).toMatchObject({ kind: 'refused', reason });
    expect(JSON.stringify(target.snapshot())).toBe(before);
    expect(JSON.stringify(target.knowledge())).toBe(knowledge);
    expect(target.drainEvents()).toEqual([]);
    expect(target.stats().refused[reason as 'bad-mac']).toBe(1);
    void net;
  }

  /** A fresh sync message from a to b, captured instead of delivered. */
  function capture(net: Net, from: string, to: string): Uint8Array {
    net.queue.length = 0;
    for (let i = 0; i < 100; i++) {
      net.t += 10;
      net.engines.get(from)!.tick(net.t);
      const p = net.queue.find((q) => q.to === to);
      net.queue.length = 0;
      if (p) return p.bytes;
    }
    throw new Error('no message');
  }

  it('a message sealed with another secret: bad-mac', () => {
    const { net, b } = threeDatacenters();
    const outsider = net.add('dc-x', 'n1', { secret: 'not-the-secret', join: [addr('dc-b', 'n1')] });
    net.engines.delete(addr('dc-x', 'n1'));
    outsider.tick(net.t + 1_000);
    const p = net.queue.find((q) => q.from === addr('dc-x', 'n1'))!;
    net.queue.length = 0;
    refusedWithNothingChanged(net, b, p.bytes, 'bad-mac');
    expect(b.route('dc-x')).toBeNull();
  });

  it('a forged datacenter: the datacenter field rewritten in transit breaks the MAC', () => {
    const { net, b } = threeDatacenters();
    const bytes = capture(net, addr('dc-a', 'n1'), addr('dc-b', 'n1'));
    const [v, signed, mac] = decode<[number, Uint8Array, Uint8Array]>(bytes);
    const inner = decode<Record<string, unknown>>(signed);
    const forged = encode([v, encode({ ...inner, dc: 'dc-c' }), mac]);
    refusedWithNothingChanged(net, b, forged, 'bad-mac');
    // The untouched original is still accepted: the refusal did not touch the replay window.
    expect(b.receive('x', bytes).kind).toBe('accepted');
  });

  it('a sender claiming to be a member of our own datacenter that our cluster does not have: forged-datacenter', () => {
    const net = new Net();
    const a = net.add('dc-a', 'n1');
    // Holds the secret but claims to be dc-a/n9: dc-a's own cluster knows no n9.
    const impostor = net.add('dc-a', 'n9', { join: [addr('dc-a', 'n1')] });
    net.engines.delete(addr('dc-a', 'n9'));
    impostor.tick(1_000);
    const p = net.queue.find((q) => q.to === addr('dc-a', 'n1'))!;
    net.queue.length = 0;
    refusedWithNothingChanged(net, a, p.bytes, 'forged-datacenter');
  });

  it('a replayed message: replay; the same message sent to another node: wrong-recipient', () => {
    const { net, b, c } = threeDatacenters();
    const bytes = capture(net, addr('dc-a', 'n1'), addr('dc-b', 'n1'));
    expect(b.receive('x', bytes).kind).toBe('accepted');
    net.queue.length = 0;
    b.drainEvents();
    refusedWithNothingChanged(net, b, bytes, 'replay');
    refusedWithNothingChanged(net, c, bytes, 'wrong-recipient');
  });

  it('a message older than the timestamp window: stale', () => {
    const { net, b } = threeDatacenters();
    const bytes = capture(net, addr('dc-a', 'n1'), addr('dc-b', 'n1'));
    net.t += 10_001;
    refusedWithNothingChanged(net, b, bytes, 'stale');
  });

  it('garbage and truncated envelopes: malformed', () => {
    const { net, b } = threeDatacenters();
    refusedWithNothingChanged(net, b, new Uint8Array([0xc1, 0x00]), 'malformed');
    const bytes = capture(net, addr('dc-a', 'n1'), addr('dc-b', 'n1'));
    expect(b.receive('x', bytes.subarray(0, bytes.length - 5)).kind).toBe('refused');
  });
});

function decodeBody(bytes: Uint8Array): { t: string } {
  const [, signed] = decode<[number, Uint8Array]>(bytes);
  return decode<{ body: { t: string } }>(signed).body;
}
