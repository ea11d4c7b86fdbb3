/**
 * Per-route configuration every route declares: who may call it (checked by the auth
 * hook), where its namespace comes from (for namespace-limited tokens), and its
 * documentation (read by the OpenAPI generator). Request schemas stay in `schema`, where
 * fastify validates them; responses are documented here rather than in `schema.response`,
 * so documentation never changes what is serialized.
 */
import type { Permission } from './auth.js';
import type { ErrorCode } from './errors.js';

export interface ResponseDoc {
  readonly description: string;
  /** A JSON schema, or a `$ref` into components. */
  readonly schema?: Readonly<Record<string, unknown>>;
  /** Default application/json. */
  readonly contentType?: string;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface HeaderDoc {
  readonly name: string;
  readonly description: string;
  readonly required?: boolean;
  readonly schema?: Readonly<Record<string, unknown>>;
}

export interface RouteDocs {
  readonly operationId: string;
  readonly summary: string;
  readonly description?: string;
  readonly tag: 'sessions' | 'instances' | 'watch' | 'admin' | 'cluster' | 'operations';
  readonly headers?: readonly HeaderDoc[];
  readonly responses: Readonly<Record<number, ResponseDoc>>;
  /** Catalogue errors this route may answer with, beyond the ones every route can. */
  readonly errors: readonly ErrorCode[];
}

export interface RouteConfig {
  readonly access: Permission;
  /** Where the namespace of the request is: a path parameter, the `namespace` query parameter, or nowhere. */
  readonly namespace?: 'params' | 'query';
  readonly docs: RouteDocs;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Permission;
    namespace?: 'params' | 'query';
    docs?: RouteDocs;
  }
}
