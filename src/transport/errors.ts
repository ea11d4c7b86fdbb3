/**
 * Every failure that crosses the transport boundary carries a stable code, so callers
 * (and logs) can branch on `code` instead of parsing messages.
 */
export type TransportErrorCode =
  /** A frame's declared length exceeds the configured (or handshake) limit. */
  | 'FRAME_TOO_LARGE'
  /** A frame is not a valid msgpack document. */
  | 'DECODE_FAILED'
  /** A message could not be msgpack-encoded. */
  | 'ENCODE_FAILED'
  /** A handshake message had the wrong shape or arrived out of order. */
  | 'PROTOCOL'
  /** The peer failed to prove knowledge of the cluster secret, or claimed an unknown id. */
  | 'AUTH_FAILED'
  /** The peer belongs to another cluster (a different cluster id: cluster-identity.ts). */
  | 'CLUSTER_MISMATCH'
  /** With TLS: the peer's certificate does not name the node id it claims. */
  | 'TLS_IDENTITY'
  /** With TLS: the TLS handshake failed (no certificate, one from another CA, expired, plain TCP). */
  | 'TLS_HANDSHAKE'
  /** The handshake (including the TCP connect, when dialing) did not finish in time. */
  | 'HANDSHAKE_TIMEOUT'
  /** The remote closed the connection before the handshake finished. */
  | 'CONNECTION_CLOSED'
  /** The operating system reported a socket error (see `cause`). */
  | 'SOCKET_ERROR'
  /** The listener could not bind. */
  | 'LISTEN_FAILED'
  /** Invalid constructor options. */
  | 'INVALID_OPTIONS'
  /** The call is not valid in the transport's current lifecycle state. */
  | 'INVALID_STATE'
  /** `setFaults` was called on a transport constructed without `faults: true`. */
  | 'FAULTS_DISABLED';

export class TransportError extends Error {
  override readonly name = 'TransportError';
  readonly code: TransportErrorCode;

  constructor(code: TransportErrorCode, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
  }
}

/** Socket errors that are routine while a peer is down or restarting. */
const ROUTINE_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** The errno code of a socket error, or of the error wrapped in a TransportError. */
export function errnoOf(error: unknown): string | undefined {
  const candidate = error instanceof TransportError ? error.cause : error;
  if (typeof candidate === 'object' && candidate !== null && 'code' in candidate) {
    const code = (candidate as { code: unknown }).code;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}

/**
 * True when an error is the kind of noise a cluster produces in normal operation (a peer
 * restarting), so it belongs at debug level rather than error.
 */
export function isRoutineNetworkError(error: unknown): boolean {
  if (error instanceof TransportError && error.code === 'CONNECTION_CLOSED') return true;
  const errno = errnoOf(error);
  return errno !== undefined && ROUTINE_ERRNOS.has(errno);
}
