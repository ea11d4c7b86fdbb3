/**
 * The cluster id in the handshake (src/transport/cluster-identity.ts): nodes of different
 * clusters never connect, whichever side dials, even with the same secret and ids; a
 * joiner without an id takes on the id of the first peer it authenticates with.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';

import { createCodec } from '../src/transport/codec.js';
import { encodeFrames, FrameDecoder } from '../src/transport/framing.js';
import { dialerProof, newNonce } from '../src/transport/handshake.js';
import { ClusterIdentity, TransportError } from '../src/transport/index.js';
import { connectedTo, fullyConnected, Harness, SECRET, type TestNode, waitFor } from './transport-harness.js';

const harness = new Harness();
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await harness.closeAll();
});

type Msg = { readonly seq: number };

function mismatches(node: TestNode<Msg>): Array<Record<string, unknown>> {
  return node.log.records.filter((r) => r['code'] === 'CLUSTER_MISMATCH');
}

describe('cluster id in the peer handshake', () => {
  it('connects nodes of the same cluster id, and nodes that both have none', async () => {
    const [a, b] = await harness.cluster<Msg>(['a', 'b'], { cluster: ClusterIdentity.of('c0ffee') });
    expect(fullyConnected(a!) && fullyConnected(b!)).toBe(true);
    const [c, d] = await harness.cluster<Msg>(['c', 'd']);
    expect(fullyConnected(c!) && fullyConnected(d!)).toBe(true);
  });

  it('refuses a peer of another cluster in both directions, and says so in both logs', async () => {
    const restored = await harness.node<Msg>('n1', { cluster: ClusterIdentity.of('new-cluster') });
    const old = await harness.node<Msg>('n2');
    restored.transport.setPeers(new Map([['n2', old.address]]));
    old.transport.setPeers(new Map([['n1', restored.address]]));

    // Each dialer reads the other's challenge, sees another cluster and hangs up before its hello.
    await waitFor(
      'both sides report the mismatch',
      () => mismatches(restored).length > 0 && mismatches(old).length > 0,
    );
    expect(String(mismatches(restored)[0]?.['reason'])).toMatch(
      /^n2 belongs to another cluster \(no cluster id; this node has cluster id new-cluster\)/,
    );
    expect(String(mismatches(old)[0]?.['reason'])).toMatch(
      /^n1 belongs to another cluster \(cluster id new-cluster; this node has no cluster id\)/,
    );
    expect(mismatches(restored)[0]).toMatchObject({
      level: 40,
      msg: 'handshake with peer failed; will retry',
      peer: 'n2',
    });
    expect(connectedTo(restored, 'n2')).toBe(false);
    expect(connectedTo(old, 'n1')).toBe(false);
    expect(restored.transport.send('n2', { seq: 1 }) || old.transport.send('n1', { seq: 1 })).toBe(false);
  });

  it('refuses, as the acceptor, a dialer that does not check (a build before cluster ids)', async () => {
    const restored = await harness.node<Msg>('n1', { cluster: ClusterIdentity.of('new-cluster') });
    restored.transport.setPeers(new Map([['n2', { host: '127.0.0.1', port: 1 }]]));
    const socket = connect({ host: '127.0.0.1', port: restored.address.port });
    sockets.push(socket);
    socket.on('error', () => undefined);
    const codec = createCodec();
    const decoder = new FrameDecoder(1 << 20);
    socket.on('data', (chunk: Buffer) => {
      for (const frame of decoder.push(chunk).frames) {
        const challenge = codec.decode(frame);
        if (!challenge.ok) throw challenge.error;
        const c = challenge.value as { nonce: Uint8Array; cid?: string };
        expect(c.cid).toBe('new-cluster');
        // An old build ignores `cid` and answers with a good proof and no cluster id.
        const hello = codec.encode({
          t: 'hello',
          id: 'n2',
          nonce: newNonce(),
          mac: dialerProof(SECRET, c.nonce, 'n2', 'n1'),
        });
        if (hello instanceof TransportError) throw hello;
        socket.write(encodeFrames([hello]));
      }
    });
    await waitFor('refused', () => restored.log.records.some((r) => r['msg'] === 'refused peer connection'));
    expect(restored.log.records.find((r) => r['msg'] === 'refused peer connection')).toMatchObject({
      code: 'CLUSTER_MISMATCH',
      claimedId: 'n2',
    });
  });

  it('refuses between two different ids', async () => {
    const a = await harness.node<Msg>('a', { cluster: ClusterIdentity.of('one') });
    const b = await harness.node<Msg>('b', { cluster: ClusterIdentity.of('two'), peers: new Map([['a', a.address]]) });
    a.transport.setPeers(new Map([['b', b.address]]));
    await waitFor('both give up', () => mismatches(a).length > 0 && mismatches(b).length > 0);
    expect(connectedTo(a, 'b') || connectedTo(b, 'a')).toBe(false);
  });

  it('lets an unassigned joiner take on the id of the first peer it authenticates with, then holds it', async () => {
    const adopted: string[] = [];
    const joiner = await harness.node<Msg>('j', { cluster: ClusterIdentity.unassigned((id) => adopted.push(id)) });
    const member = await harness.node<Msg>('m', {
      cluster: ClusterIdentity.of('restored-1'),
      peers: new Map([['j', joiner.address]]),
    });
    joiner.transport.setPeers(new Map([['m', member.address]]));
    await waitFor('joined', () => fullyConnected(joiner) && fullyConnected(member));
    expect(adopted).toEqual(['restored-1']);

    // Now it is of that cluster: a node without an id is refused.
    const stranger = await harness.node<Msg>('s', { peers: new Map([['j', joiner.address]]) });
    joiner.transport.setPeers(
      new Map([
        ['m', member.address],
        ['s', stranger.address],
      ]),
    );
    await waitFor('the joiner refuses the stranger', () => mismatches(joiner).length > 0);
    expect(connectedTo(stranger, 'j')).toBe(false);
  });
});
