/**
 * Running a user command: its shape, the client it works with (built from the global flags,
 * closed when the command ends), and the signal that ends a long-running one.
 */
import { RollcallClient } from '../../client/index.js';
import { reportError } from './exit-codes.js';
import type { Globals } from './flags.js';
import type { Io } from './output.js';

export interface Command {
  readonly name: string;
  readonly summary: string;
  readonly help: string;
  run(argv: readonly string[], io: Io): Promise<number>;
}

/** A client from the global flags; the caller closes it. */
export function makeClient(g: Globals): RollcallClient {
  return new RollcallClient({
    endpoints: g.endpoints,
    ...(g.token === undefined ? {} : { token: g.token }),
    ...(g.tls === undefined ? {} : { tls: g.tls }),
    ...(g.dc === undefined ? {} : { dc: g.dc }),
    requestTimeoutMs: g.timeoutMs,
    attemptTimeoutMs: Math.min(2500, g.timeoutMs),
    discoverTimeoutMs: Math.min(3000, g.timeoutMs),
  });
}

/** Runs `body` with a client from the global flags, closes it, and maps errors to exit codes. */
export async function withClient(
  io: Io,
  g: Globals,
  body: (client: RollcallClient) => Promise<number>,
): Promise<number> {
  const client = makeClient(g);
  try {
    return await body(client);
  } catch (err) {
    return reportError(io, err, g.json);
  } finally {
    await client.close();
  }
}

/** Resolves on the first SIGINT or SIGTERM (and stops listening). */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (sig: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(sig);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
