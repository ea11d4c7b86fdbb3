/**
 * Runs the alert engine on a timer over a node's view, fans fired and resolved alerts out
 * to subscribers, and posts them to the webhook while the node leads (every node evaluates,
 * so every node's page shows alerts even without a leader; only one posts). Owns its timer
 * and the webhook: close() stops both.
 *
 * What it evaluates comes in as `snapshot` (the server reads it from the node), so this
 * file knows nothing of nodes or HTTP.
 */
import type { Logger } from '../log/index.js';
import { AlertEngine, type AlertEvent } from './alert-engine.js';
import type { AlertSnapshot } from './alert-rules.js';
import { type HealthPolicy, PolicyResolver } from './policy.js';
import type { WebhookPoster } from './webhook.js';

export interface AlertMonitorOptions {
  /** Who evaluates (named in webhook posts). */
  readonly nodeId: string;
  /** True while this node leads: only the leader posts to the webhook. */
  readonly leads: () => boolean;
  /** What the rules look at, as of `now`. */
  readonly snapshot: (now: number) => AlertSnapshot;
  readonly policy?: () => HealthPolicy | null;
  readonly webhook?: WebhookPoster | null;
  readonly logger?: Logger;
  /** How often alerts are evaluated (default 1000 ms). */
  readonly intervalMs?: number;
}

export class AlertMonitor {
  readonly engine: AlertEngine;
  readonly #subscribers = new Set<(e: AlertEvent) => void>();
  #timer: NodeJS.Timeout | null = null;

  constructor(private readonly options: AlertMonitorOptions) {
    const resolver = new PolicyResolver(options.policy ?? (() => null));
    this.engine = new AlertEngine({
      limits: () => ({ service: (ns, svc) => resolver.resolve(ns, svc).alerts, cluster: resolver.cluster() }),
    });
  }

  start(): void {
    if (this.#timer !== null) return;
    this.tick();
    this.#timer = setInterval(() => this.tick(), this.options.intervalMs ?? 1000);
    this.#timer.unref();
  }

  /** One evaluation (the timer's step; tests call it directly). */
  tick(now = Date.now()): readonly AlertEvent[] {
    let events: AlertEvent[];
    try {
      events = this.engine.evaluate(this.options.snapshot(now), now);
    } catch (err) {
      this.options.logger?.error({ err }, 'evaluating alerts failed');
      return [];
    }
    if (events.length === 0) return events;
    const leads = this.options.leads();
    for (const e of events) {
      this.options.logger?.[e.type === 'fired' ? 'warn' : 'info'](
        { alert: e.alert.id, severity: e.alert.severity },
        `alert ${e.type}: ${e.alert.message}`,
      );
      for (const fn of this.#subscribers) fn(e);
      if (leads)
        this.options.webhook?.post({
          node: this.options.nodeId,
          seq: e.seq,
          type: e.type,
          at: new Date(e.at).toISOString(),
          alert: e.alert,
        });
    }
    return events;
  }

  subscribe(fn: (e: AlertEvent) => void): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  close(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
    this.#subscribers.clear();
    this.options.webhook?.close();
  }
}
