/**
 * Turns whatever came out of a log entry into a well-formed command, or a precise error.
 *
 * Apply must never throw on input (a throw would crash every replica on the same entry), so
 * everything is checked here. The result is a fresh object with only known fields, in a
 * fixed order, with tags and metadata canonicalised: two replicas that decode the same bytes
 * build byte-identical state. These rules are replicated semantics: changing them changes
 * what old log entries do on replay, so treat a change as a state-machine version change.
 * The API layer calls `parseCommand` too, to fail fast before proposing.
 */

import { parseHealthPolicy } from '../health/policy.js';
import { parseAccessRules } from './access.js';
import type { ClientRef, Command, CommandError, InstancePatch, TokenFields } from './commands.js';
import { CLIENT_COMMAND_TYPES, LEADER_COMMAND_TYPES, MEMBER_COMMAND_TYPES } from './commands.js';
import type { AccessRules, SettableHealth } from './model.js';
import { RECORD_KEY_UNCOUNTED_SINCE, STATE_MACHINE_VERSION } from './version.js';

/** The Consul adapter's check record (src/consul/check-record.ts), uncounted from RECORD_KEY_UNCOUNTED_SINCE. */
export const RESERVED_METADATA_KEY = 'rollcall.consul';

export const LIMITS = {
  nameLength: 128,
  idLength: 256,
  addressLength: 255,
  maxWeight: 10_000,
  tags: 64,
  tagLength: 128,
  metadataKeys: 64,
  metadataKeyLength: 128,
  metadataValueLength: 4096,
  minTtlMs: 1_000,
  maxTtlMs: 86_400_000,
  sessionIdsPerCommand: 10_000,
  clientIdLength: 128,
  tokenIdLength: 64,
  tokenScopes: 64,
} as const;

const SECRET_HASH = /^[0-9a-f]{64}$/;
const SERVICE_PREFIX = /^[A-Za-z0-9._-]+$/;
const ROLES: ReadonlySet<string> = new Set(['read', 'register', 'admin']);

/** A token's fields (bootstrapAcl, createToken): scopes deduplicated and sorted, so replicas store the same bytes. */
function tokenFields(o: Obj, bootstrap: boolean): TokenFields {
  const role = o['role'];
  if (typeof role !== 'string' || !ROLES.has(role))
    throw new Invalid('role', 'role must be one of read, register, admin');
  if (bootstrap && role !== 'admin') throw new Invalid('role', 'the bootstrap token is an admin token');
  const secretHash = o['secretHash'];
  if (typeof secretHash !== 'string' || !SECRET_HASH.test(secretHash))
    throw new Invalid('secretHash', 'secretHash must be 64 lowercase hex digits (SHA-256)');
  const out: { -readonly [K in keyof TokenFields]: TokenFields[K] } = {
    id: name(o, 'id', LIMITS.tokenIdLength),
    name: name(o, 'name'),
    role: role as TokenFields['role'],
    secretHash,
  };
  const list = (field: 'namespaces' | 'servicePrefixes', pattern: RegExp): readonly string[] | undefined => {
    const v = o[field];
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.length === 0 || v.length > LIMITS.tokenScopes) {
      throw new Invalid(
        field,
        `${field} must be a non-empty array of at most ${LIMITS.tokenScopes} names (leave it out for no limit)`,
      );
    }
    return Object.freeze([...new Set(v.map((x: unknown) => nameValue(x, field, LIMITS.nameLength, pattern)))].sort());
  };
  const namespaces = list('namespaces', NAME);
  if (namespaces !== undefined) out.namespaces = namespaces;
  const servicePrefixes = list('servicePrefixes', SERVICE_PREFIX);
  if (servicePrefixes !== undefined) out.servicePrefixes = servicePrefixes;
  return out;
}

/** Names start alphanumeric and never contain '/', which the storage keys use as separator. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
const INSTANCE_ID = /^[A-Za-z0-9][A-Za-z0-9._:@-]*$/;
const SETTABLE_HEALTH: ReadonlySet<string> = new Set<SettableHealth>(['healthy', 'subhealthy', 'down']);
// Control characters would make keys and logs unreadable; nothing legitimate needs them.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROL = /[\u0000-\u001f\u007f]/;

class Invalid extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function name(o: Obj, field: string, max: number = LIMITS.nameLength, pattern: RegExp = NAME): string {
  return nameValue(o[field], field, max, pattern);
}

function nameValue(v: unknown, field: string, max: number, pattern: RegExp): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max || !pattern.test(v)) {
    throw new Invalid(field, `${field} must be 1-${max} characters of ${pattern.source}`);
  }
  return v;
}

function optName(o: Obj, field: string): string | undefined {
  return o[field] === undefined ? undefined : name(o, field);
}

function int(o: Obj, field: string, min: number, max: number): number {
  const v = o[field];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    throw new Invalid(field, `${field} must be an integer in [${min}, ${max}]`);
  }
  return v;
}

function optInt(o: Obj, field: string, min: number, max: number): number | undefined {
  return o[field] === undefined ? undefined : int(o, field, min, max);
}

function optBool(o: Obj, field: string): boolean | undefined {
  const v = o[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'boolean') throw new Invalid(field, `${field} must be a boolean`);
  return v;
}

function text(v: unknown, field: string, max: number, allowEmpty: boolean): string {
  if (typeof v !== 'string' || (!allowEmpty && v.length === 0) || v.length > max || CONTROL.test(v)) {
    throw new Invalid(field, `${field} must be a string of ${allowEmpty ? 0 : 1}-${max} printable characters`);
  }
  return v;
}

function tags(v: unknown, field: string): readonly string[] {
  if (!Array.isArray(v) || v.length > LIMITS.tags)
    throw new Invalid(field, `${field} must be an array of at most ${LIMITS.tags} strings`);
  const set = new Set<string>();
  for (const t of v) set.add(text(t, field, LIMITS.tagLength, false));
  return Object.freeze([...set].sort());
}

/**
 * From cluster version RECORD_KEY_UNCOUNTED_SINCE (version.ts) RESERVED_METADATA_KEY does not
 * count toward LIMITS.metadataKeys: the Consul adapter keeps its check record there, and
 * Consul allows 64 keys of a user's own. Below it, every key counts (what older builds apply).
 */
function metadata(v: unknown, field: string, clusterVersion: number): Readonly<Record<string, string>> {
  if (!isObject(v)) throw new Invalid(field, `${field} must be an object of strings`);
  const keys = Object.keys(v).sort();
  const uncounted = clusterVersion >= RECORD_KEY_UNCOUNTED_SINCE && RESERVED_METADATA_KEY in v ? 1 : 0;
  if (keys.length - uncounted > LIMITS.metadataKeys)
    throw new Invalid(field, `${field} may have at most ${LIMITS.metadataKeys} keys`);
  const out: Record<string, string> = {};
  for (const k of keys) {
    text(k, field, LIMITS.metadataKeyLength, false);
    out[k] = text(v[k], `${field}.${k}`, LIMITS.metadataValueLength, true);
  }
  return Object.freeze(out);
}

function sessionIds(o: Obj): readonly string[] {
  const v = o['sessionIds'];
  if (!Array.isArray(v) || v.length > LIMITS.sessionIdsPerCommand) {
    throw new Invalid(
      'sessionIds',
      `sessionIds must be an array of at most ${LIMITS.sessionIdsPerCommand} session ids`,
    );
  }
  const set = new Set<string>();
  for (const id of v) set.add(nameValue(id, 'sessionIds', LIMITS.nameLength, INSTANCE_ID));
  return [...set].sort();
}

/** Member id -> `host:port`, ids sorted (one canonical form); at most 64 members. */
function memberAddresses(o: Obj): Readonly<Record<string, string>> {
  const v = o['addresses'];
  if (!isObject(v) || Object.keys(v).length === 0 || Object.keys(v).length > 64)
    throw new Invalid('addresses', 'addresses must be an object of 1-64 member ids to host:port');
  const out: Record<string, string> = {};
  for (const id of Object.keys(v).sort())
    out[text(id, 'addresses', 256, false)] = text(v[id], `addresses.${id}`, 300, false);
  return Object.freeze(out);
}

function sessionId(o: Obj, field = 'sessionId'): string {
  return name(o, field, LIMITS.nameLength, INSTANCE_ID);
}

/** JSON-like data only: rules must survive msgpack and JSON round trips unchanged. */
function plainData(v: unknown, depth: number): boolean {
  if (depth > 32) return false;
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (Array.isArray(v)) return v.every((x) => plainData(x, depth + 1));
  const proto: unknown = isObject(v) ? Object.getPrototypeOf(v) : undefined;
  if (isObject(v) && (proto === Object.prototype || proto === null)) {
    return Object.values(v).every((x) => plainData(x, depth + 1));
  }
  return false;
}

function patch(o: Obj, clusterVersion: number): InstancePatch {
  const p = o['patch'];
  if (!isObject(p)) throw new Invalid('patch', 'patch must be an object');
  const weight = optInt(p, 'weight', 0, LIMITS.maxWeight);
  const enabled = optBool(p, 'enabled');
  const out: {
    weight?: number;
    metadata?: Readonly<Record<string, string>>;
    tags?: readonly string[];
    enabled?: boolean;
  } = {};
  if (weight !== undefined) out.weight = weight;
  if (p['metadata'] !== undefined) out.metadata = metadata(p['metadata'], 'patch.metadata', clusterVersion);
  if (p['tags'] !== undefined) out.tags = tags(p['tags'], 'patch.tags');
  if (enabled !== undefined) out.enabled = enabled;
  if (Object.keys(out).length === 0)
    throw new Invalid('patch', 'patch must set at least one of weight, metadata, tags, enabled');
  return out;
}

function settableHealth(o: Obj): SettableHealth {
  const health = o['health'];
  if (typeof health !== 'string' || !SETTABLE_HEALTH.has(health)) {
    throw new Invalid(
      'health',
      "health must be 'healthy', 'subhealthy' or 'down' ('suspect' belongs to expiry protection)",
    );
  }
  return health as SettableHealth;
}

function withClient<T extends object>(cmd: T, client: ClientRef | undefined): T {
  return client === undefined ? cmd : { ...cmd, client };
}

function parseFields(o: Obj, type: Command['type'], client: ClientRef | undefined, clusterVersion: number): Command {
  switch (type) {
    case 'openSession':
      return withClient(
        {
          type,
          sessionId: sessionId(o),
          ttlMs: int(o, 'ttlMs', LIMITS.minTtlMs, LIMITS.maxTtlMs),
          now: int(o, 'now', 0, Number.MAX_SAFE_INTEGER),
        },
        client,
      );
    case 'closeSession':
      return withClient({ type, sessionId: sessionId(o) }, client);
    case 'register': {
      const cmd: {
        -readonly [K in keyof Omit<Extract<Command, { type: 'register' }>, 'client'>]: Extract<
          Command,
          { type: 'register' }
        >[K];
      } = {
        type,
        namespace: name(o, 'namespace'),
        service: name(o, 'service'),
        id: name(o, 'id', LIMITS.idLength, INSTANCE_ID),
        address: text(o['address'], 'address', LIMITS.addressLength, false),
        port: int(o, 'port', 1, 65_535),
      };
      const cluster = optName(o, 'cluster');
      if (cluster !== undefined) cmd.cluster = cluster;
      const weight = optInt(o, 'weight', 0, LIMITS.maxWeight);
      if (weight !== undefined) cmd.weight = weight;
      if (o['tags'] !== undefined) cmd.tags = tags(o['tags'], 'tags');
      if (o['metadata'] !== undefined) cmd.metadata = metadata(o['metadata'], 'metadata', clusterVersion);
      const enabled = optBool(o, 'enabled');
      if (enabled !== undefined) cmd.enabled = enabled;
      if (o['sessionId'] !== undefined) cmd.sessionId = sessionId(o);
      return withClient(cmd, client);
    }
    case 'unregister':
      return withClient(
        {
          type,
          namespace: name(o, 'namespace'),
          service: name(o, 'service'),
          id: name(o, 'id', LIMITS.idLength, INSTANCE_ID),
        },
        client,
      );
    case 'update':
      return withClient(
        {
          type,
          namespace: name(o, 'namespace'),
          service: name(o, 'service'),
          id: name(o, 'id', LIMITS.idLength, INSTANCE_ID),
          expectedVersion: int(o, 'expectedVersion', 0, Number.MAX_SAFE_INTEGER),
          patch: patch(o, clusterVersion),
        },
        client,
      );
    case 'setCheckHealth': {
      const cmd: {
        -readonly [K in keyof Omit<Extract<Command, { type: 'setCheckHealth' }>, 'client'>]: Extract<
          Command,
          { type: 'setCheckHealth' }
        >[K];
      } = {
        type,
        namespace: name(o, 'namespace'),
        service: name(o, 'service'),
        id: name(o, 'id', LIMITS.idLength, INSTANCE_ID),
        expectedVersion: int(o, 'expectedVersion', 0, Number.MAX_SAFE_INTEGER),
        health: settableHealth(o),
      };
      if (o['metadata'] !== undefined) cmd.metadata = metadata(o['metadata'], 'metadata', clusterVersion);
      return withClient(cmd, client);
    }
    case 'setAccessRules': {
      const rules = o['rules'];
      if (!isObject(rules) || !plainData(rules, 0)) throw new Invalid('rules', 'rules must be a JSON object');
      // The document's own rules (src/registry/access.ts) are part of this command's
      // replicated semantics: register and update are judged by what is stored here.
      const parsed = parseAccessRules(rules);
      if (!parsed.ok) throw new Invalid(parsed.field === 'rules' ? 'rules' : `rules.${parsed.field}`, parsed.message);
      const doc = parsed.value as unknown as AccessRules;
      const expectedRevision = optInt(o, 'expectedRevision', 0, Number.MAX_SAFE_INTEGER);
      return withClient(
        expectedRevision === undefined ? { type, rules: doc } : { type, rules: doc, expectedRevision },
        client,
      );
    }
    case 'setHealthPolicy': {
      // The policy's own rules (src/health/policy.ts) are part of this command's replicated
      // semantics: the canonical form it returns is what every replica stores.
      const parsed = parseHealthPolicy(o['policy']);
      if (!parsed.ok) throw new Invalid(parsed.field, parsed.message);
      const expectedRevision = optInt(o, 'expectedRevision', 0, Number.MAX_SAFE_INTEGER);
      return withClient(
        expectedRevision === undefined
          ? { type, policy: parsed.value }
          : { type, policy: parsed.value, expectedRevision },
        client,
      );
    }
    case 'bootstrapAcl':
    case 'createToken':
      return withClient({ type, ...tokenFields(o, type === 'bootstrapAcl') }, client);
    case 'revokeToken':
      return withClient({ type, id: name(o, 'id', LIMITS.tokenIdLength) }, client);
    case 'expiryIntent':
    case 'expire':
    case 'markSuspect':
      return {
        type,
        term: int(o, 'term', 0, Number.MAX_SAFE_INTEGER),
        sessionIds: sessionIds(o),
        now: int(o, 'now', 0, Number.MAX_SAFE_INTEGER),
      };
    case 'clearSuspect':
      return { type, term: int(o, 'term', 0, Number.MAX_SAFE_INTEGER), sessionIds: sessionIds(o) };
    case 'setClusterVersion':
      return {
        type,
        term: int(o, 'term', 0, Number.MAX_SAFE_INTEGER),
        version: int(o, 'version', 1, Number.MAX_SAFE_INTEGER),
      };
    case 'recordMemberAddresses':
      return { type, term: int(o, 'term', 0, Number.MAX_SAFE_INTEGER), addresses: memberAddresses(o) };
    case 'recordMemberStarted':
      return { type, member: text(o['member'], 'member', 256, false) };
    case 'setHealth':
      return {
        type,
        term: int(o, 'term', 0, Number.MAX_SAFE_INTEGER),
        namespace: name(o, 'namespace'),
        service: name(o, 'service'),
        id: name(o, 'id', LIMITS.idLength, INSTANCE_ID),
        health: settableHealth(o),
      };
  }
}

function invalidCommand(message: string): CommandError {
  return { ok: false, code: 'INVALID_COMMAND', message };
}

/** The command's shape and its client reference, before any field is checked; failures here are not cached for dedup. */
export type Envelope =
  | { readonly ok: true; readonly raw: Obj; readonly type: Command['type']; readonly client: ClientRef | undefined }
  | CommandError;

export function parseEnvelope(raw: unknown): Envelope {
  if (!isObject(raw)) return invalidCommand('a command must be an object');
  const type = raw['type'];
  if (
    typeof type !== 'string' ||
    !(CLIENT_COMMAND_TYPES.has(type) || LEADER_COMMAND_TYPES.has(type) || MEMBER_COMMAND_TYPES.has(type))
  ) {
    return invalidCommand(`unknown command type ${JSON.stringify(type)}`);
  }
  const c = raw['client'];
  if (c === undefined) return { ok: true, raw, type: type as Command['type'], client: undefined };
  if (LEADER_COMMAND_TYPES.has(type)) return invalidCommand(`${type} is proposed by the leader and takes no client`);
  if (MEMBER_COMMAND_TYPES.has(type)) return invalidCommand(`${type} is proposed by a member and takes no client`);
  if (
    !isObject(c) ||
    typeof c['id'] !== 'string' ||
    c['id'].length === 0 ||
    c['id'].length > LIMITS.clientIdLength ||
    typeof c['seq'] !== 'number' ||
    !Number.isSafeInteger(c['seq']) ||
    c['seq'] < 1
  ) {
    return invalidCommand(`client must be { id: string (1-${LIMITS.clientIdLength}), seq: integer >= 1 }`);
  }
  return { ok: true, raw, type: type as Command['type'], client: { id: c['id'], seq: c['seq'] } };
}

/** Apply passes the cluster version as of the entry; the API layer this build's (the most it accepts). */
export function parseFieldsOf(
  env: Extract<Envelope, { ok: true }>,
  clusterVersion: number = STATE_MACHINE_VERSION,
): { ok: true; command: Command } | CommandError {
  try {
    return { ok: true, command: parseFields(env.raw, env.type, env.client, clusterVersion) };
  } catch (e) {
    if (e instanceof Invalid) return { ok: false, code: 'INVALID_ARGUMENT', message: e.message, field: e.field };
    throw e;
  }
}

/** Validates and normalises a command; what the API layer calls before proposing. */
export function parseCommand(
  raw: unknown,
  clusterVersion: number = STATE_MACHINE_VERSION,
): { ok: true; command: Command } | CommandError {
  const env = parseEnvelope(raw);
  return env.ok ? parseFieldsOf(env, clusterVersion) : env;
}
