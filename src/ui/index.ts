/**
 * The monitoring page and the HTTP side of health and alerts. Every node serves them.
 *
 * @example
 * ```ts
 * registerUiRoutes(app, { node });
 * registerHealthRoutes(app, { node, reports: () => node.healthReports(), webhook: null });
 * ```
 */
import type { FastifyInstance } from 'fastify';
import type { HealthDeps, UiDeps } from './deps.js';
import { AlertMonitor } from './monitor.js';
import { alertRoutes } from './routes/alerts.js';
import { pageRoutes } from './routes/page.js';
import { policyRoutes } from './routes/policy.js';
import { reportRoutes } from './routes/reports.js';
import { serviceRoutes } from './routes/services.js';

export type { HealthDeps, MonitorNode, PolicyWriteOptions, RelayFetch, UiDeps } from './deps.js';
export { AlertMonitor } from './monitor.js';
export type { AlertMonitorOptions } from './monitor.js';
export { alertSnapshot, serviceCounts } from './snapshot.js';

/** GET /ui, /ui/assets/:name and GET /v1/services (which the page lists from). */
export function registerUiRoutes(app: FastifyInstance, deps: UiDeps): void {
  pageRoutes(app);
  serviceRoutes(app, deps);
}

/**
 * GET /v1/alerts, GET /v1/alerts/stream, GET /v1/health/reports, GET (and, with
 * `setPolicy`, PUT) /v1/health/policy. Starts the alert monitor; it stops when the app closes.
 */
export function registerHealthRoutes(app: FastifyInstance, deps: HealthDeps): AlertMonitor {
  const monitor = new AlertMonitor({
    node: deps.node,
    ...(deps.policy ? { policy: () => deps.policy?.()?.policy ?? null } : {}),
    ...(deps.webhook ? { webhook: deps.webhook } : {}),
    ...(deps.logger ? { logger: deps.logger } : {}),
    ...(deps.alertIntervalMs ? { intervalMs: deps.alertIntervalMs } : {}),
  });
  alertRoutes(app, monitor);
  reportRoutes(app, deps);
  policyRoutes(app, deps);
  app.addHook('onReady', async () => monitor.start());
  app.addHook('onClose', async () => monitor.close());
  return monitor;
}
