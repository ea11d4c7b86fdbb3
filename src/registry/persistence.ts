/**
 * How the registry lives in the state-machine sublevel: key layout, record shapes, loading
 * everything into memory, and turning a batch's dirty set into LevelDB ops.
 *
 * Key families (names cannot contain '/', so every key parses unambiguously):
 *   \x00meta/applied      {index, term}         reserved, read by the snapshot routine
 *   \x00meta/conf         ConfState             reserved, read by the snapshot routine
 *   \x00meta/revision     {revision, emptied}
 *   \x00meta/cluster-version  number         absent = 1 (version.ts); builds before it skip \x00meta/ keys
 *   \x00meta/started-members  {id: index}    v6: members that have started (state.ts); absent = none
 *   i/<ns>/<svc>/<id>     Instance
 *   v/<ns>/<svc>          {revision}            services that have instances
 *   s/<sessionId>         Session
 *   d/<clientId>          {seq, index, result}  exactly-once table
 *   r/access              {rules, revision}
 *   r/health-policy       {policy, revision}    checked again with parseHealthPolicy on load
 *   a/bootstrap           {revision}            v3: the ACL was bootstrapped at that revision
 *   t/<tokenId>           AclToken              v3: a token (its secret's digest, never the secret)
 * Ops come out sorted by key, with one op per key, so replicas emit identical batches.
 */
import { decode, encode } from '../codec/index.js';
import { MsgpackReader, StringTable, ValueTable } from '../codec/reader.js';
import { parseHealthPolicy } from '../health/policy.js';
import type { CommandResult } from './commands.js';
import type { DedupRecord } from './dedup.js';
import { DedupTable } from './dedup.js';
import type { AclToken, ConfState, Instance, Session, StoredAccessRules, StoredHealthPolicy } from './model.js';
import { HEALTH_STATES, serviceKey } from './model.js';
import { Dirty, RegistryState } from './state.js';
import { BASE_CLUSTER_VERSION } from './version.js';

// Local copies until src/storage exports them; the values are fixed by the snapshot contract.
export const META_APPLIED_KEY = '\x00meta/applied';
export const META_CONF_KEY = '\x00meta/conf';
export const META_REVISION_KEY = '\x00meta/revision';
export const META_CLUSTER_VERSION_KEY = '\x00meta/cluster-version';
export const META_STARTED_MEMBERS_KEY = '\x00meta/started-members';
const META_PREFIX = '\x00meta/';
const INSTANCE_PREFIX = 'i/';
const SERVICE_PREFIX = 'v/';
const SESSION_PREFIX = 's/';
const DEDUP_PREFIX = 'd/';
const RULES_KEY = 'r/access';
const HEALTH_POLICY_KEY = 'r/health-policy';
const ACL_BOOTSTRAP_KEY = 'a/bootstrap';
const TOKEN_PREFIX = 't/';

/** Instances indexed per event-loop turn while loading. */
const INSTANCES_PER_TURN = 20_000;

const nextTurn = (): Promise<void> => new Promise<void>((resolve) => setImmediate(resolve));

export type BatchOp =
  | { readonly type: 'put'; readonly key: string; readonly value: Uint8Array }
  | { readonly type: 'del'; readonly key: string };

/**
 * All the registry needs from its sublevel: a full scan in key order, handed out in
 * batches (one await per batch, not per record: a restart reads 100,000+ records). A
 * store held in memory must give the event loop a turn between batches (an async
 * generator's await alone only runs microtasks).
 */
export interface SmStore {
  batches(): AsyncIterable<ReadonlyArray<readonly [string, Uint8Array]>>;
}

export class CorruptStateError extends Error {
  constructor(key: string, why: string) {
    super(`state machine record ${JSON.stringify(key)} is corrupt: ${why}`);
    this.name = 'CorruptStateError';
  }
}

export async function loadState(sm: SmStore, maxClients: number): Promise<RegistryState> {
  const dedup: [string, DedupRecord][] = [];
  const serviceRevisions = new Map<string, number>();
  const instances: Instance[] = [];
  const sessions: Session[] = [];
  let applied = { index: 0, term: 0 };
  let revision = { revision: 0, emptied: 0 };
  let conf: ConfState | null = null;
  let clusterVersion = BASE_CLUSTER_VERSION;
  let rules: StoredAccessRules | null = null;
  let healthPolicy: StoredHealthPolicy | null = null;
  let aclBootstrapRevision = 0;
  const tokens: AclToken[] = [];
  let startedMembers: [string, number][] = [];

  const reading = newInstanceReading();
  for await (const batch of sm.batches()) {
    for (const [key, value] of batch) {
      if (key.startsWith(INSTANCE_PREFIX)) {
        instances.push(decodeInstance(key, value, reading) ?? instance(key, decode<unknown>(value)));
        continue;
      }
      const rec = decode<unknown>(value);
      if (key === META_APPLIED_KEY) applied = { index: num(key, rec, 'index'), term: num(key, rec, 'term') };
      else if (key === META_REVISION_KEY)
        revision = { revision: num(key, rec, 'revision'), emptied: num(key, rec, 'emptied') };
      else if (key === META_CONF_KEY) conf = confState(key, rec);
      else if (key === META_CLUSTER_VERSION_KEY) clusterVersion = num(key, { version: rec }, 'version');
      else if (key === META_STARTED_MEMBERS_KEY)
        startedMembers = Object.keys(obj(key, rec)).map((id) => [id, num(key, rec, id)]);
      else if (key.startsWith(META_PREFIX))
        continue; // other owners' meta keys (e.g. snapshot bookkeeping)
      else if (key.startsWith(INSTANCE_PREFIX)) instances.push(instance(key, rec));
      else if (key.startsWith(SERVICE_PREFIX))
        serviceRevisions.set(key.slice(SERVICE_PREFIX.length), num(key, rec, 'revision'));
      else if (key.startsWith(SESSION_PREFIX)) sessions.push(session(key, rec));
      else if (key.startsWith(DEDUP_PREFIX)) dedup.push([key.slice(DEDUP_PREFIX.length), dedupRecord(key, rec)]);
      else if (key === RULES_KEY)
        rules = Object.freeze({ rules: obj(key, obj(key, rec)['rules']), revision: num(key, rec, 'revision') });
      else if (key === HEALTH_POLICY_KEY) healthPolicy = storedHealthPolicy(key, rec);
      else if (key === ACL_BOOTSTRAP_KEY) aclBootstrapRevision = num(key, rec, 'revision');
      else if (key.startsWith(TOKEN_PREFIX)) tokens.push(token(key, rec));
      else throw new CorruptStateError(key, 'unknown key');
    }
  }

  const state = new RegistryState(DedupTable.fromRecords(dedup, maxClients));
  state.appliedIndex = applied.index;
  state.appliedTerm = applied.term;
  state.revision = revision.revision;
  state.emptiedRevision = revision.emptied;
  state.conf = conf;
  state.clusterVersion = clusterVersion;
  state.rules = rules;
  state.healthPolicy = healthPolicy;
  state.aclBootstrapRevision = aclBootstrapRevision;
  for (const t of tokens) state.loadToken(t);
  for (const [id, index] of startedMembers) state.startedMembers.set(id, index);
  for (const s of sessions) state.sessions.set(s.id, s);
  // Indexing a million instances takes seconds: a turn of the event loop now and then, so a
  // node reloading after a snapshot install still answers its peers and clients meanwhile.
  for (let n = 0; n < instances.length; n += INSTANCES_PER_TURN) {
    if (n > 0) await nextTurn();
    state.loadInstances(instances, n, Math.min(instances.length, n + INSTANCES_PER_TURN));
  }
  for (const [sk, svc] of state.services) {
    let rev = serviceRevisions.get(sk) ?? 0;
    for (const i of svc.byId.values()) rev = Math.max(rev, i.modRevision);
    svc.revision = rev;
  }
  return state;
}

/** The ops that make storage equal to memory for everything the batch touched; resets the dirty set. */
export function drainOps(state: RegistryState): BatchOp[] {
  const d = state.dirty;
  state.dirty = new Dirty();
  const ops: BatchOp[] = [];
  const put = (key: string, value: unknown): void => {
    ops.push({ type: 'put', key, value: encode(value) });
  };
  const putOrDel = (key: string, value: unknown): void => {
    if (value === undefined) ops.push({ type: 'del', key });
    else put(key, value);
  };
  if (d.applied) put(META_APPLIED_KEY, { index: state.appliedIndex, term: state.appliedTerm });
  if (d.conf && state.conf !== null) put(META_CONF_KEY, state.conf);
  if (d.clusterVersion) put(META_CLUSTER_VERSION_KEY, state.clusterVersion);
  if (d.startedMembers) {
    // One canonical encoding on every replica: ids sorted; deleted once empty.
    const ids = [...state.startedMembers.keys()].sort();
    putOrDel(
      META_STARTED_MEMBERS_KEY,
      ids.length === 0 ? undefined : Object.fromEntries(ids.map((id) => [id, state.startedMembers.get(id)!])),
    );
  }
  if (d.revision) put(META_REVISION_KEY, { revision: state.revision, emptied: state.emptiedRevision });
  for (const k of d.instances) putOrDel(INSTANCE_PREFIX + k, state.instances.get(k));
  for (const k of d.services) {
    const svc = state.services.get(k);
    putOrDel(SERVICE_PREFIX + k, svc === undefined ? undefined : { revision: svc.revision });
  }
  for (const id of d.sessions) putOrDel(SESSION_PREFIX + id, state.sessions.get(id));
  for (const id of d.clients) putOrDel(DEDUP_PREFIX + id, state.dedup.get(id));
  if (d.rules) putOrDel(RULES_KEY, state.rules ?? undefined);
  if (d.healthPolicy) putOrDel(HEALTH_POLICY_KEY, state.healthPolicy ?? undefined);
  if (d.aclBootstrap) put(ACL_BOOTSTRAP_KEY, { revision: state.aclBootstrapRevision });
  for (const id of d.tokens) putOrDel(TOKEN_PREFIX + id, state.tokens.get(id));
  // Any fixed order would do (a batch is atomic); sorting makes it independent of touch order.
  return ops.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

// ---- record decoding: strict, because a silently half-read record would fork this replica

function obj(key: string, v: unknown): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CorruptStateError(key, 'not an object');
  return v as Record<string, unknown>;
}

function num(key: string, v: unknown, field: string): number {
  const x = obj(key, v)[field];
  if (typeof x !== 'number' || !Number.isFinite(x)) throw new CorruptStateError(key, `${field} is not a number`);
  return x;
}

function str(key: string, v: unknown, field: string): string {
  const x = obj(key, v)[field];
  if (typeof x !== 'string') throw new CorruptStateError(key, `${field} is not a string`);
  return x;
}

function strings(key: string, v: unknown): readonly string[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string'))
    throw new CorruptStateError(key, 'expected a string array');
  return Object.freeze([...(v as string[])]);
}

function confState(key: string, v: unknown): ConfState {
  const o = obj(key, v);
  return Object.freeze({ voters: strings(key, o['voters']), learners: strings(key, o['learners']) });
}

export function instance(key: string, v: unknown): Instance {
  const o = obj(key, v);
  const health = o['health'];
  if (typeof health !== 'string' || !(HEALTH_STATES as readonly string[]).includes(health))
    throw new CorruptStateError(key, 'bad health');
  const sessionId = o['sessionId'];
  if (sessionId !== null && typeof sessionId !== 'string') throw new CorruptStateError(key, 'bad sessionId');
  if (typeof o['enabled'] !== 'boolean') throw new CorruptStateError(key, 'bad enabled');
  const metadata = obj(key, o['metadata']);
  for (const x of Object.values(metadata)) if (typeof x !== 'string') throw new CorruptStateError(key, 'bad metadata');
  const inst: Instance = {
    id: str(key, o, 'id'),
    namespace: str(key, o, 'namespace'),
    service: str(key, o, 'service'),
    cluster: str(key, o, 'cluster'),
    address: str(key, o, 'address'),
    port: num(key, o, 'port'),
    weight: num(key, o, 'weight'),
    tags: strings(key, o['tags']),
    metadata: Object.freeze(metadata as Record<string, string>),
    health: health as Instance['health'],
    enabled: o['enabled'],
    sessionId,
    createRevision: num(key, o, 'createRevision'),
    modRevision: num(key, o, 'modRevision'),
    version: num(key, o, 'version'),
  };
  if (key !== `${INSTANCE_PREFIX}${serviceKey(inst.namespace, inst.service)}/${inst.id}`)
    throw new CorruptStateError(key, 'key does not match record');
  return Object.freeze(inst);
}

/** What decodeInstance keeps from one record to the next while a load reads many. */
export interface InstanceReading {
  readonly reader: MsgpackReader;
  readonly strings: StringTable;
  /**
   * The namespace and service of the instance decoded last: records come in key order, so
   * a service's instances follow one another and share these two strings.
   */
  namespace: string;
  service: string;
  /** Metadata maps and tag lists by their bytes: instances with the same ones share one frozen value. */
  readonly metadata: ValueTable<Readonly<Record<string, string>>>;
  readonly tags: ValueTable<readonly string[]>;
}

export function newInstanceReading(): InstanceReading {
  return {
    reader: new MsgpackReader(),
    strings: new StringTable(),
    namespace: '',
    service: '',
    metadata: new ValueTable(),
    tags: new ValueTable(),
  };
}

/**
 * The instance record of `key` read straight from its msgpack bytes, for the start-up
 * load (the bulk of it: one record per instance). It gives exactly what
 * `instance(key, decode(bytes))` gives, or undefined whenever it is not sure to (a form
 * the reader does not read, a non-ASCII string, a field missing, repeated, unknown or of
 * the wrong type, a key that does not match): the caller then takes that general path,
 * whose checks report the fault. Skipped: the intermediate object msgpackr would build,
 * a second pass to check it, and most of the strings (shared through `reading`).
 */
export function decodeInstance(key: string, bytes: Uint8Array, reading: InstanceReading): Instance | undefined {
  const r = reading.reader.reset(bytes);
  const strings = reading.strings;
  const near = reading;
  const fields = r.mapLength();
  if (fields < 0) return undefined;
  let id: string | undefined;
  let namespace: string | undefined;
  let service: string | undefined;
  let cluster: string | undefined;
  let address: string | undefined;
  let port: number | undefined;
  let weight: number | undefined;
  let tags: readonly string[] | undefined;
  let metadata: Readonly<Record<string, string>> | undefined;
  let health: Instance['health'] | undefined;
  let enabled: boolean | undefined;
  let sessionId: string | null | undefined;
  let createRevision: number | undefined;
  let modRevision: number | undefined;
  let version: number | undefined;
  for (let f = 0; f < fields; f++) {
    if (!r.stringBytes()) return undefined;
    // Each name is told apart by its length and first letter, then checked whole; a name
    // seen twice gives up (msgpackr would keep the last value).
    switch (r.strEnd - r.strStart) {
      case 2:
        if (id !== undefined || !r.lastStringIs('id')) return undefined;
        id = r.string();
        if (id === undefined) return undefined;
        break;
      case 9:
        if (r.lastStringIs('namespace')) {
          if (namespace !== undefined || !r.stringBytes()) return undefined;
          if (!r.lastStringIs(near.namespace)) near.namespace = r.lastString();
          namespace = near.namespace;
        } else if (r.lastStringIs('sessionId')) {
          if (sessionId !== undefined) return undefined;
          sessionId = r.nil() ? null : r.string();
          if (sessionId === undefined) return undefined;
        } else return undefined;
        break;
      case 7:
        if (r.lastStringIs('service')) {
          if (service !== undefined || !r.stringBytes()) return undefined;
          if (!r.lastStringIs(near.service)) near.service = r.lastString();
          service = near.service;
        } else if (r.lastStringIs('cluster')) {
          if (cluster !== undefined || (cluster = r.string(strings)) === undefined) return undefined;
        } else if (r.lastStringIs('address')) {
          if (address !== undefined || (address = r.string()) === undefined) return undefined;
        } else if (r.lastStringIs('enabled')) {
          if (enabled !== undefined || (enabled = r.boolean()) === undefined) return undefined;
        } else if (r.lastStringIs('version')) {
          if (version !== undefined || (version = r.number()) === undefined) return undefined;
        } else return undefined;
        break;
      case 4:
        if (r.lastStringIs('port')) {
          if (port !== undefined || (port = r.number()) === undefined) return undefined;
        } else if (r.lastStringIs('tags')) {
          if (tags !== undefined || (tags = readTags(r, reading)) === undefined) return undefined;
        } else return undefined;
        break;
      case 6:
        if (r.lastStringIs('weight')) {
          if (weight !== undefined || (weight = r.number()) === undefined) return undefined;
        } else if (r.lastStringIs('health')) {
          if (health !== undefined || !r.stringBytes()) return undefined;
          health = HEALTH_STATES.find((h) => r.lastStringIs(h));
          if (health === undefined) return undefined;
        } else return undefined;
        break;
      case 8:
        if (metadata !== undefined || !r.lastStringIs('metadata')) return undefined;
        metadata = readMetadata(r, reading);
        if (metadata === undefined) return undefined;
        break;
      case 14:
        if (createRevision !== undefined || !r.lastStringIs('createRevision')) return undefined;
        if ((createRevision = r.number()) === undefined) return undefined;
        break;
      case 11:
        if (modRevision !== undefined || !r.lastStringIs('modRevision')) return undefined;
        if ((modRevision = r.number()) === undefined) return undefined;
        break;
      default:
        return undefined;
    }
  }
  if (
    !r.atEnd ||
    id === undefined ||
    namespace === undefined ||
    service === undefined ||
    cluster === undefined ||
    address === undefined ||
    port === undefined ||
    weight === undefined ||
    tags === undefined ||
    metadata === undefined ||
    health === undefined ||
    enabled === undefined ||
    sessionId === undefined ||
    createRevision === undefined ||
    modRevision === undefined ||
    version === undefined
  )
    return undefined;
  // The key must be i/<namespace>/<service>/<id>: checked in place, without building it.
  const p = INSTANCE_PREFIX.length;
  if (
    key.length !== p + namespace.length + service.length + id.length + 2 ||
    !key.startsWith(namespace, p) ||
    key.charCodeAt(p + namespace.length) !== 0x2f ||
    !key.startsWith(service, p + namespace.length + 1) ||
    key.charCodeAt(p + namespace.length + service.length + 1) !== 0x2f ||
    !key.endsWith(id)
  )
    return undefined;
  // The field order of apply.ts's build(), so loaded instances share its objects' shape.
  return Object.freeze({
    id,
    namespace,
    service,
    cluster,
    address,
    port,
    weight,
    tags,
    metadata,
    health,
    enabled,
    sessionId,
    createRevision,
    modRevision,
    version,
  });
}

/**
 * Steps over `count` strings (a map's keys and values, an array's items) without reading
 * them; false if one is not a string. The bytes stepped over are then the whole map or
 * array, to look up in a ValueTable: a hit means bytes equal to ones decoded before (and
 * found ASCII then); a miss rewinds and decodes them, with every check.
 */
function skipStrings(r: MsgpackReader, count: number): boolean {
  for (let i = 0; i < count; i++) if (!r.skipString()) return false;
  return true;
}

function readTags(r: MsgpackReader, reading: InstanceReading): readonly string[] | undefined {
  const start = r.pos;
  const n = r.arrayLength();
  if (n < 0 || !skipStrings(r, n)) return undefined;
  const end = r.pos;
  const known = reading.tags.get(r.bytes, start, end);
  if (known !== undefined) return known;
  r.pos = start;
  r.arrayLength();
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const t = r.string(reading.strings);
    if (t === undefined) return undefined;
    out[i] = t;
  }
  const tags = Object.freeze(out);
  reading.tags.set(r.bytes, start, end, tags);
  return tags;
}

function readMetadata(r: MsgpackReader, reading: InstanceReading): Readonly<Record<string, string>> | undefined {
  const start = r.pos;
  const n = r.mapLength();
  if (n < 0 || !skipStrings(r, 2 * n)) return undefined;
  const end = r.pos;
  const known = reading.metadata.get(r.bytes, start, end);
  if (known !== undefined) return known;
  r.pos = start;
  r.mapLength();
  const out: Record<string, string> = {};
  for (let i = 0; i < n; i++) {
    const k = r.string(reading.strings);
    // msgpackr renames __proto__, and keeps the last of a repeated key: leave both to it.
    if (k === undefined || k === '__proto__' || Object.hasOwn(out, k)) return undefined;
    const v = r.string(reading.strings);
    if (v === undefined) return undefined;
    out[k] = v;
  }
  const metadata = Object.freeze(out);
  reading.metadata.set(r.bytes, start, end, metadata);
  return metadata;
}

function session(key: string, v: unknown): Session {
  const o = obj(key, v);
  const since = o['suspectSince'];
  if (since !== null && typeof since !== 'number') throw new CorruptStateError(key, 'bad suspectSince');
  const s: Session = {
    id: str(key, o, 'id'),
    ttlMs: num(key, o, 'ttlMs'),
    openedAt: num(key, o, 'openedAt'),
    createRevision: num(key, o, 'createRevision'),
    suspectSince: since,
  };
  if (key !== SESSION_PREFIX + s.id) throw new CorruptStateError(key, 'key does not match record');
  return Object.freeze(s);
}

function optStrings(key: string, v: unknown): readonly string[] | null {
  return v === null ? null : strings(key, v);
}

function token(key: string, v: unknown): AclToken {
  const o = obj(key, v);
  const role = str(key, o, 'role');
  if (role !== 'read' && role !== 'register' && role !== 'admin') throw new CorruptStateError(key, 'bad role');
  const t: AclToken = {
    id: str(key, o, 'id'),
    name: str(key, o, 'name'),
    role,
    namespaces: optStrings(key, o['namespaces']),
    servicePrefixes: optStrings(key, o['servicePrefixes']),
    secretHash: str(key, o, 'secretHash'),
    createRevision: num(key, o, 'createRevision'),
  };
  if (key !== TOKEN_PREFIX + t.id) throw new CorruptStateError(key, 'key does not match record');
  return Object.freeze(t);
}

function storedHealthPolicy(key: string, v: unknown): StoredHealthPolicy {
  const parsed = parseHealthPolicy(obj(key, v)['policy']);
  if (!parsed.ok) throw new CorruptStateError(key, parsed.message);
  return Object.freeze({ policy: parsed.value, revision: num(key, v, 'revision') });
}

function dedupRecord(key: string, v: unknown): DedupRecord {
  const o = obj(key, v);
  const result = obj(key, o['result']);
  if (typeof result['ok'] !== 'boolean') throw new CorruptStateError(key, 'bad result');
  return Object.freeze({
    seq: num(key, o, 'seq'),
    index: num(key, o, 'index'),
    result: Object.freeze(result) as unknown as CommandResult,
  });
}
