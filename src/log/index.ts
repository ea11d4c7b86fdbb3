/**
 * Structured logs (pino). Quiet by default: `info` says what a person on call needs
 * (leader changes, membership, expiry protection, refused peers); `debug` the rest.
 */

import type { Logger } from 'pino';
import pino from 'pino';

export type { Logger };

export interface LogOptions {
  readonly level?: string;
  readonly name?: string;
  /** Where to write; defaults to stdout. */
  readonly destination?: pino.DestinationStream;
}

export function createLogger(options: LogOptions = {}): Logger {
  const opts: pino.LoggerOptions = {
    level: options.level ?? process.env.ROLLCALL_LOG_LEVEL ?? 'info',
    base: options.name ? { node: options.name } : null,
    // Tokens and secrets are never logged; redact them if a caller slips.
    redact: {
      paths: ['secret', 'token', 'authorization', 'req.headers.authorization', '*.secret', '*.token'],
      censor: '[redacted]',
    },
  };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}

/** A logger that writes nothing, for tests of one part. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export { OTHER_KEYS, RepeatLimiter, type RepeatLimiterOptions, type RepeatSummary } from './repeat-limiter.js';
