/**
 * The merge rules of the datacenter table, as pure functions: which of two beliefs about a
 * member's liveness, or two descriptions of a datacenter, wins. Every node applies the same
 * rules to whatever it hears, in whatever order, so the table converges (once nothing new
 * happens, every node holds the same winners).
 */
import type { DescriptorVersion, MemberInfo, MemberStatus } from './types.js';

/** One member's liveness as gossiped. `suspectors` is non-empty only while suspect. */
export interface Liveness {
  readonly incarnation: number;
  readonly status: MemberStatus;
  /** Members (`dc/id` keys) that independently failed to reach it at this incarnation; sorted. */
  readonly suspectors: readonly string[];
}

export const ALIVE_AT_ZERO: Liveness = { incarnation: 0, status: 'alive', suspectors: [] };

const RANK: Readonly<Record<MemberStatus, number>> = { alive: 0, suspect: 1, unreachable: 2 };

/**
 * What we believe about a member (not ourselves) after hearing `remote` from gossip. Returns
 * `local` itself when nothing changes, so callers can test with `===`.
 *
 * - A higher incarnation wins: only the member bumps its incarnation, so a higher one is
 *   newer news from the member itself (its refutation) or about it.
 * - At equal incarnation the worse status wins (alive < suspect < unreachable): an accusation
 *   stands until the member refutes it.
 * - Two suspicions at one incarnation combine: the union of their suspectors (the smallest
 *   `maxSuspectors`, so the union stays a join and still converges). More independent
 *   suspectors shorten the suspicion timeout (Lifeguard).
 * - Someone else's "unreachable" is only a suspicion here (memberlist's mergeState does the
 *   same): every node reaches its own verdict through its own timeout, so one node's mistake
 *   does not spread as a verdict, and the accused keeps time to refute.
 */
export function mergeLiveness(local: Liveness, remote: Liveness, maxSuspectors: number): Liveness {
  if (remote.incarnation < local.incarnation) return local;
  const heard: Liveness =
    remote.status === 'unreachable' ? { incarnation: remote.incarnation, status: 'suspect', suspectors: [] } : remote;
  if (remote.incarnation > local.incarnation) return heard;
  if (RANK[remote.status] < RANK[local.status] || local.status === 'unreachable') return local;
  if (local.status === 'alive') return heard;
  // Both suspect at one incarnation (or remote's verdict, already a suspicion here).
  const suspectors = unionSmallest(local.suspectors, heard.suspectors, maxSuspectors);
  return suspectors === local.suspectors ? local : { ...local, suspectors };
}

/** The sorted union of two sorted lists, cut to the `max` smallest; `a` itself if nothing is added. */
export function unionSmallest(a: readonly string[], b: readonly string[], max: number): readonly string[] {
  if (b.length === 0) return a;
  const all = [...new Set([...a, ...b])].sort();
  const cut = all.slice(0, max);
  return cut.length === a.length && cut.every((s, i) => s === a[i]) ? a : cut;
}

export function compareVersions(a: DescriptorVersion, b: DescriptorVersion): number {
  return a.term !== b.term ? Math.sign(a.term - b.term) : Math.sign(a.index - b.index);
}

/** The process that stamped a description: a member of the datacenter in one run (`boot`: its incarnation at start). */
export interface Publisher {
  readonly id: string;
  readonly boot: number;
}

/** Where a description comes from, beside its content: which cluster, stamped by which process. */
export interface DescriptorOrigin {
  /**
   * The datacenter's cluster id (src/storage/cluster-id.ts) as its publisher knew it; null for
   * a cluster without one. Absent when unknown: relayed by a build from before cluster ids,
   * which drops the field.
   */
  readonly cluster?: string | null;
  /** Absent when relayed by a build from before publishers were named. */
  readonly publisher?: Publisher;
}

/**
 * One datacenter's own description of itself: members and leader. The origin is not part of
 * the content (`key`) nor of the order: it lets the datacenter's own members recognise a
 * description left over from a cluster or a process that no longer runs (see
 * `FederationEngine.noteOwnDescriptor`), and builds that do not know it relay the rest.
 */
export interface Descriptor extends DescriptorOrigin {
  readonly version: DescriptorVersion;
  readonly leader: string | null;
  /** Sorted by id. */
  readonly members: readonly MemberInfo[];
  /** Canonical text of leader and members: equal keys, equal content; the last tie-break. */
  readonly key: string;
}

export function makeDescriptor(
  version: DescriptorVersion,
  leader: string | null,
  members: readonly MemberInfo[],
  origin: DescriptorOrigin = {},
): Descriptor {
  const sorted = [...members].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
  const key = JSON.stringify([leader, sorted.map((m) => [m.id, m.address, m.role])]);
  return {
    version,
    leader,
    members: sorted,
    key,
    ...(origin.cluster !== undefined ? { cluster: origin.cluster } : {}),
    ...(origin.publisher !== undefined ? { publisher: origin.publisher } : {}),
  };
}

/**
 * > 0 when `a` is the newer description. Nodes of one datacenter publish their own views;
 * the higher version wins (each node stamps a change above every version it has seen, see
 * `DescriptorVersion`), then the one that knows a leader, then (one version, different
 * content: two nodes stamped the same instant) the larger canonical key, so that every node
 * picks the same winner whatever the order it heard them in.
 */
export function compareDescriptors(a: Descriptor, b: Descriptor): number {
  const v = compareVersions(a.version, b.version);
  if (v !== 0) return v;
  const leaders = Number(a.leader !== null) - Number(b.leader !== null);
  if (leaders !== 0) return leaders;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}
