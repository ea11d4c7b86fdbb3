/**
 * abortOnClose (src/consul/request.ts), what ends a parked Consul blocking query when its
 * client goes: over a real HTTP server and TCP client, a client gone before the hook is
 * attached (while the request's hooks or its read barrier ran) still ends the wait at once.
 */
import { createServer } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import type { FastifyReply } from 'fastify';
import { describe, expect, it } from 'vitest';
import { abortOnClose } from '../src/consul/request.js';

/** A blocking wait as blockUntilPast parks one: it ends when the signal says so, else after its wait. */
function park(signal: AbortSignal, waitMs: number): Promise<string> {
  return new Promise<string>((resolve) => {
    const wait = setTimeout(() => resolve('waited its whole wait'), waitMs);
    const stop = (): void => {
      clearTimeout(wait);
      resolve('ended at once');
    };
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
  });
}

/** Serves one request with `handle`, from a client that writes it and goes; resolves with what `handle` said. */
async function serveGoneClient(handle: (reply: FastifyReply) => Promise<string>): Promise<string> {
  let outcome: (what: string) => void = () => undefined;
  const ended = new Promise<string>((resolve) => {
    outcome = resolve;
  });
  const server = createServer((req, res) => {
    const reply = { raw: res } as unknown as FastifyReply;
    // The hook is attached only once the client has gone, as when it leaves during the read barrier.
    req.socket.once('close', () => {
      setImmediate(() => handle(reply).then(outcome, (err: unknown) => outcome(String(err))));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1', () => {
    client.write('GET /v1/health/service/web?index=3&wait=100s HTTP/1.1\r\nhost: x\r\n\r\n', () => client.destroy());
  });
  try {
    return await ended;
  } finally {
    client.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

describe('abortOnClose', () => {
  it('a client gone before the hook is attached ends the wait at once (client_gone_before_abort_hook)', async () => {
    const said = await serveGoneClient(async (reply) => {
      const { signal, done } = abortOnClose(reply);
      try {
        return await park(signal, 3_000);
      } finally {
        done();
      }
    });
    expect(said).toBe('ended at once');
  });

  it('a client still there is waited for, until it goes', async () => {
    let hooked: (signal: AbortSignal) => void = () => undefined;
    const signalled = new Promise<AbortSignal>((resolve) => {
      hooked = resolve;
    });
    const server = createServer((_req, res) => {
      const { signal } = abortOnClose({ raw: res } as unknown as FastifyReply);
      hooked(signal);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1', () => {
      client.write('GET /v1/health/service/web?index=3&wait=100s HTTP/1.1\r\nhost: x\r\n\r\n');
    });
    try {
      const signal = await signalled;
      expect(signal.aborted).toBe(false);
      const parked = park(signal, 3_000);
      client.destroy();
      expect(await parked).toBe('ended at once');
    } finally {
      client.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
