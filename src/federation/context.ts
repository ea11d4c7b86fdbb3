/**
 * What the failure detector and the anti-entropy exchange need from the engine: the shared
 * state, the random source, and a way to send. One object, built once by the engine, so
 * neither module reaches into the other.
 */
import type { RandomSource } from '../../raft/rand.js';
import type { GossipTuning } from './config.js';
import type { Counters } from './events.js';
import type { LivenessTracker } from './liveness.js';
import type { DatacenterEntry, Message } from './messages.js';
import type { DatacenterTable } from './table.js';
import type { MemberRef } from './types.js';

export interface GossipContext {
  readonly self: MemberRef;
  readonly table: DatacenterTable;
  readonly liveness: LivenessTracker;
  readonly random: RandomSource;
  readonly tuning: GossipTuning;
  readonly counters: Counters;
  /** Seals and sends; `to` (when known) is bound into the MAC. */
  send(address: string, to: MemberRef | null, message: Message): void;
  /** A round-trip sample to a member of `datacenter`. */
  observeRtt(datacenter: string, ms: number): void;
  /** Merges a datacenter's gossiped state into the table. */
  mergeEntry(entry: DatacenterEntry, now: number): void;
}

/** A member as a probe or sync target. */
export interface Peer extends MemberRef {
  readonly address: string;
}

/** Fisher–Yates with the injected random source. */
export function shuffle<T>(items: T[], random: RandomSource): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = random.int(i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

export interface MemberStatusRow {
  readonly peer: Peer;
  readonly status: 'alive' | 'suspect' | 'unreachable';
}

const memberCache = new WeakMap<GossipContext, { generation: number; rows: readonly MemberStatusRow[] }>();

/** Every member of every described datacenter but this node, with its status (cached per table generation). */
export function otherMembers(ctx: GossipContext): readonly MemberStatusRow[] {
  const cached = memberCache.get(ctx);
  if (cached?.generation === ctx.table.generation) return cached.rows;
  const rows: MemberStatusRow[] = [];
  for (const r of ctx.table.all()) {
    if (r.descriptor === null) continue;
    for (const m of r.descriptor.members) {
      if (r.name === ctx.self.datacenter && m.id === ctx.self.id) continue;
      rows.push({
        peer: { datacenter: r.name, id: m.id, address: m.address },
        status: r.liveness.get(m.id)?.status ?? 'alive',
      });
    }
  }
  memberCache.set(ctx, { generation: ctx.table.generation, rows });
  return rows;
}

export function samePeer(a: MemberRef, b: MemberRef): boolean {
  return a.datacenter === b.datacenter && a.id === b.id;
}
