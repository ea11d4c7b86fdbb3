/**
 * The registry's data model: what is stored, listed and watched.
 *
 * Every object here is immutable once built (frozen at runtime, readonly in types), so the
 * in-memory indexes can hand the same object to readers, events and history without copies.
 */
import type { ConfState } from '../../raft/messages.js';
import type { HealthPolicy } from '../health/policy.js';

export type { ConfState };

/** 'suspect' is owned by expiry protection (markSuspect / clearSuspect), never by setHealth. */
export const HEALTH_STATES = ['healthy', 'subhealthy', 'suspect', 'down'] as const;
export type Health = (typeof HEALTH_STATES)[number];
/** What the leader's health checks (and setCheckHealth) may set; 'suspect' is reserved for expiry protection. */
export type SettableHealth = Exclude<Health, 'suspect'>;

export const DEFAULT_CLUSTER = 'default';
export const DEFAULT_WEIGHT = 100;

export interface Instance {
  readonly id: string;
  readonly namespace: string;
  readonly service: string;
  readonly cluster: string;
  readonly address: string;
  readonly port: number;
  /** Integer 0..10000; 0 keeps the instance listed but asks balancers to send it nothing. */
  readonly weight: number;
  /** A set: unique and sorted, so equality (and therefore "did anything change") is order-free. */
  readonly tags: readonly string[];
  /** Keys sorted, so the encoded bytes are canonical. */
  readonly metadata: Readonly<Record<string, string>>;
  readonly health: Health;
  readonly enabled: boolean;
  /** The owning session for an ephemeral instance; null for a persistent one. */
  readonly sessionId: string | null;
  readonly createRevision: number;
  readonly modRevision: number;
  /** 1 on create, +1 on every change (health and suspect marks included). */
  readonly version: number;
}

export interface Session {
  readonly id: string;
  readonly ttlMs: number;
  /** The proposer's clock at open; informational. */
  readonly openedAt: number;
  readonly createRevision: number;
  /**
   * The proposer's clock when expiry protection held this session back; null when not held.
   * Replicated so that a new leader still honours the maximum hold.
   */
  readonly suspectSince: number | null;
}

/** Opaque until access control gives it meaning; stored and returned as given. */
export type AccessRules = Readonly<Record<string, unknown>>;

export interface StoredAccessRules {
  readonly rules: AccessRules;
  /** The revision of the setAccessRules that stored them. */
  readonly revision: number;
}

/** The admin-set health thresholds (src/health/policy.ts), in the canonical form parseHealthPolicy gives. */
export interface StoredHealthPolicy {
  readonly policy: HealthPolicy;
  /** The revision of the setHealthPolicy that stored it: what `expectedRevision` compares with. */
  readonly revision: number;
}

/**
 * A replicated access token (docs/security.md, "Access control"). Only the SHA-256 digest of
 * its secret is stored (hex): the secret is made by the node that took the request and never
 * enters the log. `namespaces` / `servicePrefixes` null: no limit.
 */
export interface AclToken {
  readonly id: string;
  readonly name: string;
  readonly role: 'read' | 'register' | 'admin';
  readonly namespaces: readonly string[] | null;
  readonly servicePrefixes: readonly string[] | null;
  readonly secretHash: string;
  /** The revision of the command that created it. */
  readonly createRevision: number;
}

export type EventCause =
  | 'register'
  | 'unregister'
  | 'update'
  | 'setHealth'
  | 'setCheckHealth'
  | 'markSuspect'
  | 'clearSuspect'
  | 'closeSession'
  | 'expire';

export interface PutEvent {
  readonly type: 'put';
  readonly revision: number;
  readonly instance: Instance;
  /** The state before this change; absent when the instance was created. */
  readonly previous?: Instance;
  readonly cause: EventCause;
}

export interface DeleteEvent {
  readonly type: 'delete';
  readonly revision: number;
  /** The instance as it was when removed. */
  readonly instance: Instance;
  readonly cause: EventCause;
}

export type RegistryEvent = PutEvent | DeleteEvent;

export interface ServiceSummary {
  readonly namespace: string;
  readonly service: string;
  readonly instanceCount: number;
  /** The revision of the last change to any of its instances. */
  readonly revision: number;
}

export function instanceKey(namespace: string, service: string, id: string): string {
  // Names cannot contain '/' (see validate.ts), so the joined key is unambiguous.
  return `${namespace}/${service}/${id}`;
}

export function serviceKey(namespace: string, service: string): string {
  return `${namespace}/${service}`;
}
