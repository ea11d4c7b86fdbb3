/**
 * The datacenter table: for every datacenter this node knows, the newest description it has
 * heard (members, leader, version), the registry revision, each member's liveness, and what
 * this node observed itself (round-trip time, when it last heard from a member). Storage and
 * derived views only; the rules for changing liveness live in liveness.ts, the merge rules in
 * merge.ts.
 */
import { ALIVE_AT_ZERO, type Descriptor, type Liveness } from './merge.js';
import type { DatacenterEntry, DigestItem } from './messages.js';
import type { DatacenterStatus, MemberInfo } from './types.js';

export interface DatacenterRecord {
  readonly name: string;
  /** Null while the datacenter is known only by seed addresses (durable knowledge, a join). */
  descriptor: Descriptor | null;
  /** Addresses to reach it when no member is known or reachable. */
  seeds: readonly string[];
  revision: number;
  /** By member id, for the members of `descriptor` only. */
  readonly liveness: Map<string, Liveness>;
  /** The status last reported in an event. */
  status: DatacenterStatus;
  rttMs: number | null;
  readonly heard: Map<string, number>;
  /** Cache of `hashEntry`, cleared on every change to descriptor or liveness. */
  hash: number | null;
}

export function memberKey(datacenter: string, id: string): string {
  // Datacenter names never contain '/', so the first '/' splits the key unambiguously.
  return `${datacenter}/${id}`;
}

export class DatacenterTable {
  private readonly records = new Map<string, DatacenterRecord>();
  private memberTotal = 0;
  /** +1 on every change to records, descriptors or liveness: lets callers cache derived lists. */
  generation = 0;

  get(name: string): DatacenterRecord | undefined {
    return this.records.get(name);
  }

  size(): number {
    return this.records.size;
  }

  has(name: string): boolean {
    return this.records.has(name);
  }

  all(): IterableIterator<DatacenterRecord> {
    return this.records.values();
  }

  names(): string[] {
    return [...this.records.keys()].sort();
  }

  /** The record for `name`, created as a placeholder if new. */
  ensure(name: string): DatacenterRecord {
    let r = this.records.get(name);
    if (r === undefined) {
      r = {
        name,
        descriptor: null,
        seeds: [],
        revision: 0,
        liveness: new Map(),
        status: 'suspect',
        rttMs: null,
        heard: new Map(),
        hash: null,
      };
      this.records.set(name, r);
      this.generation++;
    }
    return r;
  }

  /**
   * Installs a description: members that left lose their liveness, new members start alive at
   * incarnation 0 unless `liveness` says otherwise (the caller merges it right after).
   */
  setDescriptor(r: DatacenterRecord, d: Descriptor): void {
    const ids = new Set(d.members.map((m) => m.id));
    for (const id of r.liveness.keys()) if (!ids.has(id)) r.liveness.delete(id);
    for (const id of r.heard.keys()) if (!ids.has(id)) r.heard.delete(id);
    for (const id of ids) if (!r.liveness.has(id)) r.liveness.set(id, ALIVE_AT_ZERO);
    this.memberTotal += d.members.length - (r.descriptor?.members.length ?? 0);
    r.descriptor = d;
    r.hash = null;
    this.generation++;
  }

  setLiveness(r: DatacenterRecord, id: string, l: Liveness): void {
    r.liveness.set(id, l);
    r.hash = null;
    this.generation++;
  }

  /** Members across all datacenters (sizes the suspicion timeout). */
  memberCount(): number {
    return this.memberTotal;
  }

  member(datacenter: string, id: string): MemberInfo | undefined {
    return this.records.get(datacenter)?.descriptor?.members.find((m) => m.id === id);
  }

  entry(r: DatacenterRecord): DatacenterEntry | null {
    return r.descriptor === null
      ? null
      : { name: r.name, descriptor: r.descriptor, revision: r.revision, liveness: r.liveness };
  }

  digest(): DigestItem[] {
    const out: DigestItem[] = [];
    for (const r of this.records.values()) {
      if (r.descriptor === null) out.push({ name: r.name, revision: 0, hash: 0 });
      else out.push({ name: r.name, revision: r.revision, hash: entryHash(r) });
    }
    return out;
  }
}

export function datacenterStatus(r: DatacenterRecord): DatacenterStatus {
  if (r.descriptor === null || r.descriptor.members.length === 0) return 'suspect';
  let suspect = false;
  for (const m of r.descriptor.members) {
    const s = r.liveness.get(m.id)?.status ?? 'alive';
    if (s === 'alive') return 'alive';
    if (s === 'suspect') suspect = true;
  }
  return suspect ? 'suspect' : 'unreachable';
}

/**
 * Hash of everything gossiped about a datacenter except its revision; 0 means "nothing known".
 * The version is in it: two nodes holding one content at different versions exchange it
 * once, so they agree on which description a later one must beat.
 */
export function entryHash(r: DatacenterRecord): number {
  if (r.hash !== null) return r.hash;
  if (r.descriptor === null) return 0;
  let text = `${r.descriptor.version.term}.${r.descriptor.version.index}|${r.descriptor.key}`;
  for (const m of r.descriptor.members) {
    const l = r.liveness.get(m.id) ?? ALIVE_AT_ZERO;
    text += `|${l.incarnation}:${l.status}:${l.suspectors.join(',')}`;
  }
  r.hash = fnv1a(text) || 1;
  return r.hash;
}

/** FNV-1a, 32 bits: a cheap change detector, not a security measure (the MAC is). */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
