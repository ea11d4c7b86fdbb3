/**
 * The DNS listeners (src/dns/udp.ts, tcp.ts) on real sockets in this process, over a real
 * Registry: one port for UDP and TCP, pipelined TCP queries answered in order, bad bytes
 * that neither crash the server nor stop it answering the next query, and close() that
 * frees the port and closes open connections.
 */
import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { type DecodedPacket, decode, encode } from 'dns-packet';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AnswerContext } from '../src/dns/answer.js';
import { type DnsServer, type ServiceDirectory, startDnsServer } from '../src/dns/index.js';
import type { RemoteAnswer } from '../src/dns/remote.js';
import { TcpListener } from '../src/dns/tcp.js';
import { UdpListener } from '../src/dns/udp.js';
import { silentLogger } from '../src/log/index.js';
import { dataOf, queryPacket, queryTcp, queryUdp, tcpExchange, udpExchange } from './helpers/dns.js';
import { waitFor } from './helpers/wait.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

describe('DNS listeners', () => {
  let node: InMemoryNodeApi;
  let dns: DnsServer | null;

  beforeEach(async () => {
    node = await InMemoryNodeApi.create();
    node.apply({ type: 'register', namespace: 'default', service: 'web', id: 'w1', address: '10.0.0.1', port: 8080 });
    dns = await startDnsServer({ node, logger: silentLogger(), listen: { host: '127.0.0.1', port: 0 } });
  });
  afterEach(async () => {
    await dns?.close();
  });

  it('answers over UDP and TCP on the same port', async () => {
    const port = dns!.port;
    expect(dataOf((await queryUdp(port, 'web.service.consul', 'A')).answers, 'A')).toEqual(['10.0.0.1']);
    expect(dataOf((await queryTcp(port, 'web.service.consul', 'A')).answers, 'A')).toEqual(['10.0.0.1']);
  });

  it('TCP: pipelined queries on one connection, answered in order', async () => {
    const messages = ['web.service.consul', 'nope.service.consul', 'web.service.consul'].map((name, k) =>
      encode(queryPacket(name, k === 2 ? 'SRV' : 'A', { id: 100 + k })),
    );
    const replies = (await tcpExchange(dns!.port, messages)).map(
      (b) => decode(b) as ReturnType<typeof decode> & { rcode: string },
    );
    expect(replies.map((r) => [r.id, r.rcode, r.answers![0]?.type])).toEqual([
      [100, 'NOERROR', 'A'],
      [101, 'NXDOMAIN', undefined],
      [102, 'NOERROR', 'SRV'],
    ]);
  });

  it('bad bytes: FORMERR or silence, and the next query is answered', async () => {
    const port = dns!.port;
    expect(await udpExchange(port, Buffer.from([1, 2, 3]), 300)).toBeNull();
    const formerr = await udpExchange(port, Buffer.from([0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x3f]));
    expect(decode(formerr!)).toMatchObject({ id: 0xabcd, rcode: 'FORMERR' });
    // Over TCP a message too short to answer closes the connection; a new one works.
    expect(await tcpExchange(port, [Buffer.from([1, 2, 3])])).toEqual([]);
    expect(dataOf((await queryUdp(port, 'web.service.consul', 'A')).answers, 'A')).toEqual(['10.0.0.1']);
    expect(dataOf((await queryTcp(port, 'web.service.consul', 'A')).answers, 'A')).toEqual(['10.0.0.1']);
  });

  it('a TCP message split across writes is put back together', async () => {
    const query = encode(queryPacket('web.service.consul', 'A', { id: 7 }));
    const framed = Buffer.alloc(2 + query.length);
    framed.writeUInt16BE(query.length, 0);
    query.copy(framed, 2);
    const socket = connect({ host: '127.0.0.1', port: dns!.port, noDelay: true });
    // The pauses only keep the three writes in separate segments; nothing is waited for.
    const pause = () => new Promise((r) => setTimeout(r, 20));
    try {
      const reply = new Promise<Buffer>((resolve) => socket.once('data', (b: Buffer) => resolve(b)));
      await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
      socket.write(framed.subarray(0, 1));
      await pause();
      socket.write(framed.subarray(1, 9));
      await pause();
      socket.write(framed.subarray(9));
      const bytes = await reply;
      expect(decode(bytes.subarray(2))).toMatchObject({ id: 7, rcode: 'NOERROR' });
    } finally {
      socket.destroy();
    }
  });

  it('close(): the port is free again and open TCP connections are closed', async () => {
    const port = dns!.port;
    const open: Socket = connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve) => open.once('connect', () => resolve()));
    let closed = false;
    open.on('close', () => (closed = true));
    open.on('error', () => {});
    await dns!.close();
    dns = null;
    await waitFor('the open connection to close', () => closed || undefined, 2000);
    // UDP and TCP both bind the same port again.
    const udp = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject);
      udp.bind(port, '127.0.0.1', () => resolve());
    });
    await new Promise<void>((resolve) => udp.close(() => resolve()));
    const again = await startDnsServer({ node, logger: silentLogger(), listen: { host: '127.0.0.1', port } });
    expect(again.port).toBe(port);
    await again.close();
  });

  it('a member marked corrupt answers SERVFAIL to every question, over UDP and TCP (issue 20)', async () => {
    // What RollcallNode.integrity shows: the mark a peer's corruption check left, null when none.
    const { integrity } = node;
    const marked = await startDnsServer({
      node,
      logger: silentLogger(),
      listen: { host: '127.0.0.1', port: 0 },
    });
    try {
      const port = marked.port;
      expect(dataOf((await queryUdp(port, 'web.service.consul', 'A')).answers, 'A')).toEqual(['10.0.0.1']);
      integrity.selfCorruption = { by: 'n1', detail: 'hash differs at index 7', at: 0 };
      const questions: [string, string][] = [
        ['web.service.consul', 'A'],
        ['web.service.consul', 'SRV'],
        ['missing.service.consul', 'A'],
        ['consul', 'SOA'],
        ['example.com', 'A'],
      ];
      for (const [name, type] of questions) {
        for (const reply of [await queryUdp(port, name, type), await queryTcp(port, name, type)]) {
          expect((reply as DecodedPacket & { rcode: string }).rcode, `${name} ${type}`).toBe('SERVFAIL');
          expect(reply.answers ?? []).toEqual([]);
          expect(reply.flag_aa).toBe(false);
          expect(reply.questions).toEqual([{ name, type, class: 'IN' }]);
        }
      }
    } finally {
      await marked.close();
    }
  });

  it('a port in use is an error at start, not a half-open server', async () => {
    await expect(
      startDnsServer({ node, logger: silentLogger(), listen: { host: '127.0.0.1', port: dns!.port } }),
    ).rejects.toThrow(/EADDRINUSE/);
    expect(dataOf((await queryUdp(dns!.port, 'web.service.consul', 'A')).answers, 'A')).toEqual(['10.0.0.1']);
  });
});

describe('DNS over TCP: a deferred answer (another datacenter)', () => {
  it('stops reading the connection while it waits, then answers it and the queries behind it in order', async () => {
    let release: (a: RemoteAnswer) => void = () => {};
    const remote = {
      lookup: (): Promise<RemoteAnswer> =>
        new Promise((resolve) => {
          release = resolve;
        }),
    };
    const ctx: AnswerContext = {
      directory: { endpoints: () => [] } as unknown as ServiceDirectory,
      registry: { revision: 1 },
      domain: 'consul',
      datacenter: 'dc1',
      namespace: 'default',
      ttl: 0,
      random: Math.random,
      remote,
    };
    const listener = await TcpListener.listen('127.0.0.1', 0, ctx, silentLogger());
    const client = connect(listener.port, '127.0.0.1');
    try {
      const frame = (m: Buffer) => Buffer.concat([Buffer.from([m.length >> 8, m.length & 0xff]), m]);
      const received: Buffer[] = [];
      let buffered = Buffer.alloc(0);
      client.on('data', (chunk: Buffer) => {
        buffered = Buffer.concat([buffered, chunk]);
        while (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
          received.push(buffered.subarray(2, 2 + buffered.readUInt16BE(0)));
          buffered = buffered.subarray(2 + buffered.readUInt16BE(0));
        }
      });
      client.write(frame(encode(queryPacket('web.service.dc2.dc.consul', 'A', { id: 1 }))));
      const sockets = (listener as unknown as { sockets: Set<Socket> }).sockets;
      // Whatever the client pipelines meanwhile stays in the kernel's buffers (TCP flow control), not in ours.
      await waitFor('the connection paused', () => [...sockets].some((s) => s.isPaused()), 5_000);
      client.write(frame(encode(queryPacket('nope.service.consul', 'A', { id: 2 }))));
      release({
        kind: 'endpoints',
        datacenter: 'dc2',
        namespace: 'default',
        service: 'web',
        endpoints: [{ endpoint: { address: '10.9.0.1', port: 80, weight: 1 }, tags: [] }],
      });
      await waitFor('both answers', () => received.length === 2);
      const replies = received.map((b) => decode(b) as ReturnType<typeof decode> & { rcode: string });
      expect(replies.map((r) => [r.id, r.rcode])).toEqual([
        [1, 'NOERROR'],
        [2, 'NXDOMAIN'],
      ]);
      expect(dataOf(replies[0]!.answers, 'A')).toEqual(['10.9.0.1']);
      expect([...sockets].some((s) => s.isPaused())).toBe(false);
    } finally {
      client.destroy();
      await listener.close();
    }
  });
});

describe('DNS over UDP: deferred answers (another datacenter)', () => {
  it('holds at most maxDeferred answers waiting on remote lookups; past that, SERVFAIL at once', async () => {
    let release: (a: RemoteAnswer) => void = () => {};
    const lookup = new Promise<RemoteAnswer>((resolve) => {
      release = resolve;
    });
    const ctx: AnswerContext = {
      directory: { endpoints: () => [] } as unknown as ServiceDirectory,
      registry: { revision: 1 },
      domain: 'consul',
      datacenter: 'dc1',
      namespace: 'default',
      ttl: 0,
      random: Math.random,
      remote: { lookup: () => lookup },
    };
    const listener = await UdpListener.listen('127.0.0.1', 0, ctx, silentLogger(), 2);
    const client = createSocket('udp4');
    try {
      const replies = new Map<number, ReturnType<typeof decode> & { rcode: string }>();
      client.on('message', (m) => {
        const r = decode(m) as ReturnType<typeof decode> & { rcode: string };
        replies.set(r.id!, r);
      });
      const ask = (id: number) =>
        client.send(encode(queryPacket('web.service.dc2.dc.consul', 'A', { id })), listener.port, '127.0.0.1');
      ask(1);
      ask(2);
      ask(3);
      await waitFor('the third answered', () => replies.has(3), 5_000);
      expect(replies.get(3)!.rcode).toBe('SERVFAIL');
      expect(replies.has(1) || replies.has(2)).toBe(false);
      release({
        kind: 'endpoints',
        datacenter: 'dc2',
        namespace: 'default',
        service: 'web',
        endpoints: [{ endpoint: { address: '10.9.0.1', port: 80, weight: 1 }, tags: [] }],
      });
      await waitFor('the first two answered', () => replies.has(1) && replies.has(2), 5_000);
      expect(dataOf(replies.get(1)!.answers, 'A')).toEqual(['10.9.0.1']);
      // Their places are free again: the next one is answered (from the same, now settled, lookup).
      ask(4);
      await waitFor('the fourth answered', () => replies.has(4), 5_000);
      expect(replies.get(4)!.rcode).toBe('NOERROR');
    } finally {
      client.close();
      await listener.close();
    }
  });
});
