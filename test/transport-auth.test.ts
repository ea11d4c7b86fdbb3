import { connect, createServer, type Server, type Socket } from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';

import { createCodec } from '../src/transport/codec.js';
import { encodeFrames, FrameDecoder } from '../src/transport/framing.js';
import { dialerProof, newNonce, PROTOCOL_VERSION } from '../src/transport/handshake.js';
import { TransportError } from '../src/transport/index.js';
import { connectedTo, Harness, peerStats, SECRET, type TestNode, waitFor } from './transport-harness.js';

interface Msg {
  readonly seq: number;
}

const harness = new Harness();
const rawSockets: Socket[] = [];
const rawServers: Server[] = [];

afterEach(async () => {
  for (const socket of rawSockets.splice(0)) socket.destroy();
  await Promise.all(rawServers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  await harness.closeAll();
});

function refusals(node: TestNode<Msg>): Array<Record<string, unknown>> {
  return node.log.records.filter((r) => r['msg'] === 'refused peer connection');
}

/** A hand-driven client, for speaking (or not speaking) the protocol badly on purpose. */
async function rawClient(port: number): Promise<{ socket: Socket; frames: unknown[] }> {
  const socket = connect({ host: '127.0.0.1', port });
  rawSockets.push(socket);
  socket.on('error', () => undefined);
  const codec = createCodec();
  const decoder = new FrameDecoder(1 << 20);
  const frames: unknown[] = [];
  socket.on('data', (chunk: Buffer) => {
    for (const frame of decoder.push(chunk).frames) {
      const decoded = codec.decode(frame);
      frames.push(decoded.ok ? decoded.value : decoded.error);
    }
  });
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  return { socket, frames };
}

function isClosed(socket: Socket): boolean {
  return socket.destroyed || socket.readableEnded;
}

describe('PeerTransport authentication', () => {
  it('refuses a peer with the wrong secret, logs it, and never logs either secret', async () => {
    const a = await harness.node<Msg>('a');
    const intruder = await harness.node<Msg>('b', {
      secret: 'not the cluster secret',
      peers: new Map([['a', a.address]]),
    });
    a.transport.setPeers(new Map([['b', intruder.address]]));

    await waitFor('a refuses b', () => refusals(a).length > 0);
    const [warning] = refusals(a);
    expect(warning).toMatchObject({ level: 40, claimedId: 'b', code: 'AUTH_FAILED' });
    expect(String(warning?.['remote'])).toMatch(/^127\.0\.0\.1:\d+$/);
    // The intruder is told nothing and sees only a hang-up after its hello.
    await waitFor('intruder warns about the failed handshake', () =>
      intruder.log.records.some((r) => r['level'] === 40 && r['code'] === 'AUTH_FAILED' && r['peer'] === 'a'),
    );
    // Symmetric: b refuses a's dial just the same, and a says so.
    await waitFor('a is refused by b', () =>
      a.log.records.some((r) => r['level'] === 40 && r['code'] === 'AUTH_FAILED' && r['peer'] === 'b'),
    );

    intruder.transport.send('a', { seq: 1 });
    a.transport.send('b', { seq: 2 });
    expect(connectedTo(intruder, 'a')).toBe(false);
    expect(connectedTo(a, 'b')).toBe(false);
    expect(a.received).toEqual([]);
    expect(intruder.received).toEqual([]);
    expect(a.transport.stats().refusedConnections).toBeGreaterThan(0);

    for (const line of [...a.log.raw, ...intruder.log.raw]) {
      expect(line).not.toContain(SECRET);
      expect(line).not.toContain('not the cluster secret');
      expect(line).not.toMatch(/"mac"/);
    }
  });

  it('refuses a correct-secret node whose id is not a peer', async () => {
    const a = await harness.node<Msg>('a');
    const stranger = await harness.node<Msg>('z', { peers: new Map([['a', a.address]]) });
    await waitFor('a refuses z', () => refusals(a).some((r) => r['claimedId'] === 'z'));
    expect(refusals(a)[0]).toMatchObject({ code: 'AUTH_FAILED' });
    expect(connectedTo(stranger, 'a')).toBe(false);
  });

  it('refuses a client that never completes the handshake, after the timeout', async () => {
    const a = await harness.node<Msg>('a', { handshakeTimeoutMs: 200 });
    const { socket, frames } = await rawClient(a.address.port);
    await waitFor('challenge received', () => frames.length === 1);
    expect(frames[0]).toMatchObject({ t: 'challenge', v: PROTOCOL_VERSION, id: 'a' });
    await waitFor('a hangs up', () => isClosed(socket));
    expect(refusals(a)).toEqual([expect.objectContaining({ code: 'HANDSHAKE_TIMEOUT', claimedId: null })]);
  });

  it('refuses a forged hello (right id, wrong proof) and an oversized pre-auth frame', async () => {
    const a = await harness.node<Msg>('a');
    const b = await harness.node<Msg>('b', { peers: new Map([['a', a.address]]) });
    a.transport.setPeers(new Map([['b', b.address]]));
    await waitFor('b connected', () => connectedTo(b, 'a'));

    const forger = await rawClient(a.address.port);
    await waitFor('challenge', () => forger.frames.length === 1);
    const codec = createCodec();
    const hello = codec.encode({
      t: 'hello',
      id: 'b',
      nonce: newNonce(),
      // A proof over a nonce of our choosing: a replay, not an answer to a's challenge.
      mac: dialerProof(SECRET, newNonce(), 'b', 'a'),
    });
    if (hello instanceof TransportError) throw hello;
    forger.socket.write(encodeFrames([hello]));
    await waitFor('forger refused', () => isClosed(forger.socket));
    expect(refusals(a).at(-1)).toMatchObject({ code: 'AUTH_FAILED', claimedId: 'b' });

    const flooder = await rawClient(a.address.port);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(10 * 1024 * 1024, 0);
    flooder.socket.write(header);
    await waitFor('flooder refused', () => isClosed(flooder.socket));
    expect(refusals(a).at(-1)).toMatchObject({ code: 'FRAME_TOO_LARGE' });

    // The real b was never disturbed.
    expect(connectedTo(b, 'a')).toBe(true);
    expect(peerStats(a, 'b').inboundConnected).toBe(true);
  });

  it('does not send to an acceptor that cannot prove the secret (mutual authentication)', async () => {
    // An impostor listens where peer b should be, answers with b's id, and sends a bogus welcome.
    const impostor = createServer((socket) => {
      socket.on('error', () => undefined);
      const codec = createCodec();
      const challenge = codec.encode({ t: 'challenge', v: PROTOCOL_VERSION, id: 'b', nonce: newNonce() });
      if (challenge instanceof TransportError) throw challenge;
      socket.write(encodeFrames([challenge]));
      socket.once('data', () => {
        const welcome = codec.encode({ t: 'welcome', mac: new Uint8Array(32) });
        if (welcome instanceof TransportError) throw welcome;
        socket.write(encodeFrames([welcome]));
      });
    });
    rawServers.push(impostor);
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    const address = impostor.address();
    if (address === null || typeof address === 'string') throw new Error('no address');

    const a = await harness.node<Msg>('a', { peers: new Map([['b', { host: '127.0.0.1', port: address.port }]]) });
    await waitFor('a rejects the impostor', () =>
      a.log.records.some((r) => r['level'] === 40 && r['code'] === 'AUTH_FAILED' && r['peer'] === 'b'),
    );
    a.transport.send('b', { seq: 1 });
    expect(peerStats(a, 'b')).toMatchObject({ connected: false, sentFrames: 0, connects: 0 });
    expect(a.events).toEqual([]);
  });
});
