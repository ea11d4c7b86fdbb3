/**
 * The gossip messages (the body inside an envelope), their compact wire form and a strict
 * parser: a body that passed the MAC still comes from another build and another operator,
 * so every field is checked before it can reach the table.
 *
 *   ping       p, you?          "are you there?" (+ what the prober believes about you, so a
 *                               suspected member learns it at once and refutes in its ack)
 *   ack        p, inc?, tgt?    the answer; relayed by a helper it names the target and its
 *                               incarnation
 *   ping-req   p, tgt           "probe tgt for me" (SWIM indirect probe)
 *   sync       x, d             push-pull, step 1: the digest of our table (name, revision, hash)
 *   sync-reply x, e, w, r       step 2: entries that differ or we alone know, the names we
 *                               want back, and revisions where only the revision is newer
 *   sync-push  e               step 3: the entries asked for
 */
import {
  isAddress,
  isClusterId,
  isDatacenterName,
  isMemberId,
  MAX_DATACENTERS,
  MAX_MEMBERS_PER_DATACENTER,
} from './config.js';
import { type Descriptor, type DescriptorOrigin, type Liveness, makeDescriptor, type Publisher } from './merge.js';
import type { MemberInfo, MemberRef, MemberRole, MemberStatus } from './types.js';

/** A datacenter's full gossiped state. */
export interface DatacenterEntry {
  readonly name: string;
  readonly descriptor: Descriptor;
  readonly revision: number;
  /** By member id; members of the descriptor only. */
  readonly liveness: ReadonlyMap<string, Liveness>;
}

export interface DigestItem {
  readonly name: string;
  readonly revision: number;
  /** Hash of descriptor (its version too) and liveness; not the revision, compared on its own. */
  readonly hash: number;
}

/**
 * A digest row is `[name, 0, 0, revision, hash]`. The zeros are where the descriptor version
 * travelled before it was a wall-clock-sized number (issue 18): the hash covers it now, it
 * would cost 8 bytes more per datacenter per digest, and builds from before read the row
 * only if it keeps five fields (they never used the version either).
 */
const DIGEST_RESERVED = [0, 0] as const;

export interface ProbeTarget extends MemberRef {
  readonly address: string;
}

export type Message =
  | { readonly kind: 'ping'; readonly probe: number; readonly you: Liveness | null }
  | {
      readonly kind: 'ack';
      readonly probe: number;
      readonly relayed: { readonly target: MemberRef; readonly incarnation: number } | null;
    }
  | { readonly kind: 'ping-req'; readonly probe: number; readonly target: ProbeTarget }
  | { readonly kind: 'sync'; readonly exchange: number; readonly digest: readonly DigestItem[] }
  | {
      readonly kind: 'sync-reply';
      readonly exchange: number;
      readonly entries: readonly DatacenterEntry[];
      readonly wanted: readonly string[];
      readonly revisions: readonly (readonly [string, number])[];
    }
  | { readonly kind: 'sync-push'; readonly entries: readonly DatacenterEntry[] };

const STATUS_CODES: readonly MemberStatus[] = ['alive', 'suspect', 'unreachable'];
const ROLE_CODES: readonly MemberRole[] = ['voter', 'learner'];
const MAX_SUSPECTORS_ON_WIRE = 32;

export function encodeMessage(m: Message): unknown {
  switch (m.kind) {
    case 'ping':
      return m.you
        ? { t: 'ping', p: m.probe, you: [m.you.incarnation, STATUS_CODES.indexOf(m.you.status)] }
        : { t: 'ping', p: m.probe };
    case 'ack':
      return m.relayed
        ? { t: 'ack', p: m.probe, tgt: [m.relayed.target.datacenter, m.relayed.target.id], inc: m.relayed.incarnation }
        : { t: 'ack', p: m.probe };
    case 'ping-req':
      return { t: 'ping-req', p: m.probe, tgt: [m.target.datacenter, m.target.id, m.target.address] };
    case 'sync':
      return { t: 'sync', x: m.exchange, d: m.digest.map((d) => [d.name, ...DIGEST_RESERVED, d.revision, d.hash]) };
    case 'sync-reply':
      return { t: 'sync-reply', x: m.exchange, e: m.entries.map(encodeEntry), w: m.wanted, r: m.revisions };
    case 'sync-push':
      return { t: 'sync-push', e: m.entries.map(encodeEntry) };
  }
}

export function encodeEntry(e: DatacenterEntry): unknown {
  const members = e.descriptor.members.map((m) => {
    const l = e.liveness.get(m.id);
    const row: unknown[] = [
      m.id,
      m.address,
      ROLE_CODES.indexOf(m.role),
      l?.incarnation ?? 0,
      STATUS_CODES.indexOf(l?.status ?? 'alive'),
    ];
    if (l && l.suspectors.length > 0) row.push(l.suspectors);
    return row;
  });
  const d = e.descriptor;
  return {
    n: e.name,
    t: d.version.term,
    i: d.version.index,
    l: d.leader,
    r: e.revision,
    m: members,
    // The origin (issue 18): builds before it ignore these keys and relay the entry without them.
    ...(d.cluster !== undefined ? { c: d.cluster } : {}),
    ...(d.publisher !== undefined ? { p: [d.publisher.id, d.publisher.boot] } : {}),
  };
}

/** The parsed message, or null if anything in it is out of shape. */
export function parseMessage(body: unknown): Message | null {
  if (!isRecord(body)) return null;
  switch (body.t) {
    case 'ping': {
      if (!isCount(body.p)) return null;
      if (body.you === undefined) return { kind: 'ping', probe: body.p, you: null };
      if (!Array.isArray(body.you) || body.you.length !== 2 || !isCount(body.you[0])) return null;
      const status = STATUS_CODES[body.you[1] as number];
      if (status === undefined) return null;
      return { kind: 'ping', probe: body.p, you: { incarnation: body.you[0], status, suspectors: [] } };
    }
    case 'ack': {
      if (!isCount(body.p)) return null;
      if (body.tgt === undefined) return { kind: 'ack', probe: body.p, relayed: null };
      const t = body.tgt;
      if (!Array.isArray(t) || t.length !== 2 || !isDatacenterName(t[0]) || !isMemberId(t[1]) || !isCount(body.inc))
        return null;
      return { kind: 'ack', probe: body.p, relayed: { target: { datacenter: t[0], id: t[1] }, incarnation: body.inc } };
    }
    case 'ping-req': {
      const t = body.tgt;
      if (
        !isCount(body.p) ||
        !Array.isArray(t) ||
        t.length !== 3 ||
        !isDatacenterName(t[0]) ||
        !isMemberId(t[1]) ||
        !isAddress(t[2])
      )
        return null;
      return { kind: 'ping-req', probe: body.p, target: { datacenter: t[0], id: t[1], address: t[2] } };
    }
    case 'sync': {
      if (!isCount(body.x) || !Array.isArray(body.d) || body.d.length > MAX_DATACENTERS) return null;
      const digest: DigestItem[] = [];
      for (const d of body.d as unknown[]) {
        if (
          !Array.isArray(d) ||
          d.length !== 5 ||
          !isDatacenterName(d[0]) ||
          !isCount(d[1]) ||
          !isCount(d[2]) ||
          !isCount(d[3]) ||
          !isCount(d[4])
        )
          return null;
        digest.push({ name: d[0], revision: d[3], hash: d[4] });
      }
      return { kind: 'sync', exchange: body.x, digest };
    }
    case 'sync-reply': {
      if (!isCount(body.x)) return null;
      const entries = parseEntries(body.e);
      if (
        entries === null ||
        !Array.isArray(body.w) ||
        body.w.length > MAX_DATACENTERS ||
        !body.w.every(isDatacenterName)
      )
        return null;
      if (!Array.isArray(body.r) || body.r.length > MAX_DATACENTERS) return null;
      const revisions: [string, number][] = [];
      for (const r of body.r as unknown[]) {
        if (!Array.isArray(r) || r.length !== 2 || !isDatacenterName(r[0]) || !isCount(r[1])) return null;
        revisions.push([r[0], r[1]]);
      }
      return { kind: 'sync-reply', exchange: body.x, entries, wanted: body.w as string[], revisions };
    }
    case 'sync-push': {
      const entries = parseEntries(body.e);
      return entries === null ? null : { kind: 'sync-push', entries };
    }
    default:
      return null;
  }
}

function parseEntries(raw: unknown): DatacenterEntry[] | null {
  if (!Array.isArray(raw) || raw.length > MAX_DATACENTERS) return null;
  const out: DatacenterEntry[] = [];
  for (const e of raw as unknown[]) {
    const entry = parseEntry(e);
    if (entry === null) return null;
    out.push(entry);
  }
  return out;
}

/**
 * The largest version index a real clock can stamp: the last millisecond a JavaScript Date can
 * hold (8.64e15, below 2^53). A larger one could only come from a forged or broken peer, and the
 * next stamp above it (index + 1) would no longer be a safe integer: every later sync refused.
 */
export const MAX_VERSION_INDEX = 8.64e15;

function parseEntry(raw: unknown): DatacenterEntry | null {
  if (!isRecord(raw) || !isDatacenterName(raw.n) || !isCount(raw.t) || !isCount(raw.i) || !isCount(raw.r)) return null;
  if (raw.i > MAX_VERSION_INDEX) return null;
  if (raw.l !== null && !isMemberId(raw.l)) return null;
  if (!Array.isArray(raw.m) || raw.m.length > MAX_MEMBERS_PER_DATACENTER) return null;
  const members: MemberInfo[] = [];
  const liveness = new Map<string, Liveness>();
  for (const row of raw.m as unknown[]) {
    if (!Array.isArray(row) || row.length < 5 || row.length > 6) return null;
    const [id, address, roleCode, incarnation, statusCode, suspectors = []] = row as unknown[];
    const role = ROLE_CODES[roleCode as number];
    const status = STATUS_CODES[statusCode as number];
    if (!isMemberId(id) || !isAddress(address) || role === undefined || status === undefined || !isCount(incarnation))
      return null;
    if (liveness.has(id)) return null;
    if (!Array.isArray(suspectors) || suspectors.length > MAX_SUSPECTORS_ON_WIRE || !suspectors.every(isSuspectorKey))
      return null;
    members.push({ id, address, role });
    liveness.set(id, {
      incarnation,
      status,
      // An unreachable verdict keeps them too: the member itself as its only suspector marks a graceful leave.
      suspectors: status === 'alive' ? [] : [...new Set(suspectors as string[])].sort(),
    });
  }
  const origin = parseOrigin(raw);
  if (origin === null) return null;
  return {
    name: raw.n,
    descriptor: makeDescriptor({ term: raw.t, index: raw.i }, raw.l as string | null, members, origin),
    revision: raw.r,
    liveness,
  };
}

/**
 * `c`: the cluster id, or null for a cluster without one; `p`: [publisher id, its boot
 * incarnation]. Both optional (absent from builds before them, and from entries they relayed).
 */
function parseOrigin(raw: Record<string, unknown>): DescriptorOrigin | null {
  let cluster: string | null | undefined;
  if (raw.c !== undefined) {
    if (raw.c !== null && !isClusterId(raw.c)) return null;
    cluster = raw.c;
  }
  let publisher: Publisher | undefined;
  if (raw.p !== undefined) {
    const p = raw.p;
    if (!Array.isArray(p) || p.length !== 2 || !isMemberId(p[0]) || !isCount(p[1])) return null;
    publisher = { id: p[0], boot: p[1] };
  }
  return { ...(cluster !== undefined ? { cluster } : {}), ...(publisher !== undefined ? { publisher } : {}) };
}

function isSuspectorKey(value: unknown): value is string {
  return typeof value === 'string' && value.length <= 64 + 1 + 256 && value.includes('/');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}
