/**
 * The health model: provider reports, thresholds with hysteresis, the leader's tracker that
 * turns reports into `setHealth` transitions, alert rules and their engine, the alert
 * monitor that runs the engine on a timer, and a webhook poster. Everything but the monitor
 * and the poster is pure: time is an argument. See docs/health.md.
 */

export type { Alert, AlertEngineOptions, AlertEvent } from './alert-engine.js';
export { AlertEngine } from './alert-engine.js';
export type {
  AlertKind,
  AlertSeverity,
  AlertSnapshot,
  Condition,
  MemberSnapshot,
  RuleLimits,
  ServiceCounts,
} from './alert-rules.js';
export { ALERT_KINDS, clusterConditions, serviceConditions } from './alert-rules.js';
export type { ReportedHealth } from './classify.js';
export { breachedMetrics, SEVERITY, targetHealth } from './classify.js';
export type { HealthFilter } from './filter.js';
export { acceptsHealth, HEALTH_FILTERS, parseHealthFilter } from './filter.js';
export type { AlertMonitorOptions } from './monitor.js';
export { AlertMonitor } from './monitor.js';
export type {
  ClusterAlertThresholds,
  HealthPolicy,
  PolicyOverride,
  ServiceAlertThresholds,
  ServicePolicy,
  ThresholdsOverride,
} from './policy.js';
export {
  DEFAULT_CLUSTER_ALERTS,
  DEFAULT_SERVICE_ALERTS,
  MAX_POLICY_ENTRIES,
  mergeThresholds,
  PolicyResolver,
  parseHealthPolicy,
  resolveClusterAlerts,
  resolvePolicy,
} from './policy.js';
export type { HealthReport, Metric, Parsed } from './report.js';
export { HEALTH_REPORT_SCHEMA, MAX_P99_MS, METRICS, parseHealthReport, parseKeepaliveBody } from './report.js';
export type { Band, HealthThresholds, MetricBands } from './thresholds.js';
export { DEFAULT_THRESHOLDS, isWorse, LOWER_IS_WORSE, validateThresholds } from './thresholds.js';
export type { HealthTrackerOptions, HealthTransition, HealthView, InstanceRef, TrackedHealth } from './tracker.js';
export { HealthTracker, healthCommands } from './tracker.js';
export type { DeliveryResult, FetchLike, WebhookOptions, WebhookStats } from './webhook.js';
export { WebhookPoster } from './webhook.js';
