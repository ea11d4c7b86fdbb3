/**
 * Loopback throughput of the peer transport: one node streams messages to another for a
 * fixed time and we count what arrives.
 *
 *   npm run build && node dist/scripts/bench-transport.js [--seconds 5] [--size 256]
 *
 * The sender keeps a bounded number of messages in flight, like Raft's pipelining does,
 * so the figure is sustained throughput rather than how fast a queue can be filled and
 * dropped.
 */
import { parseArgs } from 'node:util';

import { pino } from 'pino';

import { PeerTransport } from '../src/transport/index.js';

interface BenchMessage {
  readonly seq: number;
  readonly data: Uint8Array;
}

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    size: { type: 'string', default: '256' },
  },
});
const seconds = Math.min(Math.max(Number(values.seconds), 0.5), 60);
const size = Math.max(Number(values.size), 0);
/** Messages per tick: up to ~1 MiB, at most 256. */
const batch = Math.min(256, Math.max(1, Math.floor((1024 * 1024) / (size + 32))));
/** In-flight cap: enough to keep the pipe full, far below the transport's queue bound. */
const WINDOW_BYTES = 16 * 1024 * 1024;
const windowMessages = Math.max(4 * batch, Math.floor(WINDOW_BYTES / (size + 32)));

async function main(): Promise<void> {
  const logger = pino({ level: 'warn' });
  let received = 0;
  let receivedPayloadBytes = 0;
  const secret = 'bench-secret';
  const receiver = new PeerTransport<BenchMessage>({
    id: 'receiver',
    listen: { host: '127.0.0.1', port: 0 },
    peers: new Map(),
    secret,
    logger,
    onMessage: (_from, message) => {
      received += 1;
      receivedPayloadBytes += message.data.byteLength;
    },
  });
  const receiverAddress = await receiver.start();
  const sender = new PeerTransport<BenchMessage>({
    id: 'sender',
    listen: { host: '127.0.0.1', port: 0 },
    peers: new Map([['receiver', receiverAddress]]),
    secret,
    logger,
    onMessage: () => undefined,
  });
  const senderAddress = await sender.start();
  receiver.setPeers(new Map([['sender', senderAddress]]));

  try {
    const connectDeadline = Date.now() + 5_000;
    while (sender.stats().peers['receiver']?.connected !== true) {
      if (Date.now() > connectDeadline) throw new Error('sender could not connect to receiver within 5 s');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }

    const data = new Uint8Array(size).fill(0xab);
    let sent = 0;
    const started = performance.now();
    const stopAt = started + seconds * 1_000;
    await new Promise<void>((resolve) => {
      const pump = (): void => {
        if (performance.now() >= stopAt) {
          resolve();
          return;
        }
        if (sent - received < windowMessages) {
          for (let i = 0; i < batch; i += 1) sender.send('receiver', { seq: sent++, data });
          setImmediate(pump);
        } else {
          // Window full: yield to I/O until the receiver catches up.
          setTimeout(pump, 0);
        }
      };
      pump();
    });
    const elapsedMs = performance.now() - started;
    const stats = sender.stats().peers['receiver'];
    const messagesPerSecond = received / (elapsedMs / 1_000);
    const megabytesPerSecond = receivedPayloadBytes / (elapsedMs / 1_000) / 1e6;
    const wireMegabytesPerSecond = (stats?.sentBytes ?? 0) / (elapsedMs / 1_000) / 1e6;
    const framesPerWrite = stats !== undefined && stats.writes > 0 ? stats.sentFrames / stats.writes : 0;
    console.log(
      `bench-transport: ${size} B payloads, ${(elapsedMs / 1_000).toFixed(1)} s: ` +
        `${Math.round(messagesPerSecond).toLocaleString('en-US')} msg/s, ` +
        `${megabytesPerSecond.toFixed(1)} MB/s payload (${wireMegabytesPerSecond.toFixed(1)} MB/s on the wire), ` +
        `${framesPerWrite.toFixed(1)} frames/write, ${stats?.dropped ?? 0} dropped`,
    );
  } finally {
    await Promise.all([sender.close(), receiver.close()]);
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
