export { PeerTransport, DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_QUEUE_BYTES } from './transport.js';
export { TransportError, type TransportErrorCode } from './errors.js';
export { ClusterIdentity, MAX_CLUSTER_ID_LENGTH, isClusterId } from './cluster-identity.js';
export type {
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
export type { BackoffOptions } from './backoff.js';
export { formatHostPort, parseHostPort } from './address.js';
