/**
 * readRemoteService (src/consul/remote.ts), the `?dc=` read of one service, against members
 * played by node:http servers on loopback: which answers of a member mean "no such service
 * there" and which mean "ask the next member".
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ConsulFederation, readRemoteService } from '../src/consul/remote.js';

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
