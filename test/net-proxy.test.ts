/**
 * The partition proxy (scripts/net-proxy.ts) on real loopback sockets: it relays bytes
 * unchanged and passes half-closes on; a delay holds every chunk and keeps the order; a
 * reset cut resets open and new connections; a blackhole holds everything, either way,
 * and delivers it in order on heal; conditions per source leave other sources alone; a
 * dead upstream is refused through it; close() leaves nothing open. Then the cluster
 * wiring (scripts/peer-net.ts) with real peer transports: one-way and two-way cuts of
 * ordered links, healed.
 */
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ANY_SOURCE, type Endpoint, TcpProxy } from '../scripts/net-proxy.js';
import { dialerId, PeerNet } from '../scripts/peer-net.js';
import { createCodec } from '../src/transport/codec.js';
import { encodeFrames } from '../src/transport/framing.js';
import { connectedTo, Harness, type TestNode, waitFor } from './transport-harness.js';

const owned: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(
    owned
      .splice(0)
      .reverse()
      .map((o) => o.close()),
  );
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A server on 127.0.0.1 that keeps every connection it accepts and what it read, with times. */
interface TestServer {
  readonly endpoint: Endpoint;
  readonly server: Server;
  readonly conns: Array<{ socket: Socket; data: Buffer[]; times: number[]; ended: boolean }>;
  close(): Promise<void>;
}

async function testServer(onConnect?: (s: Socket) => void, port = 0): Promise<TestServer> {
  const conns: TestServer['conns'] = [];
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    const c = { socket, data: [] as Buffer[], times: [] as number[], ended: false };
    conns.push(c);
    socket.on('data', (d: Buffer) => {
      c.data.push(d);
      c.times.push(performance.now());
    });
    socket.on('end', () => (c.ended = true));
    socket.on('error', () => undefined);
    onConnect?.(socket);
  });
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()));
  const addr = server.address() as { port: number };
  const t: TestServer = {
    endpoint: { host: '127.0.0.1', port: addr.port },
    server,
    conns,
    close: () =>
      new Promise<void>((r) => {
        for (const c of conns) c.socket.destroy();
        server.close(() => r());
      }),
  };
  owned.push(t);
  return t;
}

async function startProxy(
  upstream: Endpoint,
  extra: Partial<Parameters<typeof TcpProxy.start>[0]> = {},
): Promise<TcpProxy> {
  const p = await TcpProxy.start({ upstream, ...extra });
  owned.push(p);
  return p;
}

/** A client socket with everything it read; `error` holds the first socket error code. */
interface TestClient {
  readonly socket: Socket;
  readonly data: Buffer[];
  closed: boolean;
  ended: boolean;
  error: string | null;
  text(): string;
}

function dial(to: Endpoint): TestClient {
  const socket = connect({ host: to.host, port: to.port, allowHalfOpen: true });
  const c: TestClient = {
    socket,
    data: [],
    closed: false,
    ended: false,
    error: null,
    text: () => Buffer.concat(c.data).toString(),
  };
  socket.on('data', (d: Buffer) => c.data.push(d));
  socket.on('end', () => (c.ended = true));
  socket.on('error', (err: NodeJS.ErrnoException) => (c.error ??= err.code ?? err.message));
  socket.on('close', () => (c.closed = true));
  owned.push({ close: async () => void socket.destroy() });
  return c;
}

const bytes = (conn: { data: Buffer[] } | undefined) => (conn ? Buffer.concat(conn.data) : Buffer.alloc(0));

describe('TcpProxy', () => {
  it('relays bytes both ways unchanged and passes a half-close on', async () => {
    const up = await testServer((s) => s.on('data', (d: Buffer) => s.write(d))); // echo
    const proxy = await startProxy(up.endpoint);
    const c = dial(proxy.address);
    const payload = randomBytes(1 << 20);
    for (let i = 0; i < payload.length; i += 7919) c.socket.write(payload.subarray(i, i + 7919));
    await waitFor('the echo of 1 MiB', () => Buffer.concat(c.data).length === payload.length);
    expect(Buffer.concat(c.data).equals(payload)).toBe(true);
    c.socket.end();
    await waitFor('the half-close upstream', () => up.conns[0]?.ended === true);
    expect(c.ended).toBe(false); // the upstream may still write
    up.conns[0]!.socket.end('bye');
    await waitFor('the upstream end at the client', () => c.ended && c.closed);
    expect(c.text().endsWith('bye')).toBe(true);
    expect(c.error).toBeNull();
    expect(proxy.stats().sources[ANY_SOURCE]).toMatchObject({
      connections: 1,
      bytesUp: payload.length,
      bytesDown: payload.length + 3,
    });
    await waitFor('the relay forgotten', () => proxy.stats().open === 0);
  });

  it('delays every chunk, in order even with jitter', async () => {
    const up = await testServer();
    // Jitter alternating high and low: a chunk that drew 0 must still wait for the one before it.
    let flip = 0;
    const proxy = await startProxy(up.endpoint, { random: () => ((flip ^= 1) === 1 ? 0.99 : 0) });
    proxy.delay(120, 80);
    const c = dial(proxy.address);
    await waitFor('connected upstream', () => up.conns.length === 1);
    const sent: number[] = [];
    const expected: string[] = [];
    for (let i = 0; i < 12; i++) {
      const msg = `m${i};`;
      expected.push(msg);
      sent.push(performance.now());
      c.socket.write(msg);
      await sleep(15);
    }
    await waitFor('every chunk', () => bytes(up.conns[0]).toString() === expected.join(''), 5000);
    const conn = up.conns[0]!;
    // The first byte waited the delay at least (timers may be 1 ms early against performance.now).
    expect(conn.times[0]! - sent[0]!).toBeGreaterThanOrEqual(118);
    proxy.heal();
    const t0 = performance.now();
    c.socket.write('after');
    await waitFor('undelayed after heal', () => bytes(conn).toString().endsWith('after'));
    expect(performance.now() - t0).toBeLessThan(100);
  });

  it('a reset cut resets open connections at once, and new ones; heal lets new ones through', async () => {
    const up = await testServer((s) => s.write('hi'));
    const proxy = await startProxy(up.endpoint);
    const c1 = dial(proxy.address);
    await waitFor('greeting', () => c1.text() === 'hi');
    proxy.cut('reset');
    await waitFor('the open connection reset', () => c1.closed && up.conns[0]!.socket.destroyed);
    expect(c1.error).toBe('ECONNRESET');
    const c2 = dial(proxy.address);
    await waitFor('the new connection reset', () => c2.closed);
    expect(c2.text()).toBe('');
    proxy.heal();
    const c3 = dial(proxy.address);
    await waitFor('greeting after heal', () => c3.text() === 'hi');
    expect(proxy.stats().sources[ANY_SOURCE]!.resets).toBeGreaterThanOrEqual(2);
  });

  it('a blackhole passes nothing either way, keeps connections open and delivers what it held, in order, on heal', async () => {
    const up = await testServer();
    const proxy = await startProxy(up.endpoint);
    const c1 = dial(proxy.address);
    c1.socket.write('before;');
    await waitFor('first bytes', () => bytes(up.conns[0]).toString() === 'before;');
    proxy.cut('blackhole');
    c1.socket.write('held-1;');
    c1.socket.write('held-2;');
    up.conns[0]!.socket.write('down;');
    const c2 = dial(proxy.address); // a new connection hangs
    c2.socket.write('second;');
    await sleep(300);
    expect(bytes(up.conns[0]).toString()).toBe('before;');
    expect(c1.text()).toBe('');
    expect(bytes(up.conns[1]).toString()).toBe('');
    expect(c1.closed || c2.closed).toBe(false);
    proxy.heal();
    await waitFor(
      'held bytes delivered',
      () => bytes(up.conns[0]).toString() === 'before;held-1;held-2;' && c1.text() === 'down;',
    );
    await waitFor('the new connection relayed', () => bytes(up.conns[1]).toString() === 'second;');
    expect(c1.error).toBeNull();
  });

  it('a blackhole stops reading: a sender fills its own buffers, not the proxy', async () => {
    const up = await testServer();
    const proxy = await startProxy(up.endpoint, { maxQueuedBytes: 64 * 1024 });
    const c = dial(proxy.address);
    await waitFor('connected upstream', () => up.conns.length === 1);
    proxy.cut('blackhole');
    const chunk = Buffer.alloc(1 << 20, 7);
    for (let i = 0; i < 32; i++) c.socket.write(chunk);
    await sleep(300);
    // Loopback buffers take a few MiB; the rest waits in the sender's socket.
    expect(c.socket.writableLength).toBeGreaterThan(12 << 20);
    proxy.heal();
    await waitFor('32 MiB delivered after heal', () => bytes(up.conns[0]).length === 32 << 20, 20_000);
  });

  it('conditions per source: cutting one source leaves the others alone (server speaks first)', async () => {
    // The upstream speaks first, as a Rollcall acceptor does; the client then names itself.
    const up = await testServer((s) => s.write('who?'));
    const byLine = (head: Buffer) => {
      const i = head.indexOf(10);
      return i < 0 ? undefined : head.subarray(0, i).toString();
    };
    const proxy = await startProxy(up.endpoint, { identify: byLine });
    const open = async (name: string) => {
      const c = dial(proxy.address);
      await waitFor(`${name}: the greeting`, () => c.text() === 'who?');
      c.socket.write(`${name}\nhello from ${name};`);
      return c;
    };
    const a = await open('a');
    const b = await open('b');
    await waitFor('both relayed', () => up.conns.filter((x) => /hello from/.test(bytes(x).toString())).length === 2);
    proxy.cut('reset', 'a');
    await waitFor('a reset', () => a.closed);
    expect(b.closed).toBe(false);
    b.socket.write('more;');
    const bUp = up.conns.find((x) => bytes(x).toString().startsWith('b\n'))!;
    await waitFor('b still relayed', () => bytes(bUp).toString().endsWith('more;'));
    const a2 = await open('a'); // reset as soon as it names itself
    await waitFor('the new a reset', () => a2.closed);
    const b2 = await open('b');
    await waitFor('a new b relayed', () =>
      up.conns.some((x) => x !== bUp && bytes(x).toString() === 'b\nhello from b;'),
    );
    expect(b2.closed).toBe(false);
    expect(proxy.stats().sources).toMatchObject({ a: { connections: 2, resets: 2 }, b: { connections: 2, resets: 0 } });
    proxy.heal('a');
    const a3 = await open('a');
    await waitFor('a relayed after heal', () => up.conns.some((x) => bytes(x).toString() === 'a\nhello from a;'));
    expect(a3.closed).toBe(false);
  });

  it('mirrors a dead upstream: refused while nothing listens, relayed once it listens again', async () => {
    const up = await testServer();
    const port = up.endpoint.port;
    const proxy = await startProxy(up.endpoint, { mirrorRefusals: true, probeMs: 20 });
    const before = dial(proxy.address);
    await waitFor('relayed', () => up.conns.length === 1);
    await up.close(); // the upstream dies: its connections close, nothing listens
    await waitFor('the relayed connection ended', () => before.ended);
    // As without a proxy, the very next dial is refused (a Rollcall follower elects early on that).
    await sleep(20);
    const next = dial(proxy.address);
    await waitFor('closed', () => next.closed);
    expect(next.error).toBe('ECONNREFUSED');
    expect(proxy.stats().listening).toBe(false);
    const again = await testServer(undefined, port);
    await waitFor('listening again', () => proxy.stats().listening);
    const c = dial(proxy.address);
    c.socket.write('back');
    // (the proxy's probe is one of the restarted server's connections)
    await waitFor('relayed to the restarted upstream', () => again.conns.some((x) => bytes(x).toString() === 'back'));
  });

  it('mirrors an upstream that refuses from the start', async () => {
    const up = await testServer();
    const proxy = await startProxy(up.endpoint, { mirrorRefusals: true, probeMs: 20 });
    await up.close();
    const first = dial(proxy.address); // accepted here, refused upstream: reset
    await waitFor('first closed', () => first.closed);
    const second = dial(proxy.address);
    await waitFor('second closed', () => second.closed);
    expect([first.error, second.error]).toEqual(['ECONNRESET', 'ECONNREFUSED']);
    expect(proxy.stats().refusedUpstream).toBe(1);
  });

  it('close() resets every connection and closes the listener', async () => {
    const baseline = process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP')).length;
    const up = await testServer();
    const proxy = await TcpProxy.start({ upstream: up.endpoint });
    const held = dial(proxy.address);
    const delayed = dial(proxy.address);
    await waitFor('both relayed', () => up.conns.length === 2);
    proxy.delay(10_000); // a timer pending
    delayed.socket.write('late');
    proxy.cut('blackhole', ANY_SOURCE);
    held.socket.write('held');
    await proxy.close();
    await waitFor('clients closed', () => held.closed && delayed.closed);
    const after = dial(proxy.address);
    await waitFor('refused', () => after.closed);
    expect(after.error).toBe('ECONNREFUSED');
    await up.close();
    await waitFor(
      'no TCP handles left',
      () => process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP')).length <= baseline,
    );
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBeLessThanOrEqual(1); // the waitFor's own
  });
});

describe('dialerId', () => {
  const codec = createCodec();
  const frame = (v: unknown) => encodeFrames([codec.encode(v) as Buffer]);
  it('names the node from a hello, waits for a whole frame, refuses anything else', () => {
    const hello = frame({ t: 'hello', id: 'n2', nonce: randomBytes(32), mac: randomBytes(32) });
    expect(dialerId(hello)).toBe('n2');
    expect(dialerId(Buffer.concat([hello, Buffer.from('more')]))).toBe('n2');
    expect(dialerId(hello.subarray(0, 3))).toBeUndefined();
    expect(dialerId(hello.subarray(0, hello.length - 1))).toBeUndefined();
    expect(dialerId(frame({ t: 'challenge', v: 1, id: 'n1', nonce: randomBytes(32) }))).toBeNull();
    expect(dialerId(Buffer.from('GET / HTTP/1.1\r\n'))).toBeNull();
  });
});

describe('PeerNet: peer transports through the proxies', () => {
  const harness = new Harness();
  afterEach(async () => {
    await harness.closeAll();
  });

  async function mesh(ids: readonly string[]): Promise<{ nodes: Array<TestNode<string>>; net: PeerNet }> {
    const net = new PeerNet();
    owned.push(net);
    const nodes: Array<TestNode<string>> = [];
    for (const id of ids) nodes.push(await harness.node<string>(id));
    for (const n of nodes) await net.add(n.id, n.address);
    const peers = new Map(nodes.map((n) => [n.id, net.address(n.id)] as const));
    for (const n of nodes) n.transport.setPeers(peers);
    await waitFor('full mesh', () => nodes.every((n) => nodes.every((o) => o === n || connectedTo(n, o.id))));
    return { nodes, net };
  }

  const got = (n: TestNode<string>, from: string, text: string) =>
    n.received.some((r) => r.from === from && r.message === text);

  for (const mode of ['reset', 'blackhole'] as const) {
    it(`cuts one way (${mode}): a's messages stop reaching b while b's reach a; heal restores a -> b`, async () => {
      const { nodes, net } = await mesh(['n1', 'n2', 'n3']);
      const [a, b, c] = nodes as [TestNode<string>, TestNode<string>, TestNode<string>];
      // Every stream runs through the proxy in front of its destination, named by its dialer.
      const stats = net.stats();
      expect(stats.n2!.sources.n1!.connections).toBeGreaterThanOrEqual(1);
      expect(stats.n1!.sources.n3!.connections).toBeGreaterThanOrEqual(1);

      net.cut('n1', 'n2', mode);
      if (mode === 'reset') await waitFor('n1 -> n2 down', () => !connectedTo(a, 'n2'));
      a.transport.send('n2', 'lost?');
      b.transport.send('n1', 'b->a');
      a.transport.send('n3', 'a->c');
      await waitFor('the other links carry on', () => got(a, 'n2', 'b->a') && got(c, 'n1', 'a->c'));
      await sleep(300);
      expect(got(b, 'n1', 'lost?')).toBe(false);
      // A blackholed stream looks healthy to its sender: TCP cannot tell a silent peer from a slow one.
      if (mode === 'blackhole') expect(connectedTo(a, 'n2')).toBe(true);

      net.heal();
      await waitFor('n1 -> n2 up', () => connectedTo(a, 'n2'));
      await waitFor('n1 -> n2 carries again', () => {
        a.transport.send('n2', 'after heal');
        return got(b, 'n1', 'after heal');
      });
      // Held, not lost: a blackhole delivers in order once healed (a reset drops the stream and its bytes).
      if (mode === 'blackhole') expect(got(b, 'n1', 'lost?')).toBe(true);
    });
  }

  it('isolates a node both ways and delays links', async () => {
    const { nodes, net } = await mesh(['n1', 'n2', 'n3']);
    const [a, b, c] = nodes as [TestNode<string>, TestNode<string>, TestNode<string>];
    net.isolate('n3', ['n1', 'n2']);
    await waitFor(
      'n3 cut off both ways',
      () => !connectedTo(c, 'n1') && !connectedTo(c, 'n2') && !connectedTo(a, 'n3') && !connectedTo(b, 'n3'),
    );
    a.transport.send('n2', 'still');
    await waitFor('n1 -> n2 unaffected', () => got(b, 'n1', 'still'));
    net.heal();
    await waitFor('n3 back', () => connectedTo(c, 'n1') && connectedTo(a, 'n3'));
    net.delay('n1', 'n2', 150);
    const t0 = performance.now();
    a.transport.send('n2', 'slow');
    await waitFor('delayed message', () => got(b, 'n1', 'slow'));
    expect(performance.now() - t0).toBeGreaterThanOrEqual(145);
    expect(net.links()).toEqual([{ from: 'n1', to: 'n2', state: { cut: null, delayMs: 150, jitterMs: 0 } }]);
  });
});
