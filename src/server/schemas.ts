/** JSON schemas for every route's input; fastify validates before a handler runs. */
import { LIMITS } from '../registry/index.js';

const NAME = { type: 'string', minLength: 1, maxLength: LIMITS.nameLength, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$' } as const;
const ID = { type: 'string', minLength: 1, maxLength: LIMITS.idLength, pattern: '^[A-Za-z0-9][A-Za-z0-9._:@-]*$' } as const;

export const serviceParams = {
  type: 'object',
  required: ['ns', 'svc'],
  properties: { ns: NAME, svc: NAME },
} as const;

export const instanceParams = {
  type: 'object',
  required: ['ns', 'svc', 'id'],
  properties: { ns: NAME, svc: NAME, id: ID },
} as const;

export const sessionParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_-]+$' } },
} as const;

export const registerBody = {
  type: 'object',
  required: ['address', 'port'],
  additionalProperties: false,
  properties: {
    cluster: NAME,
    address: { type: 'string', minLength: 1, maxLength: LIMITS.addressLength },
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    weight: { type: 'integer', minimum: 0, maximum: LIMITS.maxWeight },
    tags: { type: 'array', maxItems: LIMITS.tags, items: { type: 'string', minLength: 1, maxLength: LIMITS.tagLength } },
    metadata: {
      type: 'object',
      maxProperties: LIMITS.metadataKeys,
      propertyNames: { maxLength: LIMITS.metadataKeyLength },
      additionalProperties: { type: 'string', maxLength: LIMITS.metadataValueLength },
    },
    sessionId: { type: 'string', minLength: 1, maxLength: 64 },
    enabled: { type: 'boolean' },
  },
} as const;

export const sessionBody = {
  type: 'object',
  required: ['ttlMs'],
  additionalProperties: false,
  properties: { ttlMs: { type: 'integer', minimum: LIMITS.minTtlMs, maximum: LIMITS.maxTtlMs } },
} as const;

export const readQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    consistency: { type: 'string', enum: ['linearizable', 'serializable'] },
    cluster: NAME,
  },
} as const;
