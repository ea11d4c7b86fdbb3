/**
 * The sessions workload: 2-3 owners (scripts/lin/session-owner.ts) each open a session with
 * a short TTL (2-4 s), register one ephemeral instance on it, and keep the session alive
 * through any node for the whole run (the window of faults, the heal, the final reads), as
 * the SDK does. Some (by the plan) close their session after a while and open a new one,
 * so sessions are opened while faults happen; some stall once and then go on.
 *
 * A false expiry fails the run (judged by `judgeExpiry`): the owner kept its session alive
 * by its own record, and yet a keepalive (or its close) was answered 404 or `expiring`, the
 * instance was read as missing or `suspect`, or after healing it is missing on some member.
 *
 * Each generation's instance is the only instance of its service (`o<owner>-g<n>` in the
 * namespace `<run ns>-sessions`): expiry protection never holds a service of fewer than 3
 * instances, so a lapse shows as an expiry. None of this is in the linearizability history.
 */
import fc from 'fast-check';
import type { ClusterView } from './cluster-view.js';
import { request, sleep } from './http.js';
import { type ExpirySignal, type Interval, type Judgement, judgeExpiry, sec } from './session-judge.js';
import {
  type OwnerPlan,
  type OwnerShared,
  pacing,
  retryable,
  type SessionEvent,
  SessionOwner,
} from './session-owner.js';

export type { OwnerPlan, SessionEvent } from './session-owner.js';

export interface SessionsPlan {
  readonly owners: readonly OwnerPlan[];
}

const unit = fc.nat({ max: 9999 }).map((n) => n / 10_000);

export function sessionsArb(): fc.Arbitrary<SessionsPlan> {
  return fc.record({
    owners: fc.array(
      fc.record({
        ttlMs: fc.constantFrom(2000, 2500, 3000, 3500, 4000),
        r: unit,
        jitter: fc.array(unit, { minLength: 1, maxLength: 8 }),
        rotateMs: fc.oneof(
          { weight: 1, arbitrary: fc.constant(null) },
          { weight: 1, arbitrary: fc.integer({ min: 1500, max: 4000 }) },
        ),
        stallAfter: fc.oneof(
          { weight: 3, arbitrary: fc.constant(null) },
          { weight: 1, arbitrary: fc.integer({ min: 1, max: 4 }) },
        ),
      }),
      { minLength: 2, maxLength: 3 },
    ),
  });
}

export interface SessionVerdict {
  readonly owner: number;
  readonly session: string;
  readonly ttlMs: number;
  /** alive: never signalled (kept to the end, or closed by its owner); false-expiry: a failure; lapsed: an expiry the owner earned. */
  readonly verdict: 'alive' | 'false-expiry' | 'lapsed' | 'not-opened';
  readonly openedAt: number | null;
  readonly confirmations: number;
  readonly signal: ExpirySignal | null;
  readonly judgement: Judgement | null;
  /** One line saying what happened. */
  readonly summary: string;
}

export interface SessionsReport {
  readonly sessions: readonly SessionVerdict[];
  readonly falseExpiries: readonly SessionVerdict[];
  readonly keepalives: { ok: number; failed: number };
  /** Answers nothing in the API explains (counted, not judged). */
  readonly unexpected: Record<string, number>;
  readonly events: readonly SessionEvent[];
}

/** How long `start()` waits for the first sessions. */
const OPEN_TIMEOUT_MS = 10_000;

export interface SessionsOptions {
  readonly view: ClusterView;
  /** The run's namespace; the sessions use `<ns>-sessions`. */
  readonly ns: string;
  readonly plan: SessionsPlan;
  /** ms on the run's clock. */
  readonly now: () => number;
}

/**
 * The owners of one run. `start()` opens every owner's first session and registers its
 * instance (bounded), and leaves them keeping alive in the background; `finish()` checks
 * every live session once more after the cluster has healed, stops, closes the sessions
 * and judges. `stop()` (idempotent) ends everything without judging.
 */
export class SessionsWorkload {
  private readonly shared: OwnerShared;
  private readonly owners: SessionOwner[];
  private readonly ac = new AbortController();
  private running: Promise<unknown> = Promise.resolve();

  constructor(private readonly options: SessionsOptions) {
    this.shared = {
      view: options.view,
      ns: `${options.ns}-sessions`,
      now: options.now,
      events: [],
      unexpected: {},
      counts: { ok: 0, failed: 0 },
    };
    this.owners = options.plan.owners.map((p, i) => new SessionOwner(i, p, this.shared, this.ac.signal));
  }

  async start(): Promise<void> {
    const ready = this.owners.map(() => {
      let done!: () => void;
      return { promise: new Promise<void>((r) => (done = r)), done: () => done() };
    });
    this.running = Promise.all(this.owners.map((o, i) => o.run(ready[i]!.done)));
    await Promise.race([Promise.all(ready.map((r) => r.promise)), sleep(OPEN_TIMEOUT_MS, this.ac.signal)]);
  }

  /**
   * After the heal: one more keepalive for every live session and a read of its instance on
   * every member; then stop, close the sessions, and judge every generation. `noMajority`:
   * when the nemesis had no majority of the cluster up (run clock, ms).
   */
  async finish(noMajority: readonly Interval[]): Promise<SessionsReport> {
    for (const o of this.owners) {
      const g = o.current;
      if (!g || g.openedAt === null || g.signal !== null || g.closing) continue;
      if ((await o.keepalive(g, 'final-keepalive', Date.now() + 10_000)) !== 'ok') continue;
      if (!g.registered) continue;
      for (const node of this.options.view.members) {
        for (let attempt = 0; attempt < 3 && g.signal === null; attempt++)
          if (await o.read(g, 'final-read', node)) break;
      }
    }
    await this.stop();
    await this.closeAll();
    return this.report(noMajority);
  }

  async stop(): Promise<void> {
    this.ac.abort();
    await this.running;
  }

  /** Best effort: closes every session still open, so runs on one cluster leave nothing behind. */
  private async closeAll(): Promise<void> {
    const view = this.options.view;
    await Promise.all(
      this.owners.flatMap((o) =>
        o.generations
          .filter((g) => g.openedAt !== null)
          .map(async (g) => {
            if (g.closed) return;
            for (const node of view.members) {
              const r = await request(
                'DELETE',
                `${view.url(node)}/v1/sessions/${encodeURIComponent(g.id)}`,
                undefined,
                {},
                2000,
              ).catch(() => null);
              if (r !== null && !retryable(r)) return;
            }
          }),
      ),
    );
  }

  private report(noMajority: readonly Interval[]): SessionsReport {
    const sessions: SessionVerdict[] = [];
    for (const o of this.owners) {
      const { maxSendGapMs } = pacing(o.plan.ttlMs);
      if (o.generations.length === 0) {
        const summary = `owner ${o.index} never got a session opened`;
        sessions.push({
          owner: o.index,
          session: '',
          ttlMs: o.plan.ttlMs,
          openedAt: null,
          confirmations: 0,
          signal: null,
          verdict: 'not-opened',
          judgement: null,
          summary,
        });
      }
      for (const g of o.generations) {
        const base = {
          owner: o.index,
          session: g.id,
          ttlMs: o.plan.ttlMs,
          openedAt: g.openedAt,
          confirmations: g.confirmations.length,
          signal: g.signal,
        };
        if (g.signal === null || g.openedAt === null) {
          const until = g.closed ? 'until its owner closed it' : 'to the end';
          sessions.push({
            ...base,
            verdict: 'alive',
            judgement: null,
            summary: `session ${g.id} (owner ${o.index}, TTL ${o.plan.ttlMs} ms) stayed alive ${until}: ${g.confirmations.length} confirmations`,
          });
          continue;
        }
        const judgement = judgeExpiry({
          ttlMs: o.plan.ttlMs,
          confirmations: g.confirmations,
          sends: g.sends,
          signal: g.signal,
          noMajority,
          maxSendGapMs,
        });
        const s = g.signal;
        const last = judgement.lastConfirmed;
        const summary =
          `session ${g.id} (owner ${o.index}, TTL ${o.plan.ttlMs} ms, opened ${sec(g.openedAt)}): ${describeSignal(s)} by ${s.node}, ` +
          `sent ${sec(s.sent)}, answered ${sec(s.answered)}; last confirmed keepalive ${last ? `sent ${sec(last.sent)} (answered ${sec(last.answered)})` : 'none'}; ` +
          `${judgement.kind === 'false' ? 'FALSE EXPIRY' : 'legitimate'}: ${judgement.reason}`;
        sessions.push({ ...base, verdict: judgement.kind === 'false' ? 'false-expiry' : 'lapsed', judgement, summary });
      }
    }
    return {
      sessions,
      falseExpiries: sessions.filter((v) => v.verdict === 'false-expiry'),
      keepalives: { ...this.shared.counts },
      unexpected: { ...this.shared.unexpected },
      events: this.shared.events,
    };
  }
}

function describeSignal(s: ExpirySignal): string {
  switch (s.kind) {
    case 'keepalive-not-found':
      return 'a keepalive was answered 404 SESSION_NOT_FOUND';
    case 'keepalive-expiring':
      return 'a keepalive was answered expiring: true (its expiry is proposed)';
    case 'register-not-found':
      return 'registering its instance was answered 404 SESSION_NOT_FOUND';
    case 'instance-missing':
      return 'a linearizable read found its instance gone';
    case 'instance-suspect':
      return 'a linearizable read found its instance suspect';
    case 'final-keepalive-not-found':
      return 'after healing, a keepalive was answered 404 SESSION_NOT_FOUND';
    case 'final-instance-missing':
      return 'after healing, a linearizable read found its instance gone';
    case 'close-not-found':
      return 'closing it was answered 404 SESSION_NOT_FOUND';
  }
}
