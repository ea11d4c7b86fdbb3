/**
 * How long a suspicion lasts before it becomes a verdict (Lifeguard, as in memberlist's
 * suspicion.go). A lone suspector waits the longest; each independent confirmation shortens
 * the wait towards the minimum, logarithmically, so a member many nodes cannot reach is
 * declared quickly while one node's bad luck (or bad link) is given time to be refuted.
 */
import type { GossipTuning } from './config.js';

export interface SuspicionBounds {
  readonly minMs: number;
  readonly maxMs: number;
  /** Independent confirmations that bring the timeout down to `minMs`. */
  readonly confirmationsWanted: number;
}

/** memberlist: min = mult × max(1, log10(n)) × probe interval; max = maxMult × min; k = mult − 2. */
export function suspicionBounds(memberCount: number, tuning: GossipTuning): SuspicionBounds {
  const scale = Math.max(1, Math.log10(Math.max(1, memberCount)));
  const minMs = Math.floor(tuning.suspicionMult * scale * tuning.probeIntervalMs);
  // With fewer than k other members nobody can confirm: go straight to the minimum.
  const wanted = Math.max(0, tuning.suspicionMult - 2);
  const confirmationsWanted = memberCount - 2 < wanted ? 0 : wanted;
  return { minMs, maxMs: Math.floor(tuning.suspicionMaxMult * minMs), confirmationsWanted };
}

/**
 * Total suspicion time, from when this node began suspecting, given `confirmations`
 * independent confirmations (suspectors beyond the first, or another node's verdict).
 */
export function suspicionTimeoutMs(confirmations: number, bounds: SuspicionBounds): number {
  const k = bounds.confirmationsWanted;
  if (k < 1) return bounds.minMs;
  const frac = Math.log(Math.min(confirmations, k) + 1) / Math.log(k + 1);
  return Math.max(bounds.minMs, Math.floor(bounds.maxMs - frac * (bounds.maxMs - bounds.minMs)));
}
