/**
 * Turns snapshots over time into alerts that fire and resolve. Pure: time is an argument.
 *
 * - A condition fires once it has held for its `forMs` (0: at once) and resolves the first
 *   snapshot it no longer holds. While active, its message and value follow the latest
 *   snapshot, and its severity may change; neither is an event.
 * - A service that disappears (its last instance went) is still evaluated, with no
 *   instances, for `forgetServiceAfterMs`: losing every instance must raise an alert, not
 *   resolve one. After that it is forgotten and its alerts resolve.
 * - Events carry a sequence number, increasing by one per event, for the SSE stream.
 */
import type { AlertSnapshot, Condition, RuleLimits, ServiceCounts } from './alert-rules.js';
import { clusterConditions, serviceConditions } from './alert-rules.js';

/** A condition that has held long enough: what it says, and since when (ms since epoch). */
export type Alert = Omit<Condition, 'forMs'> & { readonly since: number };

export interface AlertEvent {
  readonly seq: number;
  readonly type: 'fired' | 'resolved';
  /** When it fired or resolved. */
  readonly at: number;
  readonly alert: Alert;
}

export interface AlertEngineOptions {
  readonly limits: () => RuleLimits;
  /** How long a vanished service is still evaluated with no instances (default 10 min). */
  readonly forgetServiceAfterMs?: number;
  /** Recent events kept for late joiners (default 200). */
  readonly historySize?: number;
}

export class AlertEngine {
  readonly #active = new Map<string, Alert>();
  readonly #pending = new Map<string, number>();
  /** Services seen with instances, and when last. */
  readonly #seen = new Map<string, { namespace: string; service: string; at: number }>();
  #recent: AlertEvent[] = [];
  #seq = 0;
  readonly #forgetMs: number;
  readonly #historySize: number;

  constructor(private readonly options: AlertEngineOptions) {
    this.#forgetMs = options.forgetServiceAfterMs ?? 600_000;
    this.#historySize = options.historySize ?? 200;
  }

  /** Evaluates one snapshot; returns the events it caused, resolved before fired, each sorted by id. */
  evaluate(snapshot: AlertSnapshot, now: number): AlertEvent[] {
    const conditions = this.#conditions(snapshot, now);
    const holding = new Map(conditions.map((c) => [c.id, c]));
    for (const id of this.#pending.keys()) if (!holding.has(id)) this.#pending.delete(id);

    const events: AlertEvent[] = [];
    for (const [id, alert] of [...this.#active].sort(byKey)) {
      if (holding.has(id)) continue;
      this.#active.delete(id);
      events.push(this.#event('resolved', now, alert));
    }
    for (const c of conditions.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
      const active = this.#active.get(c.id);
      if (active !== undefined) {
        this.#active.set(c.id, { ...fromCondition(c), since: active.since });
        continue;
      }
      const since = this.#pending.get(c.id) ?? now;
      if (now - since < c.forMs) {
        this.#pending.set(c.id, since);
        continue;
      }
      this.#pending.delete(c.id);
      const alert = { ...fromCondition(c), since: now };
      this.#active.set(c.id, alert);
      events.push(this.#event('fired', now, alert));
    }
    return events;
  }

  /** Active alerts, sorted by id. */
  active(): Alert[] {
    return [...this.#active.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** The most recent events, oldest first. */
  recent(): readonly AlertEvent[] {
    return this.#recent;
  }

  get seq(): number {
    return this.#seq;
  }

  #conditions(s: AlertSnapshot, now: number): Condition[] {
    const limits = this.options.limits();
    const present = new Map<string, ServiceCounts>();
    for (const svc of s.services) {
      const key = `${svc.namespace}/${svc.service}`;
      present.set(key, svc);
      if (svc.total > 0) this.#seen.set(key, { namespace: svc.namespace, service: svc.service, at: now });
    }
    for (const [key, seen] of this.#seen) {
      if (present.has(key)) continue;
      if (now - seen.at > this.#forgetMs) this.#seen.delete(key);
      else
        present.set(key, {
          namespace: seen.namespace,
          service: seen.service,
          total: 0,
          healthy: 0,
          subhealthy: 0,
          suspect: 0,
          down: 0,
        });
    }
    const protectedNow = new Set(s.protection.map((p) => `${p.namespace}/${p.service}`));
    for (const key of protectedNow) {
      if (present.has(key)) continue;
      const [namespace = '', service = ''] = key.split('/');
      present.set(key, { namespace, service, total: 0, healthy: 0, subhealthy: 0, suspect: 0, down: 0 });
    }
    const out: Condition[] = [];
    for (const [key, svc] of present) {
      // A service seen only empty (never with instances) raises nothing.
      if (svc.total === 0 && !this.#seen.has(key) && !protectedNow.has(key)) continue;
      out.push(...serviceConditions(svc, protectedNow.has(key), limits.service(svc.namespace, svc.service)));
    }
    out.push(...clusterConditions(s.cluster, limits.cluster));
    return out;
  }

  #event(type: AlertEvent['type'], at: number, alert: Alert): AlertEvent {
    const e: AlertEvent = { seq: ++this.#seq, type, at, alert };
    this.#recent.push(e);
    if (this.#recent.length > this.#historySize) this.#recent = this.#recent.slice(-this.#historySize);
    return e;
  }
}

function fromCondition({ forMs: _forMs, ...alert }: Condition): Omit<Alert, 'since'> {
  return alert;
}

function byKey<T>(a: [string, T], b: [string, T]): number {
  return a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0;
}
