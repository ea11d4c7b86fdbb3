/**
 * The replicated commands and their results. A command is applied on every node from the
 * Raft log, so it carries everything apply needs: no clocks, no randomness, no node-local
 * state. Time-like values (`now`) and identifiers (`sessionId`) come from the proposer.
 */
import type { HealthPolicy } from '../health/policy.js';
import type { AccessRules, SettableHealth } from './model.js';

/** Exactly-once identity of a client request; `seq` grows by one per new request of that client. */
export interface ClientRef {
  readonly id: string;
  readonly seq: number;
}

export interface OpenSession {
  readonly type: 'openSession';
  readonly client?: ClientRef;
  readonly sessionId: string;
  readonly ttlMs: number;
  readonly now: number;
}

export interface CloseSession {
  readonly type: 'closeSession';
  readonly client?: ClientRef;
  readonly sessionId: string;
}

/** Upsert. Optional fields left out keep their current value on an existing instance and take the default on a new one. */
export interface Register {
  readonly type: 'register';
  readonly client?: ClientRef;
  readonly namespace: string;
  readonly service: string;
  readonly id: string;
  readonly cluster?: string;
  readonly address: string;
  readonly port: number;
  readonly weight?: number;
  readonly tags?: readonly string[];
  readonly metadata?: Readonly<Record<string, string>>;
  readonly enabled?: boolean;
  /** Present: ephemeral, bound to this session. Absent: persistent. */
  readonly sessionId?: string;
}

export interface Unregister {
  readonly type: 'unregister';
  readonly client?: ClientRef;
  readonly namespace: string;
  readonly service: string;
  readonly id: string;
}

/** Each field given replaces the instance's value (metadata and tags are replaced whole, not merged). */
export interface InstancePatch {
  readonly weight?: number;
  readonly metadata?: Readonly<Record<string, string>>;
  readonly tags?: readonly string[];
  readonly enabled?: boolean;
}

export interface Update {
  readonly type: 'update';
  readonly client?: ClientRef;
  readonly namespace: string;
  readonly service: string;
  readonly id: string;
  readonly expectedVersion: number;
  readonly patch: InstancePatch;
}

/**
 * Replaces the access rules whole (src/registry/access.ts: stored in the canonical form
 * parseAccessRules gives). With `expectedRevision`, only if the stored rules are still the
 * ones stored at that revision (0: only if none are stored), as setHealthPolicy.
 */
export interface SetAccessRules {
  readonly type: 'setAccessRules';
  readonly client?: ClientRef;
  readonly rules: AccessRules;
  readonly expectedRevision?: number;
}

/**
 * Replaces the health policy whole. With `expectedRevision`, only if the stored policy is
 * still the one stored at that revision (0: only if none is stored), so two admins editing
 * the same document cannot silently overwrite each other (etcd's txn compare on mod revision).
 */
export interface SetHealthPolicy {
  readonly type: 'setHealthPolicy';
  readonly client?: ClientRef;
  readonly policy: HealthPolicy;
  readonly expectedRevision?: number;
}

/**
 * Replicated access tokens (v3, src/registry/version.ts). The proposing node makes the id
 * and the secret and puts only the secret's SHA-256 digest (hex) here: the secret never
 * enters the log. `bootstrapAcl` creates the first admin token and succeeds once per
 * cluster, decided at apply (two concurrent bootstraps on two nodes: the second applied is
 * refused with ACL_BOOTSTRAPPED).
 */
export interface TokenFields {
  readonly id: string;
  readonly name: string;
  readonly role: 'read' | 'register' | 'admin';
  readonly namespaces?: readonly string[];
  readonly servicePrefixes?: readonly string[];
  readonly secretHash: string;
}

export interface BootstrapAcl extends TokenFields {
  readonly type: 'bootstrapAcl';
  readonly client?: ClientRef;
}

export interface CreateToken extends TokenFields {
  readonly type: 'createToken';
  readonly client?: ClientRef;
}

export interface RevokeToken {
  readonly type: 'revokeToken';
  readonly client?: ClientRef;
  readonly id: string;
}

/**
 * Leader-proposed commands carry the proposer's term: one proposed by a deposed leader
 * (whose session deadlines or health view are stale) is rejected once a newer term's entry
 * has been applied.
 */
export interface Expire {
  readonly type: 'expire';
  readonly term: number;
  readonly sessionIds: readonly string[];
  readonly now: number;
}

/**
 * The first half of an expiry: the leader records that it decided to expire these
 * sessions, and changes nothing. Only once the leader has applied this entry while still
 * leader of `term` (so the decision was committed by that leader, in its own term) does it
 * propose the `expire` that deletes them. An intent a leader proposed but did not commit
 * before it lost office is later committed by its successor as a no-op, so a decision made
 * on a stale view (keepalives that never reached it) deletes nothing; see docs/registry.md,
 * "Expiry across a change of leader".
 */
export interface ExpiryIntent {
  readonly type: 'expiryIntent';
  readonly term: number;
  readonly sessionIds: readonly string[];
  readonly now: number;
}

export interface MarkSuspect {
  readonly type: 'markSuspect';
  readonly term: number;
  readonly sessionIds: readonly string[];
  readonly now: number;
}

export interface ClearSuspect {
  readonly type: 'clearSuspect';
  readonly term: number;
  readonly sessionIds: readonly string[];
}

export interface SetHealth {
  readonly type: 'setHealth';
  readonly term: number;
  readonly namespace: string;
  readonly service: string;
  readonly id: string;
  readonly health: SettableHealth;
}

/**
 * The health a check run outside the registry decided for one instance: a Consul TTL
 * check's pass, warn, fail or update (src/consul/ttl-checks.ts), which any node may take.
 * A client command, unlike setHealth (the leader's own decision from provider reports,
 * fenced by its term): it goes through the log like any write, is deduplicated by its client
 * ref, and is compare-and-set on the instance's version, so a check update decided on a
 * stale read changes nothing. `metadata`, when given, replaces the instance's metadata whole
 * in the same change, so the check's own record (its status and output) moves with the
 * health, never apart from it. `suspect` is not settable, and a suspect instance is refused:
 * expiry protection owns it until clearSuspect.
 */
export interface SetCheckHealth {
  readonly type: 'setCheckHealth';
  readonly client?: ClientRef;
  readonly namespace: string;
  readonly service: string;
  readonly id: string;
  readonly expectedVersion: number;
  readonly health: SettableHealth;
  readonly metadata?: Readonly<Record<string, string>>;
}

/**
 * The leader raises the cluster version (src/registry/version.ts) once every member reports
 * a build that implements it. Never lowers it (a lower or equal version changes nothing).
 * Fenced by the leader's term like its other commands.
 */
export interface SetClusterVersion {
  readonly type: 'setClusterVersion';
  readonly term: number;
  readonly version: number;
}

/**
 * The leader fills the replicated member-address record (src/node/peer-book.ts) for current
 * members that have no entry: those added before the cluster reached version 2, when conf
 * changes wrote no record. `addresses` is what the leader dials them at (its `--peers`).
 * The registry changes nothing: the node applies it to the record, and only for members
 * that still have no entry at that point of the log (an address a conf change carries is
 * never replaced). From cluster version 5 (src/registry/version.ts). Fenced by the term.
 */
export interface RecordMemberAddresses {
  readonly type: 'recordMemberAddresses';
  readonly term: number;
  /** Member id -> `host:port`. */
  readonly addresses: Readonly<Record<string, string>>;
}

/**
 * A member says it has started: it is part of a running cluster (etcd's "publish"). Each
 * member proposes it for itself, through the leader, until it sees its entry in the
 * started-member record (src/node/member-publication.ts). Idempotent: a member already
 * recorded changes nothing; one that is not a current member (removed meanwhile) is refused
 * (INVALID_ARGUMENT, field `member`).
 * The record tells a wiped member apart from a founding member that never started
 * (src/node/founding-guard.ts). From cluster version 6 (src/registry/version.ts).
 */
export interface RecordMemberStarted {
  readonly type: 'recordMemberStarted';
  readonly member: string;
}

export type ClientCommand =
  | OpenSession
  | CloseSession
  | Register
  | Unregister
  | Update
  | SetCheckHealth
  | SetAccessRules
  | SetHealthPolicy
  | BootstrapAcl
  | CreateToken
  | RevokeToken;
export type LeaderCommand =
  | ExpiryIntent
  | Expire
  | MarkSuspect
  | ClearSuspect
  | SetHealth
  | SetClusterVersion
  | RecordMemberAddresses;
/** Proposed by a member about itself, never by a client. */
export type MemberCommand = RecordMemberStarted;
export type Command = ClientCommand | LeaderCommand | MemberCommand;
export type CommandType = Command['type'];

export const CLIENT_COMMAND_TYPES: ReadonlySet<string> = new Set<ClientCommand['type']>([
  'openSession',
  'closeSession',
  'register',
  'unregister',
  'update',
  'setCheckHealth',
  'setAccessRules',
  'setHealthPolicy',
  'bootstrapAcl',
  'createToken',
  'revokeToken',
]);
export const LEADER_COMMAND_TYPES: ReadonlySet<string> = new Set<LeaderCommand['type']>([
  'expiryIntent',
  'expire',
  'markSuspect',
  'clearSuspect',
  'setHealth',
  'setClusterVersion',
  'recordMemberAddresses',
]);
export const MEMBER_COMMAND_TYPES: ReadonlySet<string> = new Set<MemberCommand['type']>(['recordMemberStarted']);

export type ErrorCode =
  /** Not a command at all: not an object, unknown type, or a malformed `client`. Never cached for dedup. */
  | 'INVALID_COMMAND'
  /** A field is missing or out of range; `field` names it. */
  | 'INVALID_ARGUMENT'
  | 'SESSION_NOT_FOUND'
  | 'SESSION_EXISTS'
  | 'INSTANCE_NOT_FOUND'
  /** CAS failed; `currentVersion` carries the instance's version (setHealthPolicy, setAccessRules: the stored document's revision, 0 for none). */
  | 'VERSION_MISMATCH'
  /** Register would turn a persistent instance ephemeral or the reverse. */
  | 'KIND_MISMATCH'
  /** setHealth or setCheckHealth on an instance whose session is held by expiry protection. */
  | 'INSTANCE_SUSPECT'
  /** A leader command from a term older than an applied entry's. */
  | 'STALE_TERM'
  /** A client seq below the last one applied for that client: already answered, result no longer kept. */
  | 'STALE_REQUEST'
  /** register refused by an access rule in force when it was applied; `rule` names it (`deny[0] (lab)`, or `allow`). */
  | 'ACCESS_DENIED'
  /** register or update whose instance's metadata.environment differs from the label in force (or is missing where required). */
  | 'ENVIRONMENT_MISMATCH'
  /** register or update while the stored access rules cannot be read by this build (version skew). */
  | 'ACCESS_RULES_INVALID'
  /** A command the cluster version does not have yet (src/registry/version.ts). Never cached for dedup, as a build of that version refuses an unknown command. */
  | 'CLUSTER_NOT_UPGRADED'
  /** bootstrapAcl after the cluster's ACL was bootstrapped. */
  | 'ACL_BOOTSTRAPPED'
  /** createToken with an id (or secret digest) already stored. */
  | 'TOKEN_EXISTS'
  /** revokeToken of an id that is not stored. */
  | 'TOKEN_NOT_FOUND';

export interface CommandOk {
  readonly ok: true;
  /** The revision of this change, or the current revision when nothing changed. */
  readonly revision: number;
  readonly changed: boolean;
  /** register, update, setHealth, setCheckHealth: the instance's version afterwards. setHealthPolicy, setAccessRules: the revision that stored the document now in force. */
  readonly version?: number;
  /** closeSession, expire, markSuspect, clearSuspect: instances deleted or changed. */
  readonly count?: number;
}

export interface CommandError {
  readonly ok: false;
  readonly code: ErrorCode;
  readonly message: string;
  readonly field?: string;
  readonly currentVersion?: number;
  /** ACCESS_DENIED: the rule that refused. */
  readonly rule?: string;
}

export type CommandResult = CommandOk | CommandError;
