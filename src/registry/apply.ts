/**
 * Applies one command to the state. Deterministic: the outcome depends only on the state,
 * the command and the entry's index, never on clocks, randomness or iteration order of
 * anything not sorted. Failure paths check everything before the first mutation, so a
 * failed command leaves no trace except, for client commands, its cached result.
 */

import { encode } from '../codec/index.js';
import { metadataVerdict, registerVerdict, updateVerdict } from './access.js';
import type {
  BootstrapAcl,
  ClearSuspect,
  Command,
  CommandError,
  CommandOk,
  CommandResult,
  CreateToken,
  ErrorCode,
  Expire,
  ExpiryIntent,
  MarkSuspect,
  RecordMemberAddresses,
  RecordMemberStarted,
  Register,
  SetAccessRules,
  SetCheckHealth,
  SetClusterVersion,
  SetHealth,
  SetHealthPolicy,
  Update,
} from './commands.js';
import type { EventCause, Health, Instance, RegistryEvent, Session } from './model.js';
import { DEFAULT_CLUSTER, DEFAULT_WEIGHT, instanceKey } from './model.js';
import { sharedMetadata, sharedName, sharedTags } from './shared-values.js';
import type { RegistryState } from './state.js';
import { parseEnvelope, parseFieldsOf } from './validate.js';
import { INTRODUCED_IN, MEMBER_STARTED_SINCE } from './version.js';

export interface Applied {
  readonly result: CommandResult;
  readonly events: RegistryEvent[];
  /**
   * register, update, setHealth: the instance exactly as this command left it. Not part of
   * the result, so the deduplication table (replicated, bounded by client count) does not
   * hold whole instances; a retry answered from it has none.
   */
  readonly instance?: Instance;
}

export function applyCommand(state: RegistryState, index: number, raw: unknown): Applied {
  const env = parseEnvelope(raw);
  if (!env.ok) return { result: env, events: [] };
  // The gate: a command the cluster version (as of this entry, replicated) does not have is
  // refused exactly as a build of that version refuses an unknown type: before the dedup
  // table, so nothing is written and replicas of old and new builds stay byte-identical.
  const since = INTRODUCED_IN[env.type];
  if (since !== undefined && state.clusterVersion < since) {
    return {
      result: fail(
        'CLUSTER_NOT_UPGRADED',
        `${env.type} needs cluster version ${since}; the cluster runs version ${state.clusterVersion} until every member runs a build that implements it`,
      ),
      events: [],
    };
  }
  const { client } = env;
  if (client !== undefined) {
    const seen = state.dedup.check(client.id, client.seq);
    if (seen.kind === 'retry') return { result: seen.result, events: [] };
    if (seen.kind === 'stale') {
      return {
        result: fail(
          'STALE_REQUEST',
          `client ${client.id} already applied seq ${seen.lastSeq}; seq ${client.seq} was answered before`,
        ),
        events: [],
      };
    }
  }
  const parsed = parseFieldsOf(env, state.clusterVersion);
  const applied = parsed.ok ? execute(state, parsed.command) : { result: parsed, events: [] };
  if (client !== undefined) {
    state.dirty.clients.add(client.id);
    for (const evicted of state.dedup.record(
      client.id,
      Object.freeze({ seq: client.seq, index, result: applied.result }),
    )) {
      state.dirty.clients.add(evicted);
    }
  }
  return applied;
}

/** Success before the revision is known: the transaction decides it. */
type Draft =
  | { readonly ok: true; readonly version?: number; readonly count?: number; readonly instance?: Instance }
  | CommandError;

function execute(state: RegistryState, cmd: Command): Applied {
  const rev = state.begin(causeOf(cmd));
  const draft = run(state, cmd, rev);
  if (!draft.ok) {
    state.abort();
    return { result: draft, events: [] };
  }
  const { changed, events } = state.end();
  // Built field by field so the cached (and persisted) result has one canonical encoding.
  const result: { -readonly [K in keyof CommandOk]: CommandOk[K] } = { ok: true, revision: state.revision, changed };
  if (draft.version !== undefined) result.version = draft.version;
  if (draft.count !== undefined) result.count = draft.count;
  return draft.instance === undefined
    ? { result: Object.freeze(result), events }
    : { result: Object.freeze(result), events, instance: draft.instance };
}

function causeOf(cmd: Command): EventCause | null {
  switch (cmd.type) {
    case 'openSession':
    case 'setAccessRules':
    case 'setHealthPolicy':
    case 'expiryIntent':
    case 'setClusterVersion':
    case 'recordMemberAddresses':
    case 'recordMemberStarted':
    case 'bootstrapAcl':
    case 'createToken':
    case 'revokeToken':
      return null;
    case 'closeSession':
    case 'register':
    case 'unregister':
    case 'update':
    case 'setCheckHealth':
    case 'expire':
    case 'markSuspect':
    case 'clearSuspect':
    case 'setHealth':
      return cmd.type;
  }
}

function run(state: RegistryState, cmd: Command, rev: number): Draft {
  switch (cmd.type) {
    case 'openSession': {
      if (state.sessions.has(cmd.sessionId))
        return fail('SESSION_EXISTS', `session ${cmd.sessionId} already exists`, 'sessionId');
      state.putSession(session(cmd.sessionId, cmd.ttlMs, cmd.now, rev, null));
      return { ok: true };
    }
    case 'closeSession': {
      if (!state.sessions.has(cmd.sessionId))
        return fail('SESSION_NOT_FOUND', `session ${cmd.sessionId} does not exist (closed or expired)`, 'sessionId');
      return { ok: true, count: dropSession(state, cmd.sessionId) };
    }
    case 'register':
      return register(state, cmd, rev);
    case 'unregister': {
      const prev = state.instances.get(instanceKey(cmd.namespace, cmd.service, cmd.id));
      if (prev !== undefined) state.deleteInstance(prev);
      return { ok: true };
    }
    case 'update':
      return update(state, cmd, rev);
    case 'setCheckHealth':
      return setCheckHealth(state, cmd, rev);
    case 'setAccessRules':
      return setAccessRules(state, cmd, rev);
    case 'setHealthPolicy':
      return setHealthPolicy(state, cmd, rev);
    case 'bootstrapAcl':
      if (state.aclBootstrapRevision !== 0) {
        return fail(
          'ACL_BOOTSTRAPPED',
          `the ACL was bootstrapped at revision ${state.aclBootstrapRevision}; create tokens with an admin token (or a --token-file break-glass token)`,
        );
      }
      {
        const refused = putToken(state, cmd, rev);
        if (refused !== null) return refused;
      }
      state.markAclBootstrapped();
      return { ok: true };
    case 'createToken':
      return putToken(state, cmd, rev) ?? { ok: true };
    case 'revokeToken':
      if (!state.tokens.has(cmd.id))
        return fail('TOKEN_NOT_FOUND', `token ${cmd.id} does not exist (never created, or revoked)`, 'id');
      state.deleteToken(cmd.id);
      return { ok: true };
    case 'expiryIntent':
      // Changes nothing: the proposing leader acts on it once it sees it applied (node.ts).
      return staleTerm(state, cmd) ?? { ok: true };
    case 'expire':
      return staleTerm(state, cmd) ?? expire(state, cmd);
    case 'markSuspect':
      return staleTerm(state, cmd) ?? markSuspect(state, cmd, rev);
    case 'clearSuspect':
      return staleTerm(state, cmd) ?? clearSuspect(state, cmd, rev);
    case 'setHealth':
      return staleTerm(state, cmd) ?? setHealth(state, cmd, rev);
    case 'setClusterVersion':
      return staleTerm(state, cmd) ?? setClusterVersion(state, cmd);
    case 'recordMemberAddresses':
      // Changes nothing here: the node fills its member-address record once it sees it applied (ready-loop.ts).
      return staleTerm(state, cmd) ?? { ok: true };
    case 'recordMemberStarted':
      return recordMemberStarted(state, cmd);
  }
}

/**
 * Idempotent: a member already recorded keeps the index it was first recorded at. A member
 * not in the configuration (removed while its proposal was in flight) is refused, so a
 * removed member never comes back recorded as started.
 */
function recordMemberStarted(state: RegistryState, c: RecordMemberStarted): Draft {
  const conf = state.conf;
  if (conf === null || !(conf.voters.includes(c.member) || conf.learners.includes(c.member)))
    return fail('INVALID_ARGUMENT', `${c.member} is not a member of the cluster`, 'member');
  if (!state.startedMembers.has(c.member)) state.recordStarted(c.member, state.appliedIndex);
  return { ok: true };
}

/** Stores a new token; refuses an id or secret digest already stored (both random: a retry or a bug). */
function putToken(state: RegistryState, c: BootstrapAcl | CreateToken, rev: number): CommandError | null {
  if (state.tokens.has(c.id)) return fail('TOKEN_EXISTS', `token ${c.id} already exists`, 'id');
  if (state.tokensByHash.has(c.secretHash))
    return fail('TOKEN_EXISTS', 'a token with this secret already exists', 'secretHash');
  state.putToken(
    Object.freeze({
      id: c.id,
      name: c.name,
      role: c.role,
      namespaces: c.namespaces ?? null,
      servicePrefixes: c.servicePrefixes ?? null,
      secretHash: c.secretHash,
      createRevision: rev,
    }),
  );
  return null;
}

/**
 * appliedTerm already includes this entry's term, and every term's entries follow that
 * term's no-op; so a command whose term is below it was proposed by a leader that has since
 * been replaced (it was forwarded or re-proposed into a newer term).
 */
/** Only ever raises; the revision does not move (no instance changed), the version key is written. */
function setClusterVersion(state: RegistryState, c: SetClusterVersion): Draft {
  if (c.version <= state.clusterVersion) return { ok: true };
  // The raise to 6: every current member reported a running build (the leader raises only
  // then, src/node/member-status.ts), so each has started: recorded now, without waiting
  // for its own recordMemberStarted (a member wiped in between must still be refused).
  if (state.clusterVersion < MEMBER_STARTED_SINCE && c.version >= MEMBER_STARTED_SINCE && state.conf !== null)
    for (const id of [...state.conf.voters, ...state.conf.learners].sort()) state.recordStarted(id, state.appliedIndex);
  state.clusterVersion = c.version;
  state.dirty.clusterVersion = true;
  return { ok: true };
}

function staleTerm(
  state: RegistryState,
  cmd: ExpiryIntent | Expire | MarkSuspect | ClearSuspect | SetHealth | SetClusterVersion | RecordMemberAddresses,
): CommandError | null {
  if (cmd.term >= state.appliedTerm) return null;
  return fail(
    'STALE_TERM',
    `${cmd.type} proposed in term ${cmd.term}, but term ${state.appliedTerm} has already applied entries`,
    'term',
  );
}

/**
 * register and update: the access rules decide here, at apply, against the rules in force at
 * this log position (access.ts), and nowhere else with authority: a command proposed under
 * older rules is judged by the newer ones if a setAccessRules committed before it, on every
 * replica alike. (A server that checked before proposing judged by whatever rules it had
 * applied: the race this closes.) Checked before anything else, so the order of errors is
 * the one the API always had.
 */
function register(state: RegistryState, c: Register, rev: number): Draft {
  const prev = state.instances.get(instanceKey(c.namespace, c.service, c.id));
  const refused = registerVerdict(state.rules, c, prev);
  if (refused !== null) return refused;
  let owner: Session | undefined;
  if (c.sessionId !== undefined) {
    owner = state.sessions.get(c.sessionId);
    if (owner === undefined)
      return fail(
        'SESSION_NOT_FOUND',
        `session ${c.sessionId} does not exist (expired or never opened); open a new session`,
        'sessionId',
      );
  }
  if (prev !== undefined && (prev.sessionId === null) !== (c.sessionId === undefined)) {
    // A persistent instance silently turning ephemeral would vanish with someone's session.
    return fail(
      'KIND_MISMATCH',
      prev.sessionId === null
        ? `instance ${c.id} is persistent; unregister it before registering it with a session`
        : `instance ${c.id} is ephemeral; unregister it before registering it without a session`,
      'sessionId',
    );
  }
  // Suspect follows the owning session, not the instance: moving to a healthy session clears it.
  const health: Health =
    owner !== undefined && owner.suspectSince !== null
      ? 'suspect'
      : prev !== undefined && prev.health !== 'suspect'
        ? prev.health
        : 'healthy';
  return upsert(state, rev, prev, {
    namespace: c.namespace,
    service: c.service,
    id: c.id,
    cluster: c.cluster ?? prev?.cluster ?? DEFAULT_CLUSTER,
    address: c.address,
    port: c.port,
    weight: c.weight ?? prev?.weight ?? DEFAULT_WEIGHT,
    tags: c.tags ?? prev?.tags ?? EMPTY_TAGS,
    metadata: c.metadata ?? prev?.metadata ?? EMPTY_METADATA,
    health,
    enabled: c.enabled ?? prev?.enabled ?? true,
    sessionId: c.sessionId ?? null,
  });
}

function update(state: RegistryState, c: Update, rev: number): Draft {
  const refused = updateVerdict(state.rules, c);
  if (refused !== null) return refused;
  const prev = state.instances.get(instanceKey(c.namespace, c.service, c.id));
  if (prev === undefined)
    return fail('INSTANCE_NOT_FOUND', `instance ${c.namespace}/${c.service}/${c.id} does not exist`, 'id');
  if (prev.version !== c.expectedVersion) {
    return {
      ...fail(
        'VERSION_MISMATCH',
        `expected version ${c.expectedVersion}, instance is at ${prev.version}`,
        'expectedVersion',
      ),
      currentVersion: prev.version,
    };
  }
  const p = c.patch;
  return upsert(state, rev, prev, {
    ...fieldsOf(prev),
    weight: p.weight ?? prev.weight,
    tags: p.tags ?? prev.tags,
    metadata: p.metadata ?? prev.metadata,
    enabled: p.enabled ?? prev.enabled,
  });
}

function setHealth(state: RegistryState, c: SetHealth, rev: number): Draft {
  const prev = state.instances.get(instanceKey(c.namespace, c.service, c.id));
  if (prev === undefined)
    return fail('INSTANCE_NOT_FOUND', `instance ${c.namespace}/${c.service}/${c.id} does not exist`, 'id');
  if (prev.health === 'suspect') {
    return fail(
      'INSTANCE_SUSPECT',
      `instance ${c.id} is held by expiry protection; its health is restored by clearSuspect`,
      'health',
    );
  }
  return upsert(state, rev, prev, { ...fieldsOf(prev), health: c.health });
}

/**
 * A check's verdict: health (and, when given, the metadata holding the check's record) in one
 * change, compare-and-set on the version as update. A new metadata map is judged against the
 * environment label first, as update's is.
 */
function setCheckHealth(state: RegistryState, c: SetCheckHealth, rev: number): Draft {
  if (c.metadata !== undefined) {
    const refused = metadataVerdict(state.rules, c.metadata, 'metadata.environment');
    if (refused !== null) return refused;
  }
  const prev = state.instances.get(instanceKey(c.namespace, c.service, c.id));
  if (prev === undefined)
    return fail('INSTANCE_NOT_FOUND', `instance ${c.namespace}/${c.service}/${c.id} does not exist`, 'id');
  if (prev.version !== c.expectedVersion) {
    return {
      ...fail(
        'VERSION_MISMATCH',
        `expected version ${c.expectedVersion}, instance is at ${prev.version}`,
        'expectedVersion',
      ),
      currentVersion: prev.version,
    };
  }
  if (prev.health === 'suspect') {
    return fail(
      'INSTANCE_SUSPECT',
      `instance ${c.id} is held by expiry protection; its health is restored by clearSuspect`,
      'health',
    );
  }
  return upsert(state, rev, prev, { ...fieldsOf(prev), health: c.health, metadata: c.metadata ?? prev.metadata });
}

/** `version` in the result is the revision that stored the rules in force afterwards; CAS exactly as setHealthPolicy. */
function setAccessRules(state: RegistryState, c: SetAccessRules, rev: number): Draft {
  const current = state.rules;
  const currentRevision = current?.revision ?? 0;
  if (c.expectedRevision !== undefined && c.expectedRevision !== currentRevision) {
    const stored =
      current === null ? 'no access rules are stored' : `the stored access rules are at revision ${currentRevision}`;
    return {
      ...fail(
        'VERSION_MISMATCH',
        `expected access rules revision ${c.expectedRevision}, but ${stored}`,
        'expectedRevision',
      ),
      currentVersion: currentRevision,
    };
  }
  // Compared by encoding (the document is canonical): the same rules re-sent (e.g. by a
  // config sync loop) are not a change.
  if (current !== null && bytesEqual(encode(current.rules), encode(c.rules)))
    return { ok: true, version: currentRevision };
  state.setRules(c.rules);
  return { ok: true, version: rev };
}

/** `version` in the result is the revision that stored the policy in force afterwards. */
function setHealthPolicy(state: RegistryState, c: SetHealthPolicy, rev: number): Draft {
  const current = state.healthPolicy;
  const currentRevision = current?.revision ?? 0;
  if (c.expectedRevision !== undefined && c.expectedRevision !== currentRevision) {
    const stored = current === null ? 'no policy is stored' : `the stored policy is at revision ${currentRevision}`;
    return {
      ...fail('VERSION_MISMATCH', `expected policy revision ${c.expectedRevision}, but ${stored}`, 'expectedRevision'),
      currentVersion: currentRevision,
    };
  }
  // Compared by encoding (the policy is canonical): re-sending the same document is not a change.
  if (current !== null && bytesEqual(encode(current.policy), encode(c.policy)))
    return { ok: true, version: currentRevision };
  state.setHealthPolicy(c.policy);
  return { ok: true, version: rev };
}

function expire(state: RegistryState, c: Expire): Draft {
  let count = 0;
  for (const id of c.sessionIds) if (state.sessions.has(id)) count += dropSession(state, id);
  return { ok: true, count };
}

function markSuspect(state: RegistryState, c: MarkSuspect, rev: number): Draft {
  let count = 0;
  for (const id of c.sessionIds) {
    const s = state.sessions.get(id);
    if (s === undefined) continue;
    // An already held session keeps its original time: the maximum hold counts from the first mark.
    if (s.suspectSince === null) state.putSession(session(s.id, s.ttlMs, s.openedAt, s.createRevision, c.now));
    count += setSessionHealth(state, id, rev, (h) => (h === 'suspect' ? null : 'suspect'));
  }
  return { ok: true, count };
}

function clearSuspect(state: RegistryState, c: ClearSuspect, rev: number): Draft {
  let count = 0;
  for (const id of c.sessionIds) {
    const s = state.sessions.get(id);
    if (s === undefined || s.suspectSince === null) continue;
    state.putSession(session(s.id, s.ttlMs, s.openedAt, s.createRevision, null));
    count += setSessionHealth(state, id, rev, (h) => (h === 'suspect' ? 'healthy' : null));
  }
  return { ok: true, count };
}

/** Deletes a session and its instances (in key order); returns how many instances went. */
function dropSession(state: RegistryState, id: string): number {
  const keys = state.sessionInstanceKeys(id);
  for (const k of keys) {
    const inst = state.instances.get(k);
    if (inst !== undefined) state.deleteInstance(inst);
  }
  state.deleteSession(id);
  return keys.length;
}

function setSessionHealth(
  state: RegistryState,
  sessionId: string,
  rev: number,
  next: (h: Health) => Health | null,
): number {
  let count = 0;
  for (const k of state.sessionInstanceKeys(sessionId)) {
    const inst = state.instances.get(k);
    const health = inst === undefined ? null : next(inst.health);
    if (inst === undefined || health === null) continue;
    state.putInstance(build({ ...fieldsOf(inst), health }, inst.createRevision, rev, inst.version + 1));
    count++;
  }
  return count;
}

// ---- instances

type Fields = Omit<Instance, 'createRevision' | 'modRevision' | 'version'>;

const EMPTY_TAGS: readonly string[] = Object.freeze([]);
const EMPTY_METADATA: Readonly<Record<string, string>> = Object.freeze({});

function upsert(state: RegistryState, rev: number, prev: Instance | undefined, f: Fields): Draft {
  if (prev !== undefined && sameFields(prev, f)) return { ok: true, version: prev.version, instance: prev };
  const next = build(f, prev?.createRevision ?? rev, rev, (prev?.version ?? 0) + 1);
  state.putInstance(next);
  return { ok: true, version: next.version, instance: next };
}

/** The one place an Instance is assembled: a fixed field order gives one encoding per value. */
function build(f: Fields, createRevision: number, modRevision: number, version: number): Instance {
  return Object.freeze({
    id: f.id,
    namespace: sharedName(f.namespace),
    service: sharedName(f.service),
    cluster: sharedName(f.cluster),
    address: f.address,
    port: f.port,
    weight: f.weight,
    tags: sharedTags(f.tags),
    metadata: sharedMetadata(f.metadata),
    health: f.health,
    enabled: f.enabled,
    sessionId: f.sessionId,
    createRevision,
    modRevision,
    version,
  });
}

function fieldsOf(i: Instance): Fields {
  const { createRevision: _c, modRevision: _m, version: _v, ...f } = i;
  return f;
}

function sameFields(a: Instance, b: Fields): boolean {
  return (
    a.cluster === b.cluster &&
    a.address === b.address &&
    a.port === b.port &&
    a.weight === b.weight &&
    a.health === b.health &&
    a.enabled === b.enabled &&
    a.sessionId === b.sessionId &&
    a.tags.length === b.tags.length &&
    a.tags.every((t, i) => t === b.tags[i]) &&
    sameRecord(a.metadata, b.metadata)
  );
}

function sameRecord(a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && a[k] === b[k]);
}

function session(
  id: string,
  ttlMs: number,
  openedAt: number,
  createRevision: number,
  suspectSince: number | null,
): Session {
  return Object.freeze({ id, ttlMs, openedAt, createRevision, suspectSince });
}

function fail(code: ErrorCode, message: string, field?: string): CommandError {
  return Object.freeze(field === undefined ? { ok: false, code, message } : { ok: false, code, message, field });
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
