/**
 * The monitoring page: GET /ui and its static files under /ui/assets/. Every node serves it;
 * the API routes it reads (/v1/services, /v1/alerts, /v1/health/*) are in src/server/routes.
 *
 * @example
 * ```ts
 * registerUiRoutes(app);
 * ```
 */
import type { FastifyInstance } from 'fastify';
import { pageRoutes } from './routes/page.js';

/** GET /ui and GET /ui/assets/:name. */
export function registerUiRoutes(app: FastifyInstance): void {
  pageRoutes(app);
}
