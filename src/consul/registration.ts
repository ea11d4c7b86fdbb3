/**
 * `PUT /v1/agent/service/register`: a Consul service definition read into what Rollcall
 * registers. Field names as Consul takes them: PascalCase, or snake_case (`check_id`,
 * `deregister_critical_service_after`), any case; `Meta` keys are the user's and kept as given.
 *
 * Rollcall runs no checks of its own: a TTL check is a session (src/consul/ttl-checks.ts);
 * HTTP, TCP, gRPC, script and the other kinds are refused with 400 naming the field.
 * At most one TTL check per service: an instance belongs to one session.
 */

import { LIMITS, RECORD_KEY_UNCOUNTED_SINCE, STATE_MACHINE_VERSION } from '../registry/index.js';
import { CHECK_META_KEY, type ConsulStatus, isConsulStatus } from './check-record.js';
import { parseGoDuration } from './duration.js';
import { ConsulError } from './errors.js';

export interface TtlCheck {
  readonly id: string;
  readonly name: string;
  readonly ttlMs: number;
  readonly status: ConsulStatus;
  readonly notes: string;
}

export interface Registration {
  readonly service: string;
  readonly id: string;
  /** null: not given (the caller's address is used). */
  readonly address: string | null;
  readonly port: number;
  readonly tags: readonly string[];
  readonly meta: Readonly<Record<string, string>>;
  /** `Weights.Passing`; null: not given (Rollcall's default). */
  readonly weight: number | null;
  readonly warningWeight: number | null;
  readonly check: TtlCheck | null;
  /** The body's `Namespace` (Consul Enterprise), used when the request has no `?ns=`. */
  readonly namespace: string | null;
}

/** Check kinds Rollcall does not run, by their normalised field name. */
const RUN_CHECKS: Readonly<Record<string, string>> = {
  http: 'HTTP',
  tcp: 'TCP',
  tcpusetls: 'TCPUseTLS',
  grpc: 'GRPC',
  h2ping: 'H2PING',
  udp: 'UDP',
  script: 'Script',
  args: 'Args',
  scriptargs: 'ScriptArgs',
  dockercontainerid: 'DockerContainerID',
  aliasnode: 'AliasNode',
  aliasservice: 'AliasService',
  osservice: 'OSService',
};

const MIN_TTL_MS = 1000;
const MAX_TTL_MS = 86_400_000;
const MAX_WEIGHT = 10_000;
/**
 * A check's Notes: the check record (id, name, notes, an output of up to 1 KB, JSON-escaped)
 * must fit the registry's 4 KB metadata value.
 */
export const MAX_NOTES = 1024;
/** Consul's limit on a service's Meta keys (the registry's too). */
export const MAX_META = LIMITS.metadataKeys;

/**
 * User Meta keys beside Rollcall's own record key: 64, as Consul allows, from the cluster
 * version at which the registry stops counting that key (v4); 63 in a cluster still below.
 */
export function maxMetaWithRecord(clusterVersion: number): number {
  return clusterVersion >= RECORD_KEY_UNCOUNTED_SINCE ? MAX_META : MAX_META - 1;
}

type Obj = Record<string, unknown>;

/** Keys lower-cased without underscores (`CheckID`, `check_id` → `checkid`); values untouched. */
function normalise(o: Obj): Obj {
  const out: Obj = {};
  for (const [k, v] of Object.entries(o)) out[k.replace(/_/g, '').toLowerCase()] = v;
  return out;
}

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(o: Obj, key: string, field: string): string | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string') throw new ConsulError(400, `${field}: must be a string`);
  return v;
}

function int(o: Obj, key: string, field: string, min: number, max: number): number | null {
  const v = o[key];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max)
    throw new ConsulError(400, `${field}: must be an integer from ${min} to ${max}`);
  return v;
}

/** Parses the JSON body text; Consul's words for a body it cannot read. */
export function parseBody(text: unknown): Obj {
  if (typeof text !== 'string' || text.trim() === '') throw new ConsulError(400, 'Request decode failed: empty body');
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new ConsulError(400, `Request decode failed: ${(err as Error).message}`.slice(0, 200));
  }
  if (!isObj(v)) throw new ConsulError(400, 'Request decode failed: expected a JSON object');
  return v;
}

/** `clusterVersion`: the cluster's (replicated), which decides how many Meta keys fit beside a check. */
export function parseRegistration(body: Obj, clusterVersion: number = STATE_MACHINE_VERSION): Registration {
  const o = normalise(body);
  const service = str(o, 'name', 'Name');
  if (service === null || service === '') throw new ConsulError(400, 'Missing service name');
  const id = str(o, 'id', 'ID') || service;
  for (const [key, field] of [
    ['connect', 'Connect'],
    ['proxy', 'Proxy'],
  ] as const) {
    if (o[key] !== undefined && o[key] !== null)
      throw new ConsulError(400, `${field}: Rollcall does not serve Connect (service mesh)`);
  }
  const kind = str(o, 'kind', 'Kind');
  if (kind !== null && kind !== '')
    throw new ConsulError(400, `Kind: Rollcall registers plain services only, not ${JSON.stringify(kind)}`);
  const port = int(o, 'port', 'Port', 0, 65_535) ?? 0;
  if (port === 0) throw new ConsulError(400, 'Port: Rollcall needs a port from 1 to 65535');
  const address = str(o, 'address', 'Address');
  const tags = o['tags'] ?? [];
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string'))
    throw new ConsulError(400, 'Tags: must be an array of strings');
  const meta = o['meta'] ?? {};
  if (!isObj(meta) || !Object.values(meta).every((v) => typeof v === 'string'))
    throw new ConsulError(400, 'Meta: must be an object of strings');
  if (CHECK_META_KEY in meta) throw new ConsulError(400, `Meta.${CHECK_META_KEY}: reserved by Rollcall`);
  let weight: number | null = null;
  let warningWeight: number | null = null;
  const w = o['weights'];
  if (w !== undefined && w !== null) {
    if (!isObj(w)) throw new ConsulError(400, 'Weights: must be an object');
    const wn = normalise(w);
    weight = int(wn, 'passing', 'Weights.Passing', 1, MAX_WEIGHT);
    warningWeight = int(wn, 'warning', 'Weights.Warning', 0, MAX_WEIGHT);
  }
  const checks: { def: Obj; field: string }[] = [];
  const one = o['check'];
  if (one !== undefined && one !== null) {
    if (!isObj(one)) throw new ConsulError(400, 'Check: must be an object');
    checks.push({ def: one, field: 'Check' });
  }
  const many = o['checks'];
  if (many !== undefined && many !== null) {
    if (!Array.isArray(many) || !many.every(isObj)) throw new ConsulError(400, 'Checks: must be an array of objects');
    for (const [i, def] of many.entries()) checks.push({ def, field: `Checks[${i}]` });
  }
  const parsed = checks.map(({ def, field }) => parseCheck(def, field, id, service));
  if (parsed.length > 1) throw new ConsulError(400, `${checks[1]!.field}: Rollcall takes one TTL check per service`);
  // Rollcall keeps the check and Weights.Warning in one metadata key of its own, which a
  // cluster below v4 counts toward the registry's 64: say so here, naming Consul's field.
  const metaKeys = Object.keys(meta).length;
  const withRecord = parsed.length > 0 || warningWeight !== null;
  const max = withRecord ? maxMetaWithRecord(clusterVersion) : MAX_META;
  if (metaKeys > max) {
    throw new ConsulError(
      400,
      max < MAX_META
        ? `Meta: at most ${max} keys with a check or Weights.Warning until every node runs a build of state-machine version ${RECORD_KEY_UNCOUNTED_SINCE} (Rollcall keeps them in one more key); ${metaKeys} given`
        : `Meta: at most ${max} keys; ${metaKeys} given`,
    );
  }
  const namespace = str(o, 'namespace', 'Namespace');
  return {
    service,
    id,
    address: address === '' ? null : address,
    port,
    tags: tags as string[],
    meta: meta as Record<string, string>,
    weight,
    warningWeight,
    check: parsed[0] ?? null,
    namespace: namespace === '' ? null : namespace,
  };
}

function parseCheck(raw: Obj, field: string, serviceId: string, service: string): TtlCheck {
  const o = normalise(raw);
  for (const [key, name] of Object.entries(RUN_CHECKS)) {
    const v = o[key];
    if (v !== undefined && v !== null && v !== '' && v !== false && !(Array.isArray(v) && v.length === 0)) {
      throw new ConsulError(400, `${field}.${name}: Rollcall runs no such checks; use a TTL check`);
    }
  }
  const ttlText = str(o, 'ttl', `${field}.TTL`);
  if (ttlText === null || ttlText === '')
    throw new ConsulError(400, `${field}.TTL: required (Rollcall takes TTL checks only)`);
  const ttl = parseGoDuration(ttlText);
  if (ttl === null)
    throw new ConsulError(400, `${field}.TTL: not a duration: ${JSON.stringify(ttlText)}`.slice(0, 120));
  if (ttl < MIN_TTL_MS || ttl > MAX_TTL_MS) throw new ConsulError(400, `${field}.TTL: must be from 1s to 24h`);
  const status = str(o, 'status', `${field}.Status`) || 'critical';
  if (!isConsulStatus(status)) throw new ConsulError(400, `${field}.Status: must be passing, warning or critical`);
  const notes = str(o, 'notes', `${field}.Notes`) ?? '';
  // Checked here: past the registry's metadata value limit it would be refused as Meta.rollcall.consul.
  if (notes.length > MAX_NOTES)
    throw new ConsulError(400, `${field}.Notes: at most ${MAX_NOTES} characters (${notes.length} given)`);
  // DeregisterCriticalServiceAfter, Interval and Timeout are taken and not needed: a lapsed
  // TTL removes the instance at once (docs/consul.md).
  return {
    id: str(o, 'checkid', `${field}.CheckID`) || str(o, 'id', `${field}.ID`) || `service:${serviceId}`,
    name: str(o, 'name', `${field}.Name`) || `Service '${service}' check`,
    ttlMs: Math.round(ttl),
    status,
    notes,
  };
}
