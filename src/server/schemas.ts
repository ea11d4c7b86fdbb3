/** JSON schemas for every route's input; fastify validates before a handler runs. */
import { LIMITS } from '../registry/index.js';

const NAME = { type: 'string', minLength: 1, maxLength: LIMITS.nameLength, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' } as const;
const ID = { type: 'string', minLength: 1, maxLength: LIMITS.idLength, pattern: '^[A-Za-z0-9][A-Za-z0-9._:@-]*$' } as const;
const REVISION = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER } as const;

export const serviceParams = {
  type: 'object',
  required: ['ns', 'svc'],
  properties: { ns: { ...NAME, description: 'Namespace.' }, svc: { ...NAME, description: 'Service.' } },
} as const;

export const namespaceParams = {
  type: 'object',
  required: ['ns'],
  properties: { ns: serviceParams.properties.ns },
} as const;

export const instanceParams = {
  type: 'object',
  required: ['ns', 'svc', 'id'],
  properties: { ...serviceParams.properties, id: { ...ID, description: 'Instance id.' } },
} as const;

/**
 * A session id, exactly as the state machine takes it (src/registry/validate.ts): the one
 * schema for opening (the x-rollcall-session-id header), keepalive and close (the path)
 * and register (the body's sessionId), so an id one of them accepts, all accept.
 */
export const SESSION_ID = { type: 'string', minLength: 1, maxLength: LIMITS.nameLength, pattern: '^[A-Za-z0-9][A-Za-z0-9._:@-]*$' } as const;

export const sessionParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { ...SESSION_ID, description: 'Session id.' } },
} as const;

/** Opening a session: the id the client may choose. */
export const sessionHeaders = {
  type: 'object',
  properties: { 'x-rollcall-session-id': SESSION_ID },
} as const;

const TAGS = { type: 'array', maxItems: LIMITS.tags, items: { type: 'string', minLength: 1, maxLength: LIMITS.tagLength } } as const;
const METADATA = {
  type: 'object',
  maxProperties: LIMITS.metadataKeys,
  propertyNames: { maxLength: LIMITS.metadataKeyLength },
  additionalProperties: { type: 'string', maxLength: LIMITS.metadataValueLength },
} as const;
const WEIGHT = { type: 'integer', minimum: 0, maximum: LIMITS.maxWeight } as const;

export const registerBody = {
  type: 'object',
  required: ['address', 'port'],
  additionalProperties: false,
  properties: {
    cluster: NAME,
    address: { type: 'string', minLength: 1, maxLength: LIMITS.addressLength },
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    weight: WEIGHT,
    tags: TAGS,
    metadata: METADATA,
    sessionId: SESSION_ID,
    enabled: { type: 'boolean' },
  },
} as const;

/** PATCH: each field given replaces the instance's value (metadata and tags whole). */
export const patchBody = {
  type: 'object',
  additionalProperties: false,
  minProperties: 1,
  properties: { weight: WEIGHT, metadata: METADATA, tags: TAGS, enabled: { type: 'boolean' } },
} as const;

export const sessionBody = {
  type: 'object',
  required: ['ttlMs'],
  additionalProperties: false,
  properties: { ttlMs: { type: 'integer', minimum: LIMITS.minTtlMs, maximum: LIMITS.maxTtlMs } },
} as const;

const CONSISTENCY = {
  type: 'string',
  enum: ['linearizable', 'serializable'],
  description: 'linearizable (default): ReadIndex through the leader, then answer; serializable: this node\'s applied state, possibly stale.',
} as const;
const MIN_REVISION = {
  ...REVISION,
  description: 'Wait (bounded) until this node has applied this revision, then answer from local state (implies serializable unless consistency=linearizable).',
} as const;

/**
 * Pages, as Kubernetes and etcd page a list: `limit` items, then `continue` (opaque) for the
 * next page, every page read at the first page's revision (src/server/listing/serve.ts).
 */
export const PAGE_QUERY = {
  limit: {
    type: 'integer',
    minimum: 1,
    maximum: 1_000_000_000,
    description: 'At most this many items (capped at 10,000, --list-max-items); `continue` is set when more are left. Without it, a listing larger than the cap is refused (LIMIT_EXCEEDED).',
  },
  continue: { type: 'string', minLength: 1, maxLength: 8192, description: 'The `continue` of the previous page: the next page, read at the same revision as the first. Send the same path and filters.' },
} as const;

/** List query: filters, consistency, blocking query (index + wait), minRevision, pages. */
export const readQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    consistency: CONSISTENCY,
    cluster: { ...NAME, description: 'Only instances of this cluster.' },
    includeDisabled: { type: 'boolean', description: 'Also list disabled instances (admin views).' },
    health: { type: 'string', enum: ['healthy', 'usable', 'all'], description: 'healthy: only healthy instances; usable: healthy, subhealthy and suspect (not down); all (default).' },
    minRevision: MIN_REVISION,
    index: { ...REVISION, description: 'Blocking query: answer once the service\'s revision differs from this (x-rollcall-index of the last answer), or when `wait` ends.' },
    wait: { type: 'string', pattern: '^[0-9]{1,9}(ms|s|m)$', description: 'Longest a blocking query waits, e.g. 500ms, 30s, 5m (default 5m, at most 10m).' },
    ...PAGE_QUERY,
  },
} as const;

/** Namespace-wide list: the list filters without cluster and the blocking query; pages. */
export const namespaceListQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    consistency: readQuery.properties.consistency,
    includeDisabled: readQuery.properties.includeDisabled,
    health: readQuery.properties.health,
    minRevision: readQuery.properties.minRevision,
    ...PAGE_QUERY,
  },
} as const;

/** Single-resource reads: consistency and minRevision. */
export const getQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { consistency: CONSISTENCY, minRevision: MIN_REVISION },
} as const;

/** Reading one instance; `cluster` has always been accepted there (and has no effect). */
export const instanceGetQuery = {
  type: 'object',
  additionalProperties: false,
  properties: { ...getQuery.properties, cluster: { ...NAME, description: 'Accepted for compatibility; has no effect on a single instance.' } },
} as const;

export const watchQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    namespace: { ...NAME, description: 'Only this namespace (needed by namespace-limited tokens).' },
    service: { ...NAME, description: 'Only this service (needs namespace).' },
    cluster: { ...NAME, description: 'Only this cluster of the service (needs service).' },
    fromRevision: { ...REVISION, minimum: 1, description: 'Deliver every change with revision >= this still in history, then live ones. Default: live changes only.' },
  },
} as const;
