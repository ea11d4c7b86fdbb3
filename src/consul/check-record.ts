/**
 * What Consul knows of an instance and Rollcall does not: its TTL check (id, name, the
 * status the service last reported with pass/warn/fail/update, notes, output) and its
 * warning weight. Kept in the instance itself, in one reserved metadata key holding JSON,
 * so it is replicated with the instance, every node reads the same, and no node keeps
 * agent-local state: any node can take a check update or answer a query.
 *
 * The TTL itself is a Rollcall session whose id derives from the namespace and check id
 * (sessionIdForCheck), so a check update on any node finds it without a lookup table.
 */
import { createHash } from 'node:crypto';
import { type Instance, RESERVED_METADATA_KEY } from '../registry/index.js';

/** The reserved metadata key; Consul's `Meta` never shows it and may not set it. */
export const CHECK_META_KEY = RESERVED_METADATA_KEY;

export const CONSUL_STATUSES = ['passing', 'warning', 'critical'] as const;
export type ConsulStatus = (typeof CONSUL_STATUSES)[number];

export interface CheckRecord {
  readonly id: string;
  readonly name: string;
  readonly status: ConsulStatus;
  readonly notes: string;
  /** The note of the last status change (a pass that changes nothing writes nothing). */
  readonly output: string;
  /** The check's TTL in ms, as registered (the session has the same). */
  readonly ttlMs: number;
}

export interface ConsulRecord {
  readonly check: CheckRecord | null;
  /** Consul's `Weights.Warning`; null: the instance's weight. */
  readonly warningWeight: number | null;
}

const EMPTY: ConsulRecord = Object.freeze({ check: null, warningWeight: null });

export function isConsulStatus(s: unknown): s is ConsulStatus {
  return typeof s === 'string' && (CONSUL_STATUSES as readonly string[]).includes(s);
}

/** The record in an instance's metadata; an absent or unreadable one is empty (the instance is judged by its health alone). */
export function readRecord(i: Pick<Instance, 'metadata'>): ConsulRecord {
  const raw = i.metadata[CHECK_META_KEY];
  if (raw === undefined) return EMPTY;
  try {
    const o = JSON.parse(raw) as Record<string, unknown>;
    const c = o['check'] as Record<string, unknown> | undefined;
    const check: CheckRecord | null =
      c !== undefined &&
      typeof c === 'object' &&
      c !== null &&
      typeof c['id'] === 'string' &&
      isConsulStatus(c['status'])
        ? {
            id: c['id'],
            name: typeof c['name'] === 'string' ? c['name'] : '',
            status: c['status'],
            notes: typeof c['notes'] === 'string' ? c['notes'] : '',
            output: typeof c['output'] === 'string' ? c['output'] : '',
            ttlMs: typeof c['ttlMs'] === 'number' ? c['ttlMs'] : 0,
          }
        : null;
    const w = o['warningWeight'];
    return { check, warningWeight: typeof w === 'number' && Number.isSafeInteger(w) ? w : null };
  } catch {
    return EMPTY;
  }
}

/** The metadata value for a record (null: no key at all). Compact, in a fixed field order. */
export function writeRecord(r: ConsulRecord): string | null {
  if (r.check === null && r.warningWeight === null) return null;
  const out: Record<string, unknown> = {};
  if (r.check !== null)
    out['check'] = {
      id: r.check.id,
      name: r.check.name,
      status: r.check.status,
      notes: r.check.notes,
      output: r.check.output,
      ttlMs: r.check.ttlMs,
    };
  if (r.warningWeight !== null) out['warningWeight'] = r.warningWeight;
  return JSON.stringify(out);
}

/** The user's metadata as Consul shows it: without the reserved key. */
export function userMeta(i: Pick<Instance, 'metadata'>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(i.metadata)) if (k !== CHECK_META_KEY) out[k] = v;
  return out;
}

/** Metadata with the record set (or removed when null). */
export function withRecord(meta: Readonly<Record<string, string>>, record: ConsulRecord): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(meta)) if (k !== CHECK_META_KEY) out[k] = v;
  const value = writeRecord(record);
  if (value !== null) out[CHECK_META_KEY] = value;
  return out;
}

const SESSION_SAFE = /^[A-Za-z0-9._:@-]+$/;

/**
 * The Rollcall session that carries a TTL check: `consul:<namespace>:<check id>` when that
 * is a valid session id (1-128 characters of [A-Za-z0-9._:@-]), else the check id is
 * replaced by its SHA-256. Namespace names have no ':', so two namespaces never share one.
 */
export function sessionIdForCheck(namespace: string, checkId: string): string {
  const plain = `consul:${namespace}:${checkId}`;
  if (plain.length <= 128 && SESSION_SAFE.test(checkId)) return plain;
  const hashed = `consul:${namespace}:sha256-${sha256(checkId).slice(0, 40)}`;
  return hashed.length <= 128 ? hashed : `consul:sha256-${sha256(`${namespace}\u0000${checkId}`).slice(0, 40)}`;
}

function sha256(s: string): string {
  return createHash('sha256').update(s, 'utf8').digest('hex');
}
