/**
 * `?dc=` forwarding and `?failover=` (issue 18) over real HTTP on loopback: a local app whose
 * federation route names remote members that are real apps (in-memory registries), a member
 * that accepts connections and never answers, and a port nobody listens on.
 *
 * - Each attempt has its own share of the deadline: a member that hangs no longer uses the
 *   whole of it, so the next one answers (before, the request ended 503 at the deadline).
 * - A write that is not safe to repeat is never sent twice; one with an exactly-once id is.
 * - A remote 503 that did nothing (NO_LEADER) is answered by the next member; one whose body
 *   never comes fails as a member that hangs, within the deadline.
 * - Failover discovery answers from the first datacenter, local first, with a usable
 *   instance, and says which.
 */
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer, type Server, Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RollcallClient } from '../src/client/index.js';
import {
  attemptTimeoutMs,
  type ForwardOutcome,
  forwardToMembers,
  MIN_ATTEMPT_MS,
  safeToRepeat,
} from '../src/federation/forward.js';
import type { FederationHost } from '../src/federation/host.js';
import type { Route } from '../src/federation/index.js';
import { buildApp } from '../src/server/app.js';
import { type TestApp, testApp } from './api-helpers.js';
import { waitFor } from './helpers/wait.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';
import { captureLogger } from './transport-harness.js';

const TIMEOUT_MS = 1_500;

/** The slice of FederationHost the routes use, with routes the test sets. */
function stubHost(datacenter: string, routes: Record<string, readonly string[]>): FederationHost {
  const stub = {
    active: true,
    datacenter,
    route: (dc: string): Route | null =>
      routes[dc] === undefined
        ? null
        : {
            datacenter: dc,
            status: 'alive',
            members: routes[dc]!.map((address, k) => ({ id: `m${k}`, address, role: 'voter' as const })),
          },
    hopHeader: () => `${datacenter}.0.00`,
    verifyHop: () => 'dc-l',
    snapshot: () => null,
    datacentersByRtt: () => [datacenter, ...Object.keys(routes)],
  };
  return stub as unknown as FederationHost;
}

/** Accepts connections and never answers. */
let hung: Server;
const hungSockets = new Set<Socket>();
let hungUrl = '';
let refusedUrl = '';
/** Answers every request 503 NO_LEADER, counting them. */
let noLeader: Server;
let noLeaderUrl = '';
let noLeaderHits = 0;

const remotes: TestApp[] = [];
const urls: Record<string, string> = {};
let local: TestApp;
let localUrl = '';
const routes: Record<string, string[]> = {};

async function listen(app: FastifyInstance): Promise<string> {
  return app.listen({ port: 0, host: '127.0.0.1' });
}

async function netServer(onConn: (s: Socket) => void): Promise<{ server: Server; url: string }> {
  const server = createServer(onConn);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  return { server, url: `http://127.0.0.1:${port}` };
}

beforeAll(async () => {
  ({ server: hung, url: hungUrl } = await netServer((s) => {
    hungSockets.add(s);
    s.on('close', () => hungSockets.delete(s));
  }));
  ({ server: noLeader, url: noLeaderUrl } = await netServer((s) => {
    s.on('data', () => {
      noLeaderHits++;
      const body = JSON.stringify({ error: { code: 'NO_LEADER', message: 'no leader' } });
      s.end(
        `HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
      );
    });
  }));
  const closed = await netServer(() => undefined);
  refusedUrl = closed.url;
  await new Promise((r) => closed.server.close(r));

  for (const dc of ['dc-r', 'dc-r1', 'dc-r2']) {
    const app = await testApp({ requestTimeoutMs: TIMEOUT_MS, federation: { datacenter: dc, host: stubHost(dc, {}) } });
    remotes.push(app);
    urls[dc] = await listen(app.app);
  }
  Object.assign(routes, {
    'dc-r': [urls['dc-r']!],
    'dc-r1': [urls['dc-r1']!],
    'dc-r2': [urls['dc-r2']!],
    'dc-down': [refusedUrl],
  });
  local = await testApp({
    requestTimeoutMs: TIMEOUT_MS,
    federation: { datacenter: 'dc-l', host: stubHost('dc-l', routes) },
  });
  localUrl = await listen(local.app);
  // dc-r has the service the forwarding tests read; dc-r2 the one failover finds.
  for (const [app, id] of [
    [remotes[0]!, 'r-1'],
    [remotes[2]!, 'r2-1'],
  ] as const) {
    const r = await app.req({
      method: 'PUT',
      url: `/v1/namespaces/prod/services/web/instances/${id}`,
      payload: { address: '10.0.0.1', port: 80 },
    });
    expect(r.status).toBe(200);
  }
});

afterAll(async () => {
  for (const s of hungSockets) s.destroy();
  await Promise.all([
    new Promise((r) => hung?.close(r)),
    new Promise((r) => noLeader?.close(r)),
    local?.close(),
    ...remotes.map((r) => r.close()),
  ]);
});

const ask = (method: string, path: string, headers: Record<string, string> = {}, payload?: Record<string, unknown>) =>
  local.req({ method: method as 'GET', url: path, headers, ...(payload === undefined ? {} : { payload }) });

describe('?dc= forwarding, one attempt at a time', () => {
  it('splits what is left of the deadline among the members not tried yet', () => {
    expect(attemptTimeoutMs(3_000, 0, 3)).toBe(1_000);
    expect(attemptTimeoutMs(3_000, 0, 1)).toBe(3_000);
    // A blocking query's wait is the remote's to spend: every attempt has it on top of its share.
    expect(attemptTimeoutMs(33_000, 30_000, 3)).toBe(31_000);
    expect(attemptTimeoutMs(100, 0, 3)).toBe(100);
    expect(attemptTimeoutMs(600, 0, 3)).toBe(MIN_ATTEMPT_MS);
    expect(safeToRepeat('GET', {})).toBe(true);
    expect(safeToRepeat('PUT', {})).toBe(false);
    expect(safeToRepeat('PUT', { 'x-rollcall-client-id': 'c1' })).toBe(true);
  });

  it('a member that never answers costs only its share: the next one answers', async () => {
    routes['dc-r'] = [hungUrl, urls['dc-r']!];
    const started = performance.now();
    const r = await ask('GET', '/v1/namespaces/prod/services/web/instances?dc=dc-r');
    const took = performance.now() - started;
    expect(r.status, r.text).toBe(200);
    expect(r.headers['x-rollcall-datacenter']).toBe('dc-r');
    expect(r.body.instances.map((i: { id: string }) => i.id)).toEqual(['r-1']);
    // Half the deadline for the hung member, then the answer.
    expect(took).toBeGreaterThanOrEqual(TIMEOUT_MS / 2 - 50);
    expect(took).toBeLessThan(TIMEOUT_MS);
  });

  it('a refused connection is passed over at once, for writes too', async () => {
    routes['dc-r'] = [refusedUrl, urls['dc-r']!];
    const r = await ask(
      'PUT',
      '/v1/namespaces/prod/services/web/instances/r-2?dc=dc-r',
      {},
      { address: '10.0.0.2', port: 80 },
    );
    expect(r.status, r.text).toBe(200);
    expect(r.headers['x-rollcall-datacenter']).toBe('dc-r');
  });

  it('a write that may have reached a member that hangs is not sent again: 504, outcome unknown', async () => {
    routes['dc-r'] = [hungUrl, urls['dc-r']!];
    const started = performance.now();
    const r = await ask(
      'PUT',
      '/v1/namespaces/prod/services/web/instances/r-3?dc=dc-r',
      {},
      { address: '10.0.0.3', port: 80 },
    );
    expect(r.status, r.text).toBe(504);
    expect(r.body.error.code).toBe('TIMEOUT');
    // It had the whole deadline, having no second attempt to share it with.
    expect(performance.now() - started).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    const there = await remotes[0]!.req({ method: 'GET', url: '/v1/namespaces/prod/services/web/instances/r-3' });
    expect(there.status).toBe(404);
  });

  it('a write with an exactly-once id goes on to the next member', async () => {
    routes['dc-r'] = [hungUrl, urls['dc-r']!];
    const r = await ask(
      'PUT',
      '/v1/namespaces/prod/services/web/instances/r-4?dc=dc-r',
      { 'x-rollcall-client-id': 'forward-test', 'x-rollcall-seq': '1' },
      { address: '10.0.0.4', port: 80 },
    );
    expect(r.status, r.text).toBe(200);
  });

  it('a remote 503 that did nothing (no leader there) is answered by the next member', async () => {
    routes['dc-r'] = [noLeaderUrl, urls['dc-r']!];
    const before = noLeaderHits;
    const r = await ask('GET', '/v1/namespaces/prod/services/web/instances?dc=dc-r');
    expect(r.status, r.text).toBe(200);
    expect(noLeaderHits).toBe(before + 1);
    // The only member says no leader: its answer is relayed.
    routes['dc-r'] = [noLeaderUrl];
    const only = await ask('GET', '/v1/namespaces/prod/services/web/instances?dc=dc-r');
    expect(only.status).toBe(503);
    expect(only.body.error.code).toBe('NO_LEADER');
    routes['dc-r'] = [urls['dc-r']!];
  });

  it('a write without an exactly-once id that a stopping member failed is not sent to the next one', async () => {
    // SHUTTING_DOWN also fails writes already proposed there: they may still commit.
    let nextHits = 0;
    const stopping = createHttpServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 'SHUTTING_DOWN', message: 'the node is shutting down' } }));
    });
    const next = createHttpServer((_req, res) => {
      nextHits++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    const urlOf = async (s: HttpServer) => {
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
      return `http://127.0.0.1:${(s.address() as { port: number }).port}`;
    };
    try {
      const members = [await urlOf(stopping), await urlOf(next)];
      const write = { url: '/v1/x', body: '{}', budgetMs: TIMEOUT_MS, waitMs: 0 };
      const once = await forwardToMembers(members, { ...write, method: 'PUT', headers: {} });
      expect(once.kind).toBe('answer');
      expect(once.kind === 'answer' && once.response.status).toBe(503);
      expect(nextHits).toBe(0);
      // With an exactly-once id the next member may take it.
      const repeatable = await forwardToMembers(members, {
        ...write,
        method: 'PUT',
        headers: { 'x-rollcall-client-id': 'c1' },
      });
      expect(repeatable.kind === 'answer' && repeatable.response.status).toBe(200);
      expect(nextHits).toBe(1);
    } finally {
      for (const s of [stopping, next]) {
        s.closeAllConnections();
        await new Promise((r) => s.close(r));
      }
    }
  });

  it('a member that sends a 503 and then no body fails like one that hangs, within the deadline', async () => {
    // The headers, and never the body they announce: its code cannot be read.
    const stalled = createHttpServer((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json', 'content-length': '200' });
      res.write('{"error":');
    });
    let nextHits = 0;
    const next = createHttpServer((_req, res) => {
      nextHits++;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    const urlOf = async (s: HttpServer) => {
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
      return `http://127.0.0.1:${(s.address() as { port: number }).port}`;
    };
    /** The outcome, or 'hung' well past the deadline. */
    const within = async (p: Promise<ForwardOutcome>) => {
      let timer: NodeJS.Timeout | undefined;
      const hung = new Promise<'hung'>((r) => {
        timer = setTimeout(() => r('hung'), 3 * TIMEOUT_MS);
      });
      try {
        return await Promise.race([p, hung]);
      } finally {
        clearTimeout(timer);
      }
    };
    try {
      const members = [await urlOf(stalled), await urlOf(next)];
      const started = performance.now();
      const read = await within(
        forwardToMembers(members, { method: 'GET', url: '/v1/x', headers: {}, budgetMs: TIMEOUT_MS, waitMs: 0 }),
      );
      expect(read !== 'hung' && read.kind === 'answer' && read.response.status).toBe(200);
      expect(performance.now() - started).toBeLessThan(TIMEOUT_MS + 500);
      expect(nextHits).toBe(1);
      // A write that cannot be repeated reached the member: outcome unknown, not sent again.
      const write = await within(
        forwardToMembers(members, {
          method: 'PUT',
          url: '/v1/x',
          headers: {},
          body: '{}',
          budgetMs: TIMEOUT_MS,
          waitMs: 0,
        }),
      );
      expect(write !== 'hung' && write.kind).toBe('ambiguous');
      expect(nextHits).toBe(1);
    } finally {
      for (const s of [stalled, next]) {
        s.closeAllConnections();
        await new Promise((r) => s.close(r));
      }
    }
  });

  it('every member failing is 503 DATACENTER_UNREACHABLE within the deadline', async () => {
    routes['dc-r'] = [hungUrl, refusedUrl];
    const started = performance.now();
    const r = await ask('GET', '/v1/namespaces/prod/services/web/instances?dc=dc-r');
    expect(r.status).toBe(503);
    expect(r.body.error.code).toBe('DATACENTER_UNREACHABLE');
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS + 500);
    routes['dc-r'] = [urls['dc-r']!];
  });
});

describe('?dc= and a client gone before the request is forwarded', () => {
  it('a watch whose client left while the hooks ran opens no stream there that outlives it', async () => {
    // The member in dc-w: watch streams that stay open, counted while they are.
    let open = 0;
    let opened = 0;
    const member = createHttpServer((_req, res) => {
      opened++;
      open++;
      res.on('close', () => open--);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('retry: 2000\n\n');
    });
    await new Promise<void>((r) => member.listen(0, '127.0.0.1', () => r()));
    const memberUrl = `http://127.0.0.1:${(member.address() as { port: number }).port}`;
    const log = captureLogger('debug');
    const app = buildApp({
      logger: log.logger,
      node: await InMemoryNodeApi.create(),
      requestTimeoutMs: TIMEOUT_MS,
      federation: { datacenter: 'dc-l', host: stubHost('dc-l', { 'dc-w': [memberUrl] }) },
    });
    // The request goes on only once its client has gone, as when it leaves while a hook awaits.
    app.addHook('onRequest', async (req) => {
      if (!req.raw.socket.destroyed) await new Promise((r) => req.raw.socket.once('close', r));
    });
    const client = new Socket();
    try {
      const url = await listen(app);
      const port = Number(new URL(url).port);
      await new Promise<void>((r) => client.connect(port, '127.0.0.1', () => r()));
      client.end('GET /v1/watch?dc=dc-w&namespace=prod HTTP/1.1\r\nhost: x\r\n\r\n');
      client.destroy();
      // The handler ran: it either asked dc-w, or gave up at once for a client that is gone.
      const gaveUp = () => log.records.some((r) => r['msg'] === 'forwarding failed: no member answered');
      await waitFor('the request forwarded, or given up', () => opened > 0 || gaveUp(), 5_000);
      // Whatever was asked of dc-w is closed again, as when the client leaves a watch later.
      if (opened > 0) await waitFor('the watch stream in dc-w closed', () => open === 0, 3_000);
      expect(open).toBe(0);
    } finally {
      client.destroy();
      member.closeAllConnections();
      await new Promise((r) => member.close(r));
      await app.close();
    }
  });
});

describe('failover discovery', () => {
  const web = '/v1/namespaces/prod/services/web/instances';

  it('answers from the first datacenter with a usable instance, and says which', async () => {
    // Local: one instance, disabled (not usable). dc-down cannot be reached; dc-r1 has none; dc-r2 has one.
    expect(
      (await local.req({ method: 'PUT', url: `${web}/l-1`, payload: { address: '10.9.0.1', port: 80 } })).status,
    ).toBe(200);
    const patched = await local.req({
      method: 'PATCH',
      url: `${web}/l-1`,
      headers: { 'if-match': '1' },
      payload: { enabled: false },
    });
    expect(patched.status, patched.text).toBe(200);
    const r = await ask('GET', `${web}?failover=dc-down,dc-r1,dc-r2`);
    expect(r.status, r.text).toBe(200);
    expect(r.headers['x-rollcall-datacenter']).toBe('dc-r2');
    expect(r.body.datacenter).toBe('dc-r2');
    expect(r.body.failovers).toBe(3);
    expect(r.body.instances.map((i: { id: string }) => i.id)).toEqual(['r2-1']);
  });

  it('answers locally when this datacenter has a usable instance', async () => {
    const r = await ask('GET', `/v1/namespaces/prod/services/web/instances?failover=dc-r2`);
    // l-1 is disabled: dc-r2 answers. Enabled again, the local answer wins.
    expect(r.body.datacenter).toBe('dc-r2');
    const version = (await local.req({ method: 'GET', url: `${web}/l-1` })).body.instance.version;
    const patched = await local.req({
      method: 'PATCH',
      url: `${web}/l-1`,
      headers: { 'if-match': String(version) },
      payload: { enabled: true },
    });
    expect(patched.status, patched.text).toBe(200);
    const again = await ask('GET', `${web}?failover=dc-r2`);
    expect(again.status, again.text).toBe(200);
    expect(again.headers['x-rollcall-datacenter']).toBe('dc-l');
    expect(again.body).toMatchObject({ datacenter: 'dc-l', failovers: 0 });
    expect(again.body.instances.map((i: { id: string }) => i.id)).toEqual(['l-1']);
  });

  it('with no usable instance anywhere, answers with this datacenter', async () => {
    const r = await ask('GET', '/v1/namespaces/prod/services/none/instances?failover=dc-r1,dc-down');
    expect(r.status, r.text).toBe(200);
    expect(r.body).toMatchObject({ datacenter: 'dc-l', failovers: 2, instances: [] });
  });

  it("the SDK's discover({ failover }) says which datacenter answered", async () => {
    const put = await remotes[2]!.req({
      method: 'PUT',
      url: '/v1/namespaces/prod/services/api/instances/r2-api',
      payload: { address: '10.0.0.9', port: 80 },
    });
    expect(put.status).toBe(200);
    const client = new RollcallClient({ endpoints: localUrl });
    try {
      const r = await client.discover({ namespace: 'prod', service: 'api', failover: ['dc-r1', 'dc-r2'] });
      expect(r).toMatchObject({ datacenter: 'dc-r2', failovers: 2 });
      expect(r.instances.map((i) => i.id)).toEqual(['r2-api']);
      const none = await client.discover({ namespace: 'prod', service: 'none', failover: ['dc-r1'] });
      expect(none).toMatchObject({ datacenter: 'dc-l', failovers: 1, instances: [] });
    } finally {
      await client.close();
    }
  });

  it('refuses an unknown datacenter, a blocking query, and other routes', async () => {
    const unknown = await ask('GET', `${web}?failover=dc-r1,dc-zz`);
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toMatchObject({ code: 'UNKNOWN_DATACENTER', datacenter: 'dc-zz' });
    const blocking = await ask('GET', `${web}?failover=dc-r1&index=3`);
    expect(blocking.status).toBe(400);
    expect(blocking.body.error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'failover' });
    const bad = await ask('GET', `${web}?failover=not_a_dc!`);
    expect(bad.status).toBe(400);
    const other = await ask('GET', '/v1/namespaces/prod/services?failover=dc-r1');
    expect(other.status).toBe(400);
    expect(other.body.error.field).toBe('failover');
  });
});
