/**
 * Push-pull anti-entropy. Every sync interval this node starts an exchange with
 * `syncFanout` random live members of any datacenter (plus pending joins, seeds of
 * datacenters known by name only, and now and then an unreachable member, to notice it
 * coming back):
 *
 *   A ── sync {digest} ─────────────────────▶ B    digest: per datacenter (revision, hash)
 *   A ◀── sync-reply {entries, wanted, revs} ─ B   B's entries that differ or A lacks; the
 *                                                  names whose entries B wants from A
 *   A ── sync-push {entries} ───────────────▶ B    only if B wanted something
 *
 * Both sides merge with the same rules (merge.ts), so after one exchange both hold the join
 * of what they held. The digest is ~25 bytes per datacenter; a whole entry travels only when
 * its hash differs. Revisions (which move with every write in a busy datacenter) travel in
 * the digest and are merged by max, so they never make an entry differ.
 */
import { type GossipContext, otherMembers, type Peer, shuffle } from './context.js';
import type { DatacenterEntry, DigestItem } from './messages.js';
import { entryHash } from './table.js';
import type { MemberRef } from './types.js';

interface PendingExchange {
  readonly sentAt: number;
  /** Set for a join or seed address, whose identity we learn from the reply. */
  readonly address: string;
  /** The hashes our digest said, by name: a revision in the reply is for those entries. */
  readonly hashes: ReadonlyMap<string, number>;
}

export class AntiEntropy {
  private nextSyncAt = Infinity;
  private nextExchange = 1;
  private readonly pending = new Map<number, PendingExchange>();
  /** Addresses given to `join` that have not answered yet. */
  private readonly joins = new Set<string>();

  constructor(private readonly ctx: GossipContext) {}

  start(now: number): void {
    this.nextSyncAt = now + this.ctx.random.int(this.ctx.tuning.syncIntervalMs);
  }

  join(address: string): void {
    this.joins.add(address);
  }

  pendingJoins(): string[] {
    return [...this.joins];
  }

  tick(now: number): void {
    if (now >= this.nextSyncAt) {
      this.syncRound(now);
      this.nextSyncAt += this.ctx.tuning.syncIntervalMs;
      if (this.nextSyncAt <= now) this.nextSyncAt = now + this.ctx.tuning.syncIntervalMs;
    }
    const stale = now - 4 * this.ctx.tuning.syncIntervalMs;
    for (const [x, p] of this.pending) if (p.sentAt < stale) this.pending.delete(x);
  }

  nextWakeup(): number {
    return this.nextSyncAt;
  }

  onSync(sender: Peer, exchange: number, digest: readonly DigestItem[]): void {
    const theirs = new Map(digest.map((d) => [d.name, d]));
    const entries: DatacenterEntry[] = [];
    const wanted: string[] = [];
    const revisions: [string, number][] = [];
    for (const r of this.ctx.table.all()) {
      const d = theirs.get(r.name);
      if (r.descriptor === null) {
        if (d !== undefined && d.hash !== 0) wanted.push(r.name);
        continue;
      }
      if (d === undefined || d.hash !== entryHash(r)) {
        entries.push(this.ctx.table.entry(r)!);
        if (d !== undefined && d.hash !== 0) wanted.push(r.name);
      } else if (r.revision > d.revision) {
        revisions.push([r.name, r.revision]);
      } else if (d.revision > r.revision) {
        r.revision = d.revision;
      }
    }
    for (const d of digest) if (d.hash !== 0 && !this.ctx.table.has(d.name)) wanted.push(d.name);
    this.ctx.send(sender.address, sender, { kind: 'sync-reply', exchange, entries, wanted, revisions });
  }

  onSyncReply(
    sender: Peer,
    exchange: number,
    entries: readonly DatacenterEntry[],
    wanted: readonly string[],
    revisions: readonly (readonly [string, number])[],
    now: number,
  ): void {
    const p = this.pending.get(exchange);
    if (p !== undefined) {
      this.pending.delete(exchange);
      this.joins.delete(p.address);
      this.ctx.observeRtt(sender.datacenter, now - p.sentAt);
    }
    for (const e of entries) this.ctx.mergeEntry(e, now);
    // The peer sent a revision where its entry matched our digest: take it only if we still
    // hold that entry (a revision belongs to one description, see mergeEntry).
    for (const [name, revision] of revisions) {
      const r = this.ctx.table.get(name);
      if (r?.descriptor && revision > r.revision && p?.hashes.get(name) === entryHash(r)) r.revision = revision;
    }
    const push: DatacenterEntry[] = [];
    for (const name of wanted) {
      const r = this.ctx.table.get(name);
      const e = r ? this.ctx.table.entry(r) : null;
      if (e) push.push(e);
    }
    if (push.length > 0) this.ctx.send(sender.address, sender, { kind: 'sync-push', entries: push });
  }

  onSyncPush(entries: readonly DatacenterEntry[], now: number): void {
    for (const e of entries) this.ctx.mergeEntry(e, now);
  }

  /** Our own datacenter's entry, pushed to up to `max` live members at random (a graceful leave). */
  pushOwnEntry(max: number): void {
    const r = this.ctx.table.get(this.ctx.self.datacenter);
    const entry = r ? this.ctx.table.entry(r) : null;
    if (entry === null) return;
    const live = otherMembers(this.ctx).filter((m) => m.status !== 'unreachable');
    for (const m of shuffle([...live], this.ctx.random).slice(0, max))
      this.ctx.send(m.peer.address, m.peer, { kind: 'sync-push', entries: [entry] });
  }

  private syncRound(now: number): void {
    const members = otherMembers(this.ctx);
    const live = members.filter((m) => m.status !== 'unreachable');
    const targets: { address: string; to: MemberRef | null }[] = shuffle(live, this.ctx.random)
      .slice(0, this.ctx.tuning.syncFanout)
      .map((m) => ({ address: m.peer.address, to: m.peer }));
    for (const address of this.joins) targets.push({ address, to: null });
    for (const r of this.ctx.table.all()) {
      if (r.descriptor === null && r.seeds.length > 0)
        targets.push({ address: r.seeds[this.ctx.random.int(r.seeds.length)]!, to: null });
    }
    // Serf's reconnect: cluster-wide, about `reconnectRate` attempts per unreachable member
    // per round, so a datacenter that comes back (or a healed partition) is noticed even if
    // it has forgotten us.
    const down = members.filter((m) => m.status === 'unreachable');
    if (down.length > 0) {
      const chance = Math.min(1, (this.ctx.tuning.reconnectRate * down.length) / Math.max(1, live.length + 1));
      if (this.ctx.random.int(1_000_000) < chance * 1_000_000) {
        const m = down[this.ctx.random.int(down.length)]!;
        targets.push({ address: m.peer.address, to: m.peer });
      }
    }
    if (targets.length === 0) return;
    const digest = this.ctx.table.digest();
    const hashes = new Map(digest.map((d) => [d.name, d.hash]));
    for (const t of targets) {
      const exchange = this.nextExchange++;
      this.pending.set(exchange, { sentAt: now, address: t.address, hashes });
      this.ctx.counters.syncs++;
      this.ctx.send(t.address, t.to, { kind: 'sync', exchange, digest });
    }
  }
}
