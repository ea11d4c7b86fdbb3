/**
 * The SDK's error catalogue. Every error is a `RollcallError` with a stable `code`, so a
 * caller can branch on `err.code` or on the class:
 *
 * | Class | code | When |
 * |---|---|---|
 * | `ApiError` | the server's code (`INSTANCE_NOT_FOUND`, `INVALID_ARGUMENT`, ...) | the server refused the request (4xx); retrying will not help |
 * | `UnavailableError` | `UNAVAILABLE` | no node could serve the request before the deadline (down, unreachable, or no leader) |
 * | `DatacenterUnreachableError` (an `UnavailableError`) | `DATACENTER_UNREACHABLE` | a `dc` request: that datacenter is known but no member of it answered (503) |
 * | `UnknownDatacenterError` (an `ApiError`) | `UNKNOWN_DATACENTER` | a `dc` request: no such datacenter in the federation, or federation is off (400) |
 * | `TimeoutError` | `TIMEOUT` | the deadline passed; for a write, `outcomeUnknown` says whether it may have applied |
 * | `CompactedError` | `COMPACTED` | a watch of every namespace (nothing to re-list) resumed from a revision the server no longer has |
 * | `UnsupportedError` | `UNSUPPORTED` | the server lacks a route this call needs (an older server) |
 * | `NoInstanceError` | `NO_INSTANCE` | a balancer had no instance to pick |
 * | `ClientClosedError` | `CLIENT_CLOSED` | the client (or the watch, registration) was closed |
 */

export class RollcallError extends Error {
  override readonly name: string = 'RollcallError';
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The server answered with an error status and body `{"error": {"code", "message", "field"?}}`. */
export class ApiError extends RollcallError {
  override readonly name: string = 'ApiError';
  constructor(
    readonly status: number,
    code: string,
    message: string,
    /** The input field at fault, when the server named one. */
    readonly field: string | undefined,
    /** The whole `error` object, for extra fields such as `currentVersion`. */
    readonly details: Readonly<Record<string, unknown>>,
    /** The node that answered. */
    readonly node: string | null,
  ) {
    super(code, message);
  }
}

export class UnavailableError extends RollcallError {
  override readonly name: string = 'UnavailableError';
  constructor(message: string, options?: { cause?: unknown; code?: string }) {
    super(options?.code ?? 'UNAVAILABLE', message, options);
  }
}

/**
 * The server's 400 `UNKNOWN_DATACENTER`: the `dc` a call named is not in the federation the
 * answering node knows (or that node runs without federation). Retrying will not help.
 */
export class UnknownDatacenterError extends ApiError {
  override readonly name: string = 'UnknownDatacenterError';
  constructor(
    /** The datacenter the call named. */
    readonly datacenter: string,
    message: string,
    details: Readonly<Record<string, unknown>>,
    node: string | null,
  ) {
    super(400, 'UNKNOWN_DATACENTER', message, undefined, details, node);
  }
}

/**
 * The server's 503 `DATACENTER_UNREACHABLE`: the datacenter a `dc` call named is known, but
 * none of its members answered within the request's deadline (or the failure detector has
 * every member unreachable). An `UnavailableError`, so code that waits out an outage (a
 * watch, `discover` falling back to its snapshot) waits out this one too.
 */
export class DatacenterUnreachableError extends UnavailableError {
  override readonly name: string = 'DatacenterUnreachableError';
  readonly status = 503;
  constructor(
    /** The datacenter the call named. */
    readonly datacenter: string,
    message: string,
    /** The local node that answered for it. */
    readonly node: string | null,
  ) {
    super(message, { code: 'DATACENTER_UNREACHABLE' });
  }
}

export class TimeoutError extends RollcallError {
  override readonly name = 'TimeoutError';
  constructor(
    message: string,
    /** True when a write was sent and may have been applied; retrying it is up to the caller. */
    readonly outcomeUnknown: boolean,
    options?: { cause?: unknown },
  ) {
    super('TIMEOUT', message, options);
  }
}

export class CompactedError extends RollcallError {
  override readonly name = 'CompactedError';
  constructor(
    /** The revision the watch asked to resume from. */
    readonly fromRevision: number,
    /** The server's current revision when it answered. */
    readonly currentRevision: number,
  ) {
    super(
      'COMPACTED',
      `revision ${fromRevision} is no longer in the server's history (now at ${currentRevision}); re-list and watch from there`,
    );
  }
}

export class UnsupportedError extends RollcallError {
  override readonly name = 'UnsupportedError';
  constructor(message: string) {
    super('UNSUPPORTED', message);
  }
}

export class NoInstanceError extends RollcallError {
  override readonly name = 'NoInstanceError';
  constructor(message: string) {
    super('NO_INSTANCE', message);
  }
}

export class ClientClosedError extends RollcallError {
  override readonly name = 'ClientClosedError';
  constructor(what = 'client') {
    super('CLIENT_CLOSED', `the ${what} is closed`);
  }
}
