/**
 * readRemoteService (src/consul/remote.ts), the `?dc=` read of one service, and
 * readRemoteNamespace (src/consul/remote-namespace.ts), a namespace's list, against members
 * played by node:http servers on loopback: which answers of a member mean "no such service
 * there" and which mean "ask the next member".
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import type { FastifyReply } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildConsulApp } from '../src/consul/index.js';
import { type ConsulFederation, readRemoteService } from '../src/consul/remote.js';
import { whileServing } from '../src/consul/remote-answers.js';
import { type Moves, readRemoteNamespace } from '../src/consul/remote-namespace.js';
import type { ConsulContext } from '../src/consul/request.js';
import { silentLogger } from '../src/log/index.js';
import { waitFor } from './helpers/wait.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

interface Member {
  readonly server: Server;
  address: string;
  readonly requests: IncomingMessage[];
  reply: () => { status: number; body: unknown };
  silent?: boolean;
}

const instance = {
  id: 'a1',
  cluster: 'default',
  address: '10.0.0.2',
  port: 8080,
  weight: 100,
  tags: [],
  metadata: {},
  health: 'healthy',
  enabled: true,
  createRevision: 3,
  modRevision: 3,
  version: 1,
};

async function member(): Promise<Member> {
  const m: Member = {
    requests: [],
    address: '',
    reply: () => ({ status: 200, body: { serviceRevision: 3, instances: [instance] } }),
    silent: false,
    server: createServer((req, res) => {
      m.requests.push(req);
      if (m.silent) return; // holds the request: a member that has stalled
      const r = m.reply();
      res.writeHead(r.status, { 'content-type': 'application/json', 'x-rollcall-index': '3' });
      res.end(JSON.stringify(r.body));
    }),
  };
  await new Promise<void>((resolve) => m.server.listen(0, '127.0.0.1', resolve));
  m.address = `http://127.0.0.1:${(m.server.address() as AddressInfo).port}`;
  return m;
}

describe('readRemoteService', () => {
  let members: Member[];
  const federation = (): ConsulFederation => ({
    route: (dc) => (dc === 'dc-b' ? { members: members.map((m) => ({ address: m.address })) } : null),
    datacentersByRtt: () => ['dc-a', 'dc-b'],
    hopHeader: (method, url) => `dc-a.1.${method}:${url}`,
  });
  const read = (service = 'web') =>
    readRemoteService(federation(), {
      datacenter: 'dc-b',
      namespace: 'default',
      service,
      stale: false,
      index: undefined,
      waitMs: 0,
      token: undefined,
      timeoutMs: 2_000,
      signal: new AbortController().signal,
    });

  beforeEach(async () => {
    members = [await member(), await member()];
  });
  afterEach(async () => {
    await Promise.all(
      members.map(
        (m) =>
          new Promise<void>((resolve) => {
            m.server.closeAllConnections();
            m.server.close(() => resolve());
          }),
      ),
    );
  });

  it('a name that cannot exist there (400 INVALID_ARGUMENT) is a service without instances', async () => {
    members[0]!.reply = () => ({ status: 400, body: { error: { code: 'INVALID_ARGUMENT', field: 'service' } } });
    const r = await read('we$b');
    expect(r.instances).toEqual([]);
    expect(members[1]!.requests).toHaveLength(0);
  });

  it('any other 400 (a member with federation off) is no answer: the next member is asked', async () => {
    members[0]!.reply = () => ({
      status: 400,
      body: { error: { code: 'UNKNOWN_DATACENTER', message: 'federation is off' } },
    });
    const r = await read();
    expect(r.instances.map((i) => i.id)).toEqual(['a1']);
    expect(r.index).toBe(3);
    expect(members[1]!.requests).toHaveLength(1);
  });

  it('a member that never answers takes only its share of the deadline: the next one is asked in time', async () => {
    members[0]!.silent = true;
    const r = await read();
    // Before, the first member took the whole 2 s deadline and the read failed with no answer.
    expect(r.instances.map((i) => i.id)).toEqual(['a1']);
    expect(members[0]!.requests).toHaveLength(1);
    expect(members[1]!.requests).toHaveLength(1);
  });
});

/**
 * readRemoteNamespace (src/consul/remote-namespace.ts), a namespace's list in another
 * datacenter, against one member played by a node:http server: what it asks (the listing,
 * the caller's token, the hop signature) and how a blocking query reads the member's watch.
 */
describe('readRemoteNamespace', () => {
  let server: Server;
  let address = '';
  const requests: { url: string; authorization: string | undefined; hop: string | undefined }[] = [];
  /** The watch stream's frames, sent as soon as it is asked; it then stays open. */
  let frames: string[] = [];
  const federation = (): ConsulFederation => ({
    route: (dc) => (dc === 'dc-b' ? { members: [{ address }] } : null),
    datacentersByRtt: () => ['dc-a', 'dc-b'],
    hopHeader: (method, url) => `signed ${method} ${url}`,
  });
  const read = (over: { index?: number; waitMs?: number; stale?: boolean; moves?: Moves } = {}) =>
    readRemoteNamespace(federation(), {
      datacenter: 'dc-b',
      namespace: 'default',
      stale: over.stale ?? false,
      index: over.index,
      waitMs: over.waitMs ?? 0,
      token: 'secret-token',
      timeoutMs: 2_000,
      signal: new AbortController().signal,
      moves: over.moves ?? (() => true),
    });
  const change = (revision: number, type: 'put' | 'delete', tags: string[], previousTags?: string[]) =>
    `id: ${revision}\ndata: ${JSON.stringify({
      revision,
      type,
      instance: { ...instance, service: 'web', tags },
      ...(previousTags === undefined ? {} : { previous: { ...instance, service: 'web', tags: previousTags } }),
    })}\n\n`;

  beforeEach(async () => {
    requests.length = 0;
    frames = [];
    server = createServer((req, res) => {
      requests.push({
        url: req.url ?? '',
        authorization: req.headers.authorization,
        hop: req.headers['x-rollcall-federation-hop'] as string | undefined,
      });
      if ((req.url ?? '').startsWith('/v1/watch')) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('retry: 2000\n\n');
        for (const f of frames) res.write(f);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'x-rollcall-leader': 'n1' });
      res.end(JSON.stringify({ revision: 40, instances: [{ ...instance, service: 'web' }] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    address = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterEach(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it("asks the member's namespace listing with the caller's token, signed as a hop; the index is its revision", async () => {
    const r = await read();
    expect(r).toMatchObject({ index: 40, knownLeader: true });
    expect(r.instances.map((i) => [i.service, i.id])).toEqual([['web', 'a1']]);
    expect(requests).toEqual([
      {
        url: '/v1/namespaces/default/instances?dc=dc-b&limit=10000',
        authorization: 'Bearer secret-token',
        hop: 'signed GET /v1/namespaces/default/instances?dc=dc-b&limit=10000',
      },
    ]);
  });

  it('a blocking query watches from index + 1; changes that do not move the answer let it time out with the same index', async () => {
    frames = ['event: progress\ndata: {"revision":38}\n\n', change(38, 'put', ['v1'], ['v1'])];
    const started = performance.now();
    const r = await read({ index: 37, waitMs: 300, moves: (before, after) => before?.tags[0] !== after?.tags[0] });
    expect(performance.now() - started).toBeGreaterThanOrEqual(290);
    expect(r.index).toBe(37);
    expect(requests.map((q) => q.url)).toEqual([
      '/v1/watch?namespace=default&fromRevision=38&dc=dc-b',
      '/v1/namespaces/default/instances?dc=dc-b&limit=10000',
    ]);
    expect(requests[0]!.authorization).toBe('Bearer secret-token');
  });

  it('a change that moves the answer wakes it at once; a stale read is asked at that revision', async () => {
    frames = [change(41, 'delete', ['v1'])];
    const started = performance.now();
    const r = await read({ index: 37, waitMs: 10_000, stale: true, moves: (_, after) => after === null });
    expect(performance.now() - started).toBeLessThan(5_000);
    expect(r.index).toBe(41);
    expect(requests[1]!.url).toBe(
      '/v1/namespaces/default/instances?dc=dc-b&limit=10000&consistency=serializable&minRevision=41',
    );
  });

  it('a wait that ends in a datacenter behind the index (rebuilt there) answers its revision: the client starts over', async () => {
    // The client's index is from before dc-b was rebuilt: its revisions are back at 40, the watch waits for 46.
    const r = await read({ index: 5_000, waitMs: 300 });
    expect(requests.map((q) => q.url)).toEqual([
      '/v1/watch?namespace=default&fromRevision=5001&dc=dc-b',
      '/v1/namespaces/default/instances?dc=dc-b&limit=10000',
    ]);
    expect(r.index).toBe(40);
  });

  it('a watch that cannot go on (compacted there) answers at once, never below the index given', async () => {
    frames = ['event: compacted\ndata: {"revision":40,"compactRevision":39}\n\n'];
    const r = await read({ index: 45, waitMs: 10_000 });
    expect(r.index).toBe(45);
  });
});

describe('whileServing: what ends a remote read', () => {
  it('a client gone before the read starts ends it at once, not at the end of its wait', async () => {
    let outcome: (what: string) => void = () => undefined;
    const ended = new Promise<string>((resolve) => {
      outcome = resolve;
    });
    const ctx = { feed: { closing: new AbortController().signal, closed: false } } as unknown as ConsulContext;
    const server = createServer((req, res) => {
      // The read starts only after the client has gone (as when it leaves while the hooks run).
      req.socket.once('close', () => {
        setImmediate(() => {
          whileServing(ctx, { raw: res } as unknown as FastifyReply, (signal) => {
            // A blocking read parked elsewhere: it ends when the signal says so, else after its wait.
            return new Promise<string>((resolve) => {
              const wait = setTimeout(() => resolve('waited its whole wait'), 3_000);
              const stop = () => {
                clearTimeout(wait);
                resolve('ended at once');
              };
              if (signal.aborted) stop();
              else signal.addEventListener('abort', stop, { once: true });
            });
          }).then(outcome, (err: unknown) => outcome(String(err)));
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1', () => {
      client.write('GET /v1/catalog/nodes?dc=dc-b&index=3&wait=100s HTTP/1.1\r\nhost: x\r\n\r\n', () =>
        client.destroy(),
      );
    });
    try {
      expect(await ended).toBe('ended at once');
    } finally {
      client.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('a Consul listener stopping while queries are parked in another datacenter', () => {
  it('answers them 503 and closes at once, not at the end of their wait', async () => {
    const held: ServerResponse[] = [];
    let watches = 0;
    const member = createServer((req, res) => {
      const url = req.url ?? '';
      if (url.startsWith('/v1/watch')) {
        watches++;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('retry: 2000\n\n');
        return; // nothing changes there: the stream stays open
      }
      if (url.includes('index=')) {
        held.push(res); // the member parks the blocking service read
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'x-rollcall-index': '3' });
      res.end(JSON.stringify({ revision: 3, serviceRevision: 3, instances: [] }));
    });
    await new Promise<void>((resolve) => member.listen(0, '127.0.0.1', resolve));
    const address = `http://127.0.0.1:${(member.address() as AddressInfo).port}`;
    const consul = buildConsulApp({
      node: await InMemoryNodeApi.create(),
      logger: silentLogger(),
      maxWaitMs: 120_000,
      federation: {
        route: (dc) => (dc === 'dc-b' ? { members: [{ address }] } : null),
        datacentersByRtt: () => ['dc1', 'dc-b'],
        hopHeader: (method, url) => `signed ${method} ${url}`,
      },
    });
    try {
      await consul.app.listen({ port: 0, host: '127.0.0.1' });
      const base = `http://127.0.0.1:${(consul.app.server.address() as AddressInfo).port}`;
      const parked = ['/v1/catalog/nodes', '/v1/health/service/web'].map((path) =>
        fetch(`${base}${path}?dc=dc-b&index=3&wait=100s`).then(async (r) => [r.status, await r.text()]),
      );
      await waitFor('both queries parked in dc-b', () => watches === 1 && held.length === 1, 5_000);
      const started = performance.now();
      const closed = await Promise.race([
        consul.app.close().then(() => 'closed'),
        new Promise((r) => setTimeout(r, 5_000, 'still open after 5 s')),
      ]);
      // Before, close waited for both queries' 100 s wait.
      expect(closed).toBe('closed');
      expect(performance.now() - started).toBeLessThan(5_000);
      const stopping = [503, 'This node is stopping; ask another node'];
      expect(await Promise.all(parked)).toEqual([stopping, stopping]);
    } finally {
      member.closeAllConnections();
      await new Promise<void>((resolve) => member.close(() => resolve()));
      // Whatever happened above, nothing is left open (a failing run ends here, not at its timeout).
      consul.app.server.closeAllConnections();
      await consul.app.close();
    }
  });
});
