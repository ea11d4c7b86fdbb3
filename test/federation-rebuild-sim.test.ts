/**
 * A datacenter rebuilt from empty data under the same name (issue 18), in the deterministic
 * simulator (virtual time, seeded 10 % loss): every node of dc-b is wiped and started again
 * as a new cluster — Raft term back at 1, a new cluster id (or none, as `rollcall server`
 * founds it), the federation forgotten. The other datacenters must take its new description
 * (members, leader, revision) within a bounded number of rounds, and an old message carrying
 * the old description, replayed to a node that restarted (and so forgot its replay windows),
 * must not bring the old one back.
 *
 * Replay a failure with the seed it prints: FEDSIM_SEED=<seed> npx vitest run test/federation-rebuild-sim.test.ts
 */
import { describe, expect, it } from 'vitest';

import { EnvelopeSealer } from '../src/federation/envelope.js';
import type { DatacenterSnapshot, LocalView, MemberInfo } from '../src/federation/index.js';
import { parseMessage } from '../src/federation/messages.js';
import { FederationWorld, type SimNode } from '../src/federation/sim/index.js';

const seed = Number(process.env.FEDSIM_SEED ?? 20260118);
const replay = `seed ${seed}; replay: FEDSIM_SEED=${seed} npx vitest run test/federation-rebuild-sim.test.ts`;
/** Rounds the other datacenters may take to see the rebuilt one as it is now. */
const MAX_ROUNDS = 8;
/** The simulator's secret (FederationWorld's default), to look inside a captured message. */
const sealer = new EnvelopeSealer('sim-secret');

const addr = (dc: string, id: string) => `http://${dc}-${id}:7300`;

/** Whether a message carries dc-b's entry with `leader` (a sync-reply or sync-push). */
function carriesDescription(bytes: Uint8Array, leader: string): boolean {
  const opened = sealer.open(bytes, Number.MAX_SAFE_INTEGER);
  if (opened.kind !== 'ok') return false;
  const m = parseMessage(opened.body);
  if (m?.kind !== 'sync-reply' && m?.kind !== 'sync-push') return false;
  return m.entries.some((e) => e.name === 'dc-b' && e.descriptor.leader === leader);
}

describe.each([
  { founded: 'with a new cluster id (snapshot restore, force-new-cluster)', before: 'cid-0001', after: 'cid-0002' },
  { founded: 'without a cluster id, before and after (rollcall server founds it)', before: null, after: null },
])('a datacenter rebuilt from empty data under the same name, $founded (issue 18)', ({ before, after }) => {
  it('every node of the other datacenters takes its new description; a replayed old message does not bring the old one back', () => {
    const world = new FederationWorld({ seed, loss: 0.1 });
    const round = world.roundMs;
    world.addDatacenter('dc-a', 3);
    world.addDatacenter('dc-c', 3, [addr('dc-a', 'n1')]);
    const b = world.addDatacenter('dc-b', 3, [addr('dc-a', 'n1')]);
    const members = b.map((n): MemberInfo => ({ id: n.id, address: n.address, role: 'voter' }));
    // A cluster that has lived a while: a later term, a large revision.
    const oldView: LocalView = { members, leader: 'n2', revision: 5_000, term: 7, clusterId: before };
    for (const n of b) world.setView(n, oldView);

    const others = () => world.upNodes().filter((n) => n.datacenter !== 'dc-b');
    const dcB = (n: SimNode): DatacenterSnapshot | undefined =>
      n.engine!.snapshot().datacenters.find((d) => d.name === 'dc-b');
    const describes = (n: SimNode, v: LocalView): boolean => {
      const d = dcB(n);
      return d !== undefined && d.leader === v.leader && d.revision === v.revision && d.members.length === 3;
    };
    const seen = () =>
      others().map((n) => {
        const d = dcB(n);
        return `${n.address}: leader ${d?.leader} revision ${d?.revision} cluster ${d?.clusterId} members ${d?.members.length}`;
      });
    const why = () => `${replay}\n${seen().join('\n')}`;

    // A message on its way to dc-a/n2 with the old description, kept to replay later.
    let captured: { from: SimNode; bytes: Uint8Array } | null = null;
    world.tap = (from, to, bytes) => {
      if (
        captured === null &&
        to === addr('dc-a', 'n2') &&
        from.datacenter !== 'dc-b' &&
        carriesDescription(bytes, 'n2')
      )
        captured = { from, bytes };
    };
    expect(
      world.runUntil(() => others().every((n) => describes(n, oldView)), 40 * round),
      why(),
    ).not.toBeNull();
    world.tap = null;
    expect(captured, 'no message carried the old description to dc-a/n2').not.toBeNull();
    const old = captured as unknown as { from: SimNode; bytes: Uint8Array };

    // Every node of dc-b wiped and started again: a new cluster, term 1, a small revision.
    world.killDatacenter('dc-b');
    world.runFor(2 * round);
    const newView: LocalView = { members, leader: 'n3', revision: 3, term: 1, clusterId: after };
    for (const n of b) {
      world.wipe(n);
      n.view = newView;
    }
    world.restartDatacenter('dc-b');
    const took = world.runUntil(() => others().every((n) => describes(n, newView)), 60 * round);
    expect(took, why()).not.toBeNull();
    expect(took! / round, why()).toBeLessThanOrEqual(MAX_ROUNDS);
    for (const n of others()) expect(dcB(n)?.clusterId, n.address).toBe(after);

    // The replay: dc-a/n2 restarts (its replay windows are gone) and is handed the old message,
    // still inside the timestamp window. It is accepted, and must change nothing for long.
    const target = world.nodes.get(addr('dc-a', 'n2'))!;
    world.kill(target);
    world.start(target);
    world.runUntil(() => describes(target, newView), 20 * round);
    expect(describes(target, newView), why()).toBe(true);
    expect(world.deliver(old.from, target.address, old.bytes)?.kind).toBe('accepted');
    expect(describes(target, newView), `the replay brought the old description back\n${why()}`).toBe(true);
    for (let step = 0; step < 100; step++) {
      world.runFor(round / 10);
      const back = others().filter((n) => describes(n, oldView));
      expect(
        back.map((n) => n.address),
        why(),
      ).toEqual([]);
    }
    expect(
      others().every((n) => describes(n, newView)),
      why(),
    ).toBe(true);
  });
});
