/**
 * Is a session's expiry false? Judged from the owner's own record (when it sent keepalives,
 * which ones the registry confirmed) and the nemesis log (when no majority was up). Pure,
 * so the rule is tested alone (test/lin-harness.test.ts).
 *
 * The rule. A session that the registry confirmed alive (opened, or a keepalive answered
 * ok) at a keepalive sent at time `s` has, at whichever leader took that keepalive, a
 * deadline of at least `s + ttl` (the leader starts the TTL when it receives it, after
 * `s`); a new leader grants every session a full TTL from its election. So an expiry
 * signal (a keepalive or a close answered 404, a keepalive answered `expiring`, the
 * instance missing or `suspect`)
 * answered at time `a`, when the last confirmation before it was sent at `s`, is:
 *
 *   - false when `a <= s + ttl`: the owner never missed its TTL by its own record;
 *   - legitimate when `a > s + ttl` and the owner itself stopped sending: a gap of more
 *     than `maxSendGapMs` between its keepalive attempts in [s, a] (its process stalled);
 *   - legitimate when `a > s + ttl` and, at some time in [s, a], no majority of the
 *     cluster was up for longer than the TTL (every node killed at once, say);
 *   - false otherwise: the owner kept sending, through every node in turn, while a majority
 *     was up and could have taken its keepalives.
 *
 * Only the last confirmation before the signal counts: once a leader has answered a
 * keepalive with ok, an expiry decided earlier (by an older leader) must not apply.
 */

/** Times are ms on the run's clock (the history's clock). */
export interface Confirmation {
  /** When the keepalive (or the first attempt of the open) was sent. */
  readonly sent: number;
  /** When its ok arrived. */
  readonly answered: number;
}

export interface Interval {
  readonly start: number;
  readonly end: number;
}

export type SignalKind =
  | 'keepalive-not-found'
  | 'keepalive-expiring'
  | 'register-not-found'
  | 'instance-missing'
  | 'instance-suspect'
  | 'final-keepalive-not-found'
  | 'final-instance-missing'
  | 'close-not-found';

/** What told the owner its session was gone (or going). */
export interface ExpirySignal {
  readonly kind: SignalKind;
  /** The node that answered. */
  readonly node: string;
  readonly sent: number;
  readonly answered: number;
  /** The answer, briefly. */
  readonly detail: string;
}

export interface JudgeInput {
  readonly ttlMs: number;
  /** Confirmations, in order. */
  readonly confirmations: readonly Confirmation[];
  /** When every keepalive attempt (and open attempt) was sent, in order. */
  readonly sends: readonly number[];
  readonly signal: ExpirySignal;
  /** Times when no majority of the cluster was up. */
  readonly noMajority: readonly Interval[];
  /** Longer than this between two keepalive attempts, the owner was not sending. */
  readonly maxSendGapMs: number;
}

export type Judgement =
  | {
      readonly kind: 'false';
      readonly reason: string;
      readonly lastConfirmed: Confirmation | null;
      readonly longestSendGapMs: number;
    }
  | {
      readonly kind: 'legitimate';
      readonly reason: string;
      readonly lastConfirmed: Confirmation | null;
      readonly longestSendGapMs: number;
    };

export function judgeExpiry(input: JudgeInput): Judgement {
  const { ttlMs, signal } = input;
  // Keepalives and the final check may overlap: order by sending.
  const last =
    [...input.confirmations]
      .filter((c) => c.answered <= signal.sent)
      .sort((a, b) => a.sent - b.sent)
      .at(-1) ?? null;
  if (last === null) {
    // Cannot happen for a session the owner opened (the open is the first confirmation).
    return {
      kind: 'legitimate',
      reason: 'no confirmation before it: nothing to judge',
      lastConfirmed: null,
      longestSendGapMs: 0,
    };
  }
  const sinceConfirmed = signal.answered - last.sent;
  // The owner's duty to send runs until the signal's request left (a read's, too).
  const points = [
    last.sent,
    ...input.sends.filter((t) => t > last.sent && t < signal.sent).sort((a, b) => a - b),
    signal.sent,
  ];
  let gap = 0;
  for (let i = 1; i < points.length; i++) gap = Math.max(gap, points[i]! - points[i - 1]!);
  const base = { lastConfirmed: last, longestSendGapMs: Math.round(gap) };
  if (sinceConfirmed <= ttlMs) {
    return {
      kind: 'false',
      reason: `the last confirmed keepalive was sent ${ms(sinceConfirmed)} before this answer, within the ${ttlMs} ms TTL: the owner never missed its TTL`,
      ...base,
    };
  }
  if (gap > input.maxSendGapMs) {
    return {
      kind: 'legitimate',
      reason: `the owner sent no keepalive for ${ms(gap)} (more than ${input.maxSendGapMs} ms): it missed its TTL by its own record`,
      ...base,
    };
  }
  const down = input.noMajority.find((p) => p.end - p.start > ttlMs && p.start < signal.answered && p.end > last.sent);
  if (down) {
    return {
      kind: 'legitimate',
      reason: `no majority was up for ${ms(down.end - down.start)} (longer than the TTL) from ${sec(down.start)}`,
      ...base,
    };
  }
  return {
    kind: 'false',
    reason:
      `no keepalive was confirmed for ${ms(sinceConfirmed)} (TTL ${ttlMs} ms), but the owner kept sending ` +
      `(longest gap between attempts ${ms(gap)}) and a majority of the cluster was up`,
    ...base,
  };
}

function ms(n: number): string {
  return `${Math.round(n)} ms`;
}

/** A time on the run's clock, as seconds. */
export function sec(t: number): string {
  return `${(t / 1000).toFixed(3)} s`;
}
