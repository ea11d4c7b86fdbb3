/**
 * Schemas for the routes' input, written once with TypeBox: each is the JSON schema fastify
 * validates with (validation.ts compiles it with Ajv, so a refusal is the catalogue's 400
 * naming the field), the parameter list the OpenAPI document shows, and, through `Static`
 * and the type provider, the type a handler reads its params, query and body as.
 */
import { type Static, type TUnsafe, Type } from '@sinclair/typebox';
import { HEALTH_FILTERS } from '../health/index.js';
import { LIMITS } from '../registry/index.js';

const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]*$';
const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._:@-]*$';

const described = (description: string | undefined) => (description === undefined ? {} : { description });

/** A namespace, service or cluster name, as the state machine takes it (src/registry/validate.ts). */
export const Name = (description?: string) =>
  Type.String({ minLength: 1, maxLength: LIMITS.nameLength, pattern: NAME_PATTERN, ...described(description) });
const InstanceId = (description?: string) =>
  Type.String({ minLength: 1, maxLength: LIMITS.idLength, pattern: ID_PATTERN, ...described(description) });
const Revision = (description?: string, minimum = 0) =>
  Type.Integer({ minimum, maximum: Number.MAX_SAFE_INTEGER, ...described(description) });

/**
 * One of a few strings: `{"type": "string", "enum": [...]}` as the API has always described
 * it (TypeBox's own unions would become `anyOf` of constants), typed as their union.
 */
export function StringEnum<const T extends readonly string[]>(values: T, description?: string): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...described(description) });
}

export const serviceParams = Type.Object({ ns: Name('Namespace.'), svc: Name('Service.') });

export const namespaceParams = Type.Object({ ns: Name('Namespace.') });

export const instanceParams = Type.Object({
  ns: Name('Namespace.'),
  svc: Name('Service.'),
  id: InstanceId('Instance id.'),
});

/**
 * A session id, exactly as the state machine takes it (src/registry/validate.ts): the one
 * schema for opening (the x-rollcall-session-id header), keepalive and close (the path)
 * and register (the body's sessionId), so an id one of them accepts, all accept.
 */
const SessionId = (description?: string) =>
  Type.String({ minLength: 1, maxLength: LIMITS.nameLength, pattern: ID_PATTERN, ...described(description) });
export const SESSION_ID = SessionId();

export const sessionParams = Type.Object({ id: SessionId('Session id.') });

/** Opening a session: the id the client may choose. */
export const sessionHeaders = Type.Object({ 'x-rollcall-session-id': Type.Optional(SESSION_ID) });

const TAGS = Type.Array(Type.String({ minLength: 1, maxLength: LIMITS.tagLength }), { maxItems: LIMITS.tags });
// Written as JSON schema: TypeBox's Record would describe the keys with patternProperties.
const METADATA = Type.Unsafe<Record<string, string>>({
  type: 'object',
  maxProperties: LIMITS.metadataKeys,
  propertyNames: { maxLength: LIMITS.metadataKeyLength },
  additionalProperties: { type: 'string', maxLength: LIMITS.metadataValueLength },
});
const WEIGHT = Type.Integer({ minimum: 0, maximum: LIMITS.maxWeight });

export const registerBody = Type.Object(
  {
    cluster: Type.Optional(Name()),
    address: Type.String({ minLength: 1, maxLength: LIMITS.addressLength }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    weight: Type.Optional(WEIGHT),
    tags: Type.Optional(TAGS),
    metadata: Type.Optional(METADATA),
    sessionId: Type.Optional(SESSION_ID),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false },
);

/** PATCH: each field given replaces the instance's value (metadata and tags whole). */
export const patchBody = Type.Object(
  {
    weight: Type.Optional(WEIGHT),
    metadata: Type.Optional(METADATA),
    tags: Type.Optional(TAGS),
    enabled: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: false, minProperties: 1 },
);

export const sessionBody = Type.Object(
  { ttlMs: Type.Integer({ minimum: LIMITS.minTtlMs, maximum: LIMITS.maxTtlMs }) },
  { additionalProperties: false },
);

/**
 * `consistency`: linearizable (the default: confirm with the leader first) or serializable
 * (this node's applied state at once); each route says what the two mean there.
 */
export const Consistency = (description?: string) => StringEnum(['linearizable', 'serializable'], description);

const CONSISTENCY = Consistency(
  "linearizable (default): ReadIndex through the leader, then answer; serializable: this node's applied state, possibly stale.",
);
const MIN_REVISION = Revision(
  'Wait (bounded) until this node has applied this revision, then answer from local state (implies serializable unless consistency=linearizable).',
);
const INCLUDE_DISABLED = Type.Boolean({ description: 'Also list disabled instances (admin views).' });
const HEALTH = StringEnum(
  HEALTH_FILTERS,
  'healthy: only healthy instances; usable: healthy, subhealthy and suspect (not down); all (default).',
);

/**
 * Pages, as Kubernetes and etcd page a list: `limit` items, then `continue` (opaque) for the
 * next page, every page read at the first page's revision (src/server/listing/serve.ts).
 */
export const PageLimit = (
  description = 'At most this many items (capped at 10,000, --list-max-items); `continue` is set when more are left. Without it, a listing larger than the cap is refused (LIMIT_EXCEEDED).',
) => Type.Integer({ minimum: 1, maximum: 1_000_000_000, description });

export const PAGE_QUERY = {
  limit: PageLimit(),
  continue: Type.String({
    minLength: 1,
    maxLength: 8192,
    description:
      'The `continue` of the previous page: the next page, read at the same revision as the first. Send the same path and filters.',
  }),
};

/** List query: filters, consistency, blocking query (index + wait), minRevision, pages. */
export const readQuery = Type.Object(
  {
    consistency: Type.Optional(CONSISTENCY),
    cluster: Type.Optional(Name('Only instances of this cluster.')),
    includeDisabled: Type.Optional(INCLUDE_DISABLED),
    health: Type.Optional(HEALTH),
    minRevision: Type.Optional(MIN_REVISION),
    index: Type.Optional(
      Revision(
        "Blocking query: answer once the service's revision differs from this (x-rollcall-index of the last answer), or when `wait` ends.",
      ),
    ),
    wait: Type.Optional(
      Type.String({
        pattern: '^[0-9]{1,9}(ms|s|m)$',
        description: 'Longest a blocking query waits, e.g. 500ms, 30s, 5m (default 5m, at most 10m).',
      }),
    ),
    limit: Type.Optional(PAGE_QUERY.limit),
    continue: Type.Optional(PAGE_QUERY.continue),
  },
  { additionalProperties: false },
);
export type ServiceListQuery = Static<typeof readQuery>;

/** Namespace-wide list: the list filters without cluster and the blocking query; pages. */
export const namespaceListQuery = Type.Object(
  {
    consistency: Type.Optional(CONSISTENCY),
    includeDisabled: Type.Optional(INCLUDE_DISABLED),
    health: Type.Optional(HEALTH),
    minRevision: Type.Optional(MIN_REVISION),
    limit: Type.Optional(PAGE_QUERY.limit),
    continue: Type.Optional(PAGE_QUERY.continue),
  },
  { additionalProperties: false },
);
export type NamespaceListQuery = Static<typeof namespaceListQuery>;

/** Single-resource reads: consistency and minRevision. */
export const getQuery = Type.Object(
  { consistency: Type.Optional(CONSISTENCY), minRevision: Type.Optional(MIN_REVISION) },
  { additionalProperties: false },
);

/** Reading one instance; `cluster` has always been accepted there (and has no effect). */
export const instanceGetQuery = Type.Object(
  {
    consistency: Type.Optional(CONSISTENCY),
    minRevision: Type.Optional(MIN_REVISION),
    cluster: Type.Optional(Name('Accepted for compatibility; has no effect on a single instance.')),
  },
  { additionalProperties: false },
);

export const watchQuery = Type.Object(
  {
    namespace: Type.Optional(Name('Only this namespace (needed by namespace-limited tokens).')),
    service: Type.Optional(Name('Only this service (needs namespace).')),
    cluster: Type.Optional(Name('Only this cluster of the service (needs service).')),
    fromRevision: Type.Optional(
      Revision(
        'Deliver every change with revision >= this still in history, then live ones. Default: live changes only.',
        1,
      ),
    ),
  },
  { additionalProperties: false },
);
