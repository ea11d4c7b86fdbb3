/**
 * The health and alert routes, registered together because they share the alert monitor:
 * GET /v1/alerts, GET /v1/alerts/stream (alerts.ts), GET /v1/health/reports
 * (health-reports.ts), GET and, with `setPolicy`, PUT /v1/health/policy (health-policy.ts).
 * They take the node's health parts as deps rather than the ServerContext, so they can be
 * served over any node view (tests relay between stand-ins).
 *
 * @example
 * ```ts
 * const monitor = healthRoutes(app, { node, reports: () => node.healthReports(), webhook: null });
 * ```
 */
import type { FastifyInstance } from 'fastify';
import { AlertMonitor, type HealthPolicy, type TrackedHealth, type WebhookPoster } from '../../health/index.js';
import type { Logger } from '../../log/index.js';
import type { ClientRef, CommandResult, StoredHealthPolicy } from '../../registry/index.js';
import { alertSnapshot } from '../alert-snapshot.js';
import type { MonitorNode } from '../node-api.js';
import { alertRoutes } from './alerts.js';
import { healthPolicyRoutes } from './health-policy.js';
import { healthReportRoutes } from './health-reports.js';

export interface PolicyWriteOptions {
  readonly expectedRevision?: number;
  readonly client?: ClientRef;
}

/** A fetch as the relay of health reports uses it (injected in tests). */
export type RelayFetch = (
  url: string,
  init: { headers: Record<string, string>; signal: AbortSignal },
) => Promise<{ readonly status: number; json(): Promise<unknown> }>;

export interface HealthDeps {
  readonly node: MonitorNode;
  readonly logger?: Logger;
  /**
   * The leader's health tracker (RollcallNode.healthReports): what it holds when this node
   * leads, null when it does not. Absent: this node keeps no reports at all.
   */
  readonly reports?: () => readonly TrackedHealth[] | null;
  /** The replicated policy in force and the revision that stored it (null: defaults only). */
  readonly policy?: () => StoredHealthPolicy | null;
  /**
   * Stores a new policy through the log (with `expectedRevision`: only if the stored one is
   * still at that revision; with `client`: exactly once) and resolves with the applied
   * result; a node failure (no leader, timeout) rejects with a NodeError. Absent: PUT
   * /v1/health/policy is not served.
   */
  readonly setPolicy?: (policy: HealthPolicy, options: PolicyWriteOptions) => Promise<CommandResult>;
  /** Where alerts go (the leader posts; followers never do). */
  readonly webhook?: WebhookPoster | null;
  /** How often alerts are evaluated (default 1000 ms). */
  readonly alertIntervalMs?: number;
  /** How a follower asks the leader for reports (default: global fetch). */
  readonly relayFetch?: RelayFetch;
  readonly timeoutMs?: number;
}

/** Registers the routes and starts the alert monitor once the app is ready; it stops when the app closes. */
export function healthRoutes(app: FastifyInstance, deps: HealthDeps): AlertMonitor {
  const { node } = deps;
  const monitor = new AlertMonitor({
    nodeId: node.id,
    leads: () => node.leader === node.id,
    snapshot: (now) => alertSnapshot(node, now),
    ...(deps.policy ? { policy: () => deps.policy?.()?.policy ?? null } : {}),
    ...(deps.webhook ? { webhook: deps.webhook } : {}),
    ...(deps.logger ? { logger: deps.logger } : {}),
    ...(deps.alertIntervalMs ? { intervalMs: deps.alertIntervalMs } : {}),
  });
  alertRoutes(app, monitor);
  healthReportRoutes(app, deps);
  healthPolicyRoutes(app, deps);
  // The corruption check's verdicts change rarely and matter at once (a disarm resolves its
  // alert): evaluate then, not at the next tick.
  let stopWatchingIntegrity: (() => void) | undefined;
  app.addHook('onReady', async () => {
    monitor.start();
    stopWatchingIntegrity = node.integrity.onChange?.(() => monitor.tick());
  });
  app.addHook('onClose', async () => {
    stopWatchingIntegrity?.();
    monitor.close();
  });
  return monitor;
}
