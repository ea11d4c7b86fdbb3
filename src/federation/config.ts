/**
 * Timing and sizing of the gossip layer. One "round" is `probeIntervalMs`: every round each
 * node probes one member and starts `syncFanout` push-pull exchanges. The defaults suit a WAN
 * (probe timeout 500 ms covers a 250 ms RTT twice); tests shorten the round, never the ratios.
 */
export interface GossipTuning {
  /** One failure-detection probe per interval (memberlist: 1 s LAN, 5 s WAN). */
  readonly probeIntervalMs: number;
  /** Wait this long for a direct ack before asking `indirectChecks` others to probe. */
  readonly probeTimeoutMs: number;
  /** How many members probe on our behalf when the direct probe goes unanswered. */
  readonly indirectChecks: number;
  /** Push-pull anti-entropy period. */
  readonly syncIntervalMs: number;
  /** Peers per push-pull round. */
  readonly syncFanout: number;
  /**
   * Suspicion timeout = suspicionMult × max(1, log10(members)) × probeIntervalMs at least
   * (memberlist's formula), up to `suspicionMaxMult` times that while nobody confirms.
   */
  readonly suspicionMult: number;
  readonly suspicionMaxMult: number;
  /** Per round, the expected number of exchanges (cluster-wide) with unreachable members, to notice them coming back. */
  readonly reconnectRate: number;
  /** Accept envelopes whose timestamp is within this many ms of our wall clock. */
  readonly timestampWindowMs: number;
  /** Weight of a new round-trip sample in the per-datacenter EWMA. */
  readonly rttSmoothing: number;
  readonly maxMessageBytes: number;
  /** At most this many events wait for `drainEvents()`; older ones are dropped and counted. */
  readonly maxPendingEvents: number;
}

export const DEFAULT_TUNING: GossipTuning = {
  probeIntervalMs: 1_000,
  probeTimeoutMs: 500,
  indirectChecks: 3,
  syncIntervalMs: 1_000,
  syncFanout: 2,
  suspicionMult: 4,
  suspicionMaxMult: 3,
  reconnectRate: 2,
  timestampWindowMs: 120_000,
  rttSmoothing: 0.25,
  maxMessageBytes: 4 * 1024 * 1024,
  maxPendingEvents: 10_000,
};

/** `--datacenter`: letters, digits and `-`, at most 63 (a DNS label, so `.<dc>.dc.` names work). */
export const DATACENTER_NAME = /^[A-Za-z0-9-]{1,63}$/;
export const MAX_ID_LENGTH = 256;
export const MAX_ADDRESS_LENGTH = 512;
/** Caps what one authenticated but buggy peer can make us hold. */
export const MAX_DATACENTERS = 1_024;
export const MAX_MEMBERS_PER_DATACENTER = 64;

export function isDatacenterName(value: unknown): value is string {
  return typeof value === 'string' && DATACENTER_NAME.test(value);
}

export function isMemberId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ID_LENGTH;
}

export function isAddress(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_ADDRESS_LENGTH;
}

/** A cluster id as src/transport/cluster-identity.ts allows it: 1-64 printable ASCII characters, no spaces. */
export function isClusterId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && value.length <= 64 && /^[\x21-\x7e]+$/.test(value);
}

export function resolveTuning(partial: Partial<GossipTuning> | undefined): GossipTuning {
  const t = { ...DEFAULT_TUNING, ...partial };
  const positive: (keyof GossipTuning)[] = [
    'probeIntervalMs',
    'probeTimeoutMs',
    'syncIntervalMs',
    'suspicionMult',
    'suspicionMaxMult',
    'timestampWindowMs',
    'maxMessageBytes',
    'maxPendingEvents',
  ];
  for (const k of positive) if (!(t[k] > 0)) throw new RangeError(`federation tuning: ${k} must be > 0, got ${t[k]}`);
  if (t.probeTimeoutMs >= t.probeIntervalMs)
    throw new RangeError('federation tuning: probeTimeoutMs must be shorter than probeIntervalMs');
  if (!(t.rttSmoothing > 0 && t.rttSmoothing <= 1))
    throw new RangeError('federation tuning: rttSmoothing must be in (0, 1]');
  if (t.indirectChecks < 0 || t.syncFanout < 1 || t.reconnectRate < 0)
    throw new RangeError('federation tuning: indirectChecks >= 0, syncFanout >= 1, reconnectRate >= 0');
  if (t.suspicionMaxMult < 1) throw new RangeError('federation tuning: suspicionMaxMult must be >= 1');
  return t;
}
