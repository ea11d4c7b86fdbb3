/**
 * The OpenAPI 3.1 document of the HTTP API, generated from the routes as fastify registers
 * them: request schemas (params, querystring, body) are the ones fastify validates with,
 * responses and headers come from each route's `config.docs`, and error responses from the
 * error catalogue. Served at GET /openapi.json by every node.
 */
import type { RouteOptions } from 'fastify';
import { isClusterWide } from './auth.js';
import { ERROR_CATALOGUE, type ErrorCode } from './errors.js';
import type { RouteConfig } from './route-config.js';

interface CollectedRoute {
  readonly method: string;
  readonly url: string;
  readonly schema: Readonly<Record<string, unknown>>;
  readonly config: RouteConfig;
}

/** Errors any route can answer with: they are not repeated per route in `docs.errors`. */
export const COMMON_ERRORS: readonly ErrorCode[] = ['UNAUTHENTICATED', 'FORBIDDEN', 'INTERNAL'];

const instance = {
  type: 'object',
  required: [
    'id',
    'namespace',
    'service',
    'cluster',
    'address',
    'port',
    'weight',
    'tags',
    'metadata',
    'health',
    'enabled',
    'ephemeral',
    'createRevision',
    'modRevision',
    'version',
  ],
  properties: {
    id: { type: 'string' },
    namespace: { type: 'string' },
    service: { type: 'string' },
    cluster: { type: 'string', description: 'Group within the service (zone, VIP pool); `default` unless given.' },
    address: { type: 'string' },
    port: { type: 'integer', minimum: 1, maximum: 65535 },
    weight: {
      type: 'integer',
      minimum: 0,
      maximum: 10000,
      description: 'Default 100; 0 = listed but sent no traffic.',
    },
    tags: { type: 'array', items: { type: 'string' }, description: 'A set: unique and sorted.' },
    metadata: {
      type: 'object',
      additionalProperties: { type: 'string' },
      description: '`environment` is checked against the registry environment label.',
    },
    health: { type: 'string', enum: ['healthy', 'subhealthy', 'suspect', 'down'] },
    enabled: {
      type: 'boolean',
      description: 'Disabled instances are left out of lists unless `includeDisabled=true`.',
    },
    ephemeral: { type: 'boolean', description: 'Bound to a session (removed when it ends) or persistent.' },
    sessionId: { type: 'string', description: 'Present on ephemeral instances.' },
    createRevision: { type: 'integer' },
    modRevision: { type: 'integer' },
    version: { type: 'integer', description: '1 on create, +1 on every change; what `If-Match` compares.' },
  },
} as const;

const accessRule = {
  type: 'object',
  properties: {
    name: { type: 'string' },
    namespace: { type: 'string', description: 'A namespace, or `*`.' },
    service: { type: 'string', description: 'A service, or `*`.' },
    cidr: { type: 'string', description: 'An IPv4/IPv6 address or range, matched against the instance address.' },
  },
} as const;

export const COMPONENT_SCHEMAS: Record<string, unknown> = {
  Instance: instance,
  InstanceReply: {
    type: 'object',
    required: ['revision', 'instance'],
    properties: { revision: { type: 'integer' }, instance: { $ref: '#/components/schemas/Instance' } },
  },
  InstanceList: {
    type: 'object',
    required: ['revision', 'serviceRevision', 'instances'],
    properties: {
      revision: { type: 'integer', description: 'Registry revision this answer reflects.' },
      serviceRevision: {
        type: 'integer',
        description: 'Revision of the last change in this service; pass it as `index` for a blocking query.',
      },
      instances: { type: 'array', items: { $ref: '#/components/schemas/Instance' } },
    },
  },
  Error: {
    type: 'object',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message'],
        properties: {
          code: { type: 'string', enum: Object.keys(ERROR_CATALOGUE) },
          message: { type: 'string' },
          field: { type: 'string', description: 'The parameter, header or body field at fault.' },
          currentVersion: { type: 'integer', description: 'VERSION_MISMATCH: the version the instance has.' },
          rule: { type: 'string', description: 'ACCESS_DENIED: the rule that refused.' },
          leader: { type: 'string', description: 'The leader, when known.' },
          revision: { type: 'integer', description: 'TIMEOUT on minRevision: the revision this node has applied.' },
        },
      },
    },
  },
  AccessRules: {
    type: 'object',
    required: ['environment', 'requireEnvironment', 'allow', 'deny'],
    properties: {
      environment: { type: ['string', 'null'] },
      requireEnvironment: { type: 'boolean' },
      allow: { type: 'array', items: accessRule },
      deny: { type: 'array', items: accessRule },
    },
  },
  WatchEvent: {
    type: 'object',
    description: 'The `data:` of a change event; its SSE `id:` is `revision`.',
    required: ['revision', 'type', 'instance', 'cause'],
    properties: {
      revision: { type: 'integer' },
      type: { type: 'string', enum: ['put', 'delete'] },
      instance: { $ref: '#/components/schemas/Instance' },
      previous: { $ref: '#/components/schemas/Instance' },
      cause: {
        type: 'string',
        enum: [
          'register',
          'unregister',
          'update',
          'setHealth',
          'setCheckHealth',
          'markSuspect',
          'clearSuspect',
          'closeSession',
          'expire',
        ],
      },
    },
  },
};

/** Collects routes (wire with `app.addHook('onRoute', openapi.collect)`). */
export class OpenApiBuilder {
  private readonly routes: CollectedRoute[] = [];
  private cached: Record<string, unknown> | null = null;

  constructor(
    private readonly info: { readonly title: string; readonly version: string; readonly description: string },
  ) {}

  private readonly undocumented: string[] = [];

  readonly collect = (route: RouteOptions): void => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    const config = route.config as RouteConfig | undefined;
    for (const method of methods) {
      if (method === 'HEAD') continue;
      if (config?.docs === undefined) {
        this.undocumented.push(`${method} ${route.url}`);
        continue;
      }
      this.routes.push({
        method: method.toLowerCase(),
        url: route.url,
        schema: (route.schema ?? {}) as Record<string, unknown>,
        config,
      });
      this.cached = null;
    }
  };

  /** Routes registered without `config.docs` (left out of the document). */
  undocumentedRoutes(): readonly string[] {
    return this.undocumented;
  }

  /** Route patterns as fastify knows them, e.g. `GET /v1/watch`. */
  routeList(): string[] {
    return this.routes.map((r) => `${r.method.toUpperCase()} ${r.url}`);
  }

  document(): Record<string, unknown> {
    if (this.cached) return this.cached;
    const paths: Record<string, Record<string, unknown>> = {};
    for (const r of this.routes) {
      const path = r.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
      (paths[path] ??= {})[r.method] = this.operation(r);
    }
    this.cached = {
      openapi: '3.1.0',
      info: this.info,
      tags: [
        { name: 'sessions', description: 'Sessions keep ephemeral instances alive.' },
        { name: 'instances', description: 'Register, look up, deregister; blocking queries.' },
        { name: 'watch', description: 'Server-Sent Events streams of changes.' },
        { name: 'admin', description: 'Compare-and-set updates and access rules (admin tokens).' },
        { name: 'cluster', description: 'Cluster status and leadership.' },
        { name: 'operations', description: 'Probes, metrics and this document.' },
      ],
      paths,
      components: {
        schemas: COMPONENT_SCHEMAS,
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'Only when the node runs with --token-file.' },
        },
        responses: {
          Error: {
            description: 'An error from the catalogue.',
            content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
          },
        },
      },
      'x-error-catalogue': ERROR_CATALOGUE,
    };
    return this.cached;
  }

  private operation(r: CollectedRoute): Record<string, unknown> {
    const d = r.config.docs;
    const parameters: Record<string, unknown>[] = [];
    const addFrom = (where: 'path' | 'query', schema: unknown) => {
      const s = schema as
        | { properties?: Record<string, Record<string, unknown>>; required?: readonly string[] }
        | undefined;
      for (const [name, prop] of Object.entries(s?.properties ?? {})) {
        const { description, ...rest } = prop;
        parameters.push({
          name,
          in: where,
          required: where === 'path' || (s?.required ?? []).includes(name),
          ...(typeof description === 'string' ? { description } : {}),
          schema: rest,
        });
      }
    };
    addFrom('path', r.schema['params']);
    addFrom('query', r.schema['querystring']);
    for (const h of d.headers ?? []) {
      parameters.push({
        name: h.name,
        in: 'header',
        required: h.required ?? false,
        description: h.description,
        schema: h.schema ?? { type: 'string' },
      });
    }
    const responses: Record<string, unknown> = {};
    for (const [status, res] of Object.entries(d.responses)) {
      const headers = Object.fromEntries(
        Object.entries(res.headers ?? {}).map(([k, v]) => [k, { description: v, schema: { type: 'string' } }]),
      );
      responses[status] = {
        description: res.description,
        ...(Object.keys(headers).length > 0 ? { headers } : {}),
        ...(res.schema ? { content: { [res.contentType ?? 'application/json']: { schema: res.schema } } } : {}),
      };
    }
    const byStatus = new Map<number, ErrorCode[]>();
    const codes = new Set<ErrorCode>([...d.errors, ...(r.config.access === 'public' ? [] : COMMON_ERRORS)]);
    if (r.config.access === 'public') codes.add('INTERNAL');
    for (const code of codes) {
      const status = ERROR_CATALOGUE[code].status;
      byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
    }
    for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
      responses[String(status)] = {
        description: list.map((c) => `\`${c}\`: ${ERROR_CATALOGUE[c].description}`).join('\n\n'),
        content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } },
      };
    }
    const body = r.schema['body'];
    return {
      operationId: d.operationId,
      summary: d.summary,
      ...(d.description ? { description: d.description } : {}),
      tags: [d.tag],
      ...(parameters.length > 0 ? { parameters } : {}),
      ...(body ? { requestBody: { required: true, content: { 'application/json': { schema: body } } } } : {}),
      responses,
      ...(r.config.access === 'public'
        ? { security: [] }
        : { security: [{ bearer: [] }], 'x-rollcall-role': r.config.access }),
      // Needs an admin token without namespace or service-prefix limits (auth.ts, isClusterWide).
      ...(isClusterWide(r.config.access, r.config.namespace === undefined ? undefined : null)
        ? { 'x-rollcall-cluster-wide': true }
        : {}),
    };
  }
}
