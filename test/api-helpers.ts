/** Builds the HTTP app over a InMemoryNodeApi for in-process API tests. */
import type { FastifyInstance, InjectOptions } from 'fastify';
import type { Logger } from '../src/log/index.js';
import { silentLogger } from '../src/log/index.js';
import { type AppOptions, buildApp } from '../src/server/app.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

export interface TestApp {
  readonly app: FastifyInstance;
  readonly node: InMemoryNodeApi;
  req(opts: InjectOptions): Promise<{ status: number; headers: Record<string, unknown>; body: any; text: string }>;
  close(): Promise<void>;
}

export async function testApp(
  options: Partial<AppOptions> & { historySize?: number; logger?: Logger } = {},
): Promise<TestApp> {
  const node = await InMemoryNodeApi.create(
    options.historySize === undefined ? {} : { historySize: options.historySize },
  );
  const app = buildApp({ logger: silentLogger(), minRevisionTimeoutMs: 50, maxWaitMs: 2000, ...options, node });
  await app.ready();
  return {
    app,
    node,
    async req(opts) {
      const res = await app.inject(opts);
      let body: unknown = res.body;
      try {
        body = res.body.length > 0 ? JSON.parse(res.body) : null;
      } catch {
        /* text */
      }
      return { status: res.statusCode, headers: res.headers, body, text: res.body };
    },
    close: () => app.close(),
  };
}

export const INSTANCE_URL = '/v1/namespaces/prod/services/orders/instances';
