export { formatHostPort, parseHostPort } from './address.js';
export type { BackoffOptions } from './backoff.js';
export { ClusterIdentity, isClusterId, MAX_CLUSTER_ID_LENGTH } from './cluster-identity.js';
export { TransportError, type TransportErrorCode } from './errors.js';
export {
  FOUNDING_TERM,
  type FoundingProbeOptions,
  type FoundingProbeResult,
  type FoundingState,
  foundingStateOf,
  parseFoundingState,
  probeFounding,
} from './founding-probe.js';
export { DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_QUEUE_BYTES, PeerTransport } from './transport.js';
export type {
  DetachedBinary,
  Direction,
  DropReason,
  Faults,
  PeerAddress,
  PeerStats,
  PeerStatusEvent,
  PeerTlsOptions,
  TransportOptions,
  TransportStats,
} from './types.js';
