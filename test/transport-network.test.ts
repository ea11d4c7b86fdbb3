import { createServer } from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';

import { PeerTransport, TransportError } from '../src/transport/index.js';
import {
  captureLogger,
  connectedTo,
  fullyConnected,
  Harness,
  peerStats,
  SECRET,
  waitFor,
} from './transport-harness.js';

interface Msg {
  readonly seq: number;
  readonly from: string;
  readonly data?: Uint8Array;
}

const harness = new Harness();
afterEach(() => harness.closeAll());

describe('PeerTransport messaging', () => {
  it('three nodes exchange messages in order, with Uint8Array payloads intact', async () => {
    const nodes = await harness.cluster<Msg>(['a', 'b', 'c']);
    const perPair = 500;
    for (const sender of nodes) {
      for (const receiver of nodes) {
        if (receiver === sender) continue;
        for (let seq = 0; seq < perPair; seq += 1) {
          const data = new Uint8Array([seq & 0xff, (seq >> 8) & 0xff, 0, 255]);
          sender.transport.send(receiver.id, { seq, from: sender.id, data });
        }
      }
    }
    await waitFor('all messages delivered', () => nodes.every((node) => node.received.length === 2 * perPair));
    const expected = (from: string) =>
      Array.from({ length: perPair }, (_, seq) => ({ seq, from, data: [seq & 0xff, (seq >> 8) & 0xff, 0, 255] }));
    for (const node of nodes) {
      for (const sender of nodes) {
        if (sender === node) continue;
        const fromSender = node.received.filter((r) => r.from === sender.id);
        expect(fromSender.every((r) => r.message.data instanceof Uint8Array)).toBe(true);
        // One comparison per pair: order, content and binary payloads together.
        expect(fromSender.map((r) => ({ ...r.message, data: [...(r.message.data ?? [])] }))).toEqual(
          expected(sender.id),
        );
      }
    }
  });

  it('writes everything sent in one tick with a single socket write', async () => {
    const [a, b] = await harness.cluster<Msg>(['a', 'b']);
    if (a === undefined || b === undefined) throw new Error('cluster');
    a.transport.sendMany(
      'b',
      Array.from({ length: 1000 }, (_, seq) => ({ seq, from: 'a' })),
    );
    expect(peerStats(a, 'b').queuedBytes).toBeGreaterThan(0);
    await waitFor('1000 delivered', () => b.received.length === 1000);
    const stats = peerStats(a, 'b');
    expect(stats.sentFrames).toBe(1000);
    expect(stats.writes).toBe(1);
    expect(stats.queuedBytes).toBe(0);
    expect(peerStats(b, 'a').receivedFrames).toBe(1000);
    expect(peerStats(b, 'a').receivedBytes).toBe(stats.sentBytes);
  });

  it('flush() hands what is queued to the socket at once, in order, and the scheduled flush writes nothing more', async () => {
    const [a, b] = await harness.cluster<Msg>(['a', 'b']);
    if (a === undefined || b === undefined) throw new Error('cluster');
    a.transport.sendMany(
      'b',
      Array.from({ length: 3 }, (_, seq) => ({ seq, from: 'a' })),
    );
    expect(peerStats(a, 'b').writes).toBe(0);
    a.transport.flush();
    // Written in this very turn, before the event loop could run the scheduled flush.
    expect(peerStats(a, 'b')).toMatchObject({ writes: 1, sentFrames: 3, queuedBytes: 0 });
    a.transport.send('b', { seq: 3, from: 'a' });
    await waitFor('4 delivered', () => b.received.length === 4);
    expect(b.received.map((r) => r.message.seq)).toEqual([0, 1, 2, 3]);
    expect(peerStats(a, 'b')).toMatchObject({ writes: 2, sentFrames: 4 });
    a.transport.flush(); // nothing queued: no write
    expect(peerStats(a, 'b').writes).toBe(2);
  });

  it('keeps delivering after onMessage throws, and logs the error', async () => {
    const log = captureLogger();
    const b = await harness.node<Msg>('b');
    const seen: number[] = [];
    const a = new PeerTransport<Msg>({
      id: 'a',
      listen: { host: '127.0.0.1', port: 0 },
      peers: new Map([['b', b.address]]),
      secret: SECRET,
      logger: log.logger,
      onMessage: (_from, message) => {
        seen.push(message.seq);
        if (message.seq === 1) throw new Error('handler bug');
      },
    });
    try {
      const aAddress = await a.start();
      b.transport.setPeers(new Map([['a', aAddress]]));
      await waitFor('b -> a connected', () => connectedTo(b, 'a'));
      b.transport.sendMany(
        'a',
        [0, 1, 2].map((seq) => ({ seq, from: 'b' })),
      );
      await waitFor('3 delivered', () => seen.length === 3);
      expect(seen).toEqual([0, 1, 2]);
      expect(log.records.some((r) => r['level'] === 50 && String(r['msg']).includes('onMessage handler threw'))).toBe(
        true,
      );
    } finally {
      await a.close();
    }
  });
});

describe('PeerTransport connections', () => {
  it('reconnects after the remote closes and restarts on the same port', async () => {
    const [a, b] = await harness.cluster<Msg>(['a', 'b']);
    if (a === undefined || b === undefined) throw new Error('cluster');
    await b.transport.close();
    await waitFor('a notices b is gone', () => !connectedTo(a, 'b'));
    expect(a.events).toContainEqual(expect.objectContaining({ peer: 'b', direction: 'outbound', connected: false }));

    a.transport.send('b', { seq: -1, from: 'a' });
    expect(peerStats(a, 'b').droppedBy.disconnected).toBeGreaterThanOrEqual(1);

    const b2 = await harness.node<Msg>('b', {
      listen: b.address,
      peers: new Map([['a', a.address]]),
    });
    expect(b2.address.port).toBe(b.address.port);
    await waitFor('a reconnects to the restarted b', () => connectedTo(a, 'b') && fullyConnected(b2));
    expect(peerStats(a, 'b').connects).toBe(2);
    a.transport.send('b', { seq: 1, from: 'a' });
    b2.transport.send('a', { seq: 2, from: 'b' });
    await waitFor('messages flow both ways again', () => b2.received.length === 1 && a.received.length === 1);
    expect(b2.received[0]?.message.seq).toBe(1);
    expect(a.received[0]?.message.seq).toBe(2);
  });

  it('counts messages to a peer that is down, and to unknown ids, as dropped', async () => {
    const a = await harness.node<Msg>('a', {
      // Nobody listens here: the port was just released.
      peers: new Map([['ghost', await freePort()]]),
    });
    a.transport.sendMany('ghost', [
      { seq: 1, from: 'a' },
      { seq: 2, from: 'a' },
    ]);
    a.transport.send('nobody', { seq: 3, from: 'a' });
    const stats = a.transport.stats();
    expect(stats.peers['ghost']).toMatchObject({ connected: false, dropped: 2, sentFrames: 0 });
    expect(stats.droppedUnknownPeer).toBe(1);
    // Connection refused while a peer is down is routine: debug, never warn or error.
    await waitFor('a dial attempt failed', () =>
      a.log.records.some((r) => r['msg'] === 'cannot reach peer; will retry'),
    );
    expect(a.log.records.filter((r) => Number(r['level']) >= 40)).toEqual([]);
  });

  it('drops and counts messages beyond the per-peer queue bound', async () => {
    const [a, b] = await harness.cluster<Msg>(['a', 'b'], { maxQueueBytes: 2_000 });
    if (a === undefined || b === undefined) throw new Error('cluster');
    const data = new Uint8Array(200);
    a.transport.sendMany(
      'b',
      Array.from({ length: 50 }, (_, seq) => ({ seq, from: 'a', data })),
    );
    const stats = peerStats(a, 'b');
    expect(stats.droppedBy.queueFull).toBeGreaterThan(0);
    expect(stats.queuedBytes).toBeLessThanOrEqual(2_000);
    const queued = 50 - stats.droppedBy.queueFull;
    await waitFor('queued messages delivered', () => b.received.length === queued);
    expect(b.received.map((r) => r.message.seq)).toEqual(Array.from({ length: queued }, (_, i) => i));
  });

  it('closes a connection that carries a frame over the limit, with a logged error', async () => {
    const [a, b] = await harness.cluster<Msg>(['a', 'b']);
    if (a === undefined || b === undefined) throw new Error('cluster');
    const small = await harness.node<Msg>('small', { maxFrameBytes: 1_000 });
    const peers = new Map([
      ['a', a.address],
      ['small', small.address],
    ]);
    a.transport.setPeers(peers);
    small.transport.setPeers(peers);
    await waitFor('a <-> small connected', () => connectedTo(a, 'small') && connectedTo(small, 'a'));

    // Sender-side limit: small refuses to send what it could not receive itself.
    small.transport.send('a', { seq: 0, from: 'small', data: new Uint8Array(5_000) });
    expect(peerStats(small, 'a').droppedBy.tooLarge).toBe(1);
    expect(small.log.records.some((r) => r['level'] === 50 && r['code'] === 'FRAME_TOO_LARGE')).toBe(true);

    // Receiver-side limit: a (64 MiB limit) sends 5 kB to small (1 kB limit).
    a.transport.send('small', { seq: 1, from: 'a', data: new Uint8Array(5_000) });
    await waitFor('small logs the oversized frame', () =>
      small.log.records.some((r) => r['level'] === 50 && r['code'] === 'FRAME_TOO_LARGE' && r['peer'] === 'a'),
    );
    expect(small.received).toEqual([]);
    // ...and the stream recovers: a redials and small messages get through.
    await waitFor('a redialed small', () => peerStats(a, 'small').connects >= 2 && connectedTo(a, 'small'));
    a.transport.send('small', { seq: 2, from: 'a' });
    await waitFor('small message delivered', () => small.received.length === 1);
    expect(small.received[0]?.message.seq).toBe(2);
  });

  it('follows membership changes: new peers are dialed, removed peers are cut off both ways', async () => {
    const [a, b] = await harness.cluster<Msg>(['a', 'b']);
    if (a === undefined || b === undefined) throw new Error('cluster');
    const c = await harness.node<Msg>('c');
    const all = new Map([
      ['a', a.address],
      ['b', b.address],
      ['c', c.address],
    ]);
    for (const node of [a, b, c]) node.transport.setPeers(all);
    await waitFor('c joined the mesh', () => [a, b, c].every((node) => fullyConnected(node)));

    // a and b drop c; c still lists them.
    const withoutC = new Map([
      ['a', a.address],
      ['b', b.address],
    ]);
    a.transport.setPeers(withoutC);
    b.transport.setPeers(withoutC);
    expect(Object.keys(a.transport.stats().peers)).toEqual(['b']);
    await waitFor('c is disconnected from a and b', () => !connectedTo(c, 'a') && !connectedTo(c, 'b'));
    // c keeps redialing but is now refused as an unknown id.
    await waitFor('a refused c', () =>
      a.log.records.some((r) => r['msg'] === 'refused peer connection' && r['claimedId'] === 'c'),
    );
    a.transport.send('c', { seq: 1, from: 'a' });
    expect(a.transport.stats().droppedUnknownPeer).toBe(1);
    expect(connectedTo(a, 'b')).toBe(true);
  });

  it('reports peer status changes in both directions', async () => {
    const [a, b] = await harness.cluster<Msg>(['a', 'b']);
    if (a === undefined || b === undefined) throw new Error('cluster');
    expect(a.events).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ peer: 'b', direction: 'outbound', connected: true }),
        expect.objectContaining({ peer: 'b', direction: 'inbound', connected: true }),
      ]),
    );
    const before = Date.now();
    b.transport.send('a', { seq: 1, from: 'b' });
    await waitFor('delivered', () => a.received.length === 1);
    expect(peerStats(a, 'b').lastContact).toBeGreaterThanOrEqual(before);
    await b.transport.close();
    await waitFor(
      'a sees both directions go down',
      () =>
        a.events.some((e) => e.direction === 'inbound' && !e.connected) &&
        a.events.some((e) => e.direction === 'outbound' && !e.connected),
    );
  });
});

describe('PeerTransport: telling a dead peer from a slow one', () => {
  it('send() says whether a message was queued, and isConnected() follows the stream', async () => {
    const [a, b] = await harness.cluster<Msg>(['a', 'b']);
    if (a === undefined || b === undefined) throw new Error('cluster');
    expect(a.transport.isConnected('b')).toBe(true);
    expect(a.transport.send('b', { seq: 1, from: 'a' })).toBe(true);
    expect(a.transport.send('nobody', { seq: 2, from: 'a' })).toBe(false);
    await b.transport.close();
    await waitFor('a sees b go', () => !a.transport.isConnected('b'));
    expect(a.transport.send('b', { seq: 3, from: 'a' })).toBe(false);
  });

  it('reports a refused dial (the process is gone), and not a peer that is merely connected', async () => {
    const refused: string[] = [];
    const a = await harness.node<Msg>('a', { onPeerRefused: (peer) => refused.push(peer) });
    const b = await harness.node<Msg>('b');
    a.transport.setPeers(new Map([['b', b.address]]));
    b.transport.setPeers(new Map([['a', a.address]]));
    await waitFor('connected', () => connectedTo(a, 'b'));
    expect(refused).toEqual([]);
    await b.transport.close();
    await waitFor('a redials b and is refused', () => refused.includes('b'));
    expect(new Set(refused)).toEqual(new Set(['b']));
  });
});

describe('PeerTransport fault hook', () => {
  it('drops messages in both directions and heals', async () => {
    const [a, b] = await harness.cluster<Msg>(['a', 'b'], { faults: true });
    if (a === undefined || b === undefined) throw new Error('cluster');

    a.transport.setFaults({ dropTo: ['b'] });
    a.transport.send('b', { seq: 1, from: 'a' });
    expect(peerStats(a, 'b').droppedBy.fault).toBe(1);
    expect(peerStats(a, 'b').sentFrames).toBe(0);

    a.transport.setFaults({ dropFrom: ['b'] });
    b.transport.send('a', { seq: 2, from: 'b' });
    await waitFor('a received and dropped the frame from b', () => peerStats(a, 'b').receivedDropped === 1);
    expect(a.received).toEqual([]);

    a.transport.setFaults({});
    a.transport.send('b', { seq: 3, from: 'a' });
    b.transport.send('a', { seq: 4, from: 'b' });
    await waitFor('healed both ways', () => a.received.length === 1 && b.received.length === 1);
    expect(b.received.map((r) => r.message.seq)).toEqual([3]);
    expect(a.received.map((r) => r.message.seq)).toEqual([4]);
  });

  it('refuses fault injection unless constructed with faults: true', async () => {
    const a = await harness.node<Msg>('a');
    expect(() => a.transport.setFaults({ dropTo: ['b'] })).toThrow(TransportError);
    try {
      a.transport.setFaults({});
    } catch (error) {
      expect((error as TransportError).code).toBe('FAULTS_DISABLED');
    }
  });
});

describe('PeerTransport lifecycle', () => {
  it('close() releases the port, sockets and timers', async () => {
    const baseline = handles();
    const [a, b] = await harness.cluster<Msg>(['a', 'b']);
    if (a === undefined || b === undefined) throw new Error('cluster');
    a.transport.send('b', { seq: 1, from: 'a' }); // leaves a flush pending
    expect(handles()).not.toEqual(baseline);
    await Promise.all([a.transport.close(), b.transport.close()]);
    await a.transport.close(); // idempotent
    expect(a.transport.stats().peers['b']).toMatchObject({ connected: false, inboundConnected: false });
    // Every listener, socket, timer and immediate the two transports created is gone. (A
    // closed server's handle is released by libuv one loop turn after its callback, hence the wait.)
    await waitFor('handles back to the baseline', () =>
      Object.entries(handles()).every(([kind, count]) => count <= (baseline[kind] ?? 0)),
    );
    // The exact port can be bound again.
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(a.address.port, '127.0.0.1', resolve);
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
    // Closed transports cannot be restarted and drop (and count) sends.
    await expect(a.transport.start()).rejects.toMatchObject({ code: 'INVALID_STATE' });
    a.transport.send('b', { seq: 1, from: 'a' });
    expect(peerStats(a, 'b').droppedBy.disconnected).toBeGreaterThanOrEqual(1);
  });

  it('reports a busy port as LISTEN_FAILED', async () => {
    const a = await harness.node<Msg>('a');
    const clash = new PeerTransport<Msg>({
      id: 'clash',
      listen: a.address,
      peers: new Map(),
      secret: SECRET,
      logger: captureLogger().logger,
      onMessage: () => undefined,
    });
    await expect(clash.start()).rejects.toMatchObject({ name: 'TransportError', code: 'LISTEN_FAILED' });
    await clash.close();
  });

  it('close() during start() still releases the listener', async () => {
    const log = captureLogger();
    const t = new PeerTransport<Msg>({
      id: 'x',
      listen: { host: '127.0.0.1', port: 0 },
      peers: new Map(),
      secret: SECRET,
      logger: log.logger,
      onMessage: () => undefined,
    });
    const started = t.start();
    const closed = t.close();
    await expect(started).rejects.toMatchObject({ code: 'INVALID_STATE' });
    await closed;
    expect(t.stats().listening).not.toBeNull();
    const port = t.stats().listening?.port ?? 0;
    const server = createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', resolve);
    });
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
});

/** Counts of the libuv handle kinds a transport can leave behind. */
function handles(): Record<string, number> {
  const counts: Record<string, number> = { TCPServerWrap: 0, TCPSocketWrap: 0, Timeout: 0, Immediate: 0 };
  for (const kind of process.getActiveResourcesInfo()) {
    if (kind in counts) counts[kind] = (counts[kind] ?? 0) + 1;
  }
  return counts;
}

/** A loopback port with nothing listening on it. */
async function freePort(): Promise<{ host: string; port: number }> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no address');
  return { host: '127.0.0.1', port: address.port };
}
