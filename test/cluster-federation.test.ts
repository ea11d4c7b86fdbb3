/**
 * Federation with real processes (issue 18): three datacenters of three nodes each on
 * loopback, gossiping over HTTP every 300 ms. dc-b joins dc-a with --federation-join; dc-c
 * joins through one node of dc-b only (POST /v1/federation/join), and every node of dc-a
 * learns of it. `?dc=` reads and writes are forwarded and say where they were answered; an
 * unknown datacenter is a 400; gossip with a wrong secret and forged hops are refused; dc-b
 * killed with kill -9 is reported unreachable by everyone within a bounded time, `?dc=dc-b`
 * answers 503 at once while local writes go on, and dc-b comes back alive on restart.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SeededRandom } from '../raft/rand.js';
import { CLI_PATH, freePort, LocalCluster } from '../scripts/local-cluster.js';
import { GOSSIP_CONTENT_TYPE, GOSSIP_PATH } from '../src/federation/host.js';
import { FederationEngine } from '../src/federation/index.js';
import { systemClock } from '../src/node/clock.js';
import { federationArgs } from './helpers/federation.js';
import { http, list, register, waitFor, waitForLeader } from './helpers/http.js';

const SECRET = 'federation-test-secret';
const ROUND_MS = 300;

let a: LocalCluster;
let b: LocalCluster;
let c: LocalCluster;
const logs: string[] = [];
let consulPort = 0;

const dcArgs = (dc: string, join: string[] = []) => federationArgs(dc, join, { secret: SECRET, roundMs: ROUND_MS });

interface Federation {
  datacenter: string;
  datacenters: {
    name: string;
    status: string;
    rttMs: number | null;
    lastHeard: number | null;
    members: { id: string; address: string; status: string }[];
  }[];
}
const federation = async (url: string): Promise<Federation> =>
  (await http<Federation>('GET', `${url}/v1/federation`, undefined, {}, 2000)).body;
const rollcall = async (...args: string[]): Promise<{ code: number; stdout: string }> => {
  try {
    const { stdout } = await promisify(execFile)(process.execPath, [CLI_PATH, ...args], { timeout: 20_000 });
    return { code: 0, stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '' };
  }
};
const statusOf = (f: Federation, dc: string): string | undefined => f.datacenters.find((d) => d.name === dc)?.status;

beforeAll(async () => {
  const onLog = (dc: string) => (id: string, line: string) => logs.push(`${dc}/${id} ${line}`);
  // dc-a's first node also serves the Consul API, whose datacenter list comes from the same engine.
  consulPort = await freePort();
  a = await LocalCluster.start({
    size: 3,
    extraArgs: dcArgs('dc-a'),
    onLog: onLog('dc-a'),
    logLevel: 'info',
    nodeEnv: (id) => (id === 'n1' ? { ROLLCALL_CONSUL_LISTEN: `127.0.0.1:${consulPort}` } : {}),
  });
  [b, c] = await Promise.all([
    LocalCluster.start({
      size: 3,
      extraArgs: dcArgs('dc-b', [a.nodes[0]!.url]),
      onLog: onLog('dc-b'),
      logLevel: 'info',
    }),
    LocalCluster.start({ size: 3, extraArgs: dcArgs('dc-c'), onLog: onLog('dc-c'), logLevel: 'info' }),
  ]);
  await Promise.all(
    [a, b, c].map((x) =>
      waitForLeader(
        x.nodes.map((n) => n.url),
        90_000,
      ),
    ),
  );
}, 240_000);

afterAll(async () => {
  await Promise.all([a?.close(), b?.close(), c?.close()]);
});

describe('federation of three datacenters', () => {
  it('a datacenter joined through one node of another becomes known to every node', async () => {
    const joined = await rollcall('federation', 'join', b.nodes[1]!.url, '--endpoints', c.nodes[0]!.url);
    expect(joined.code).toBe(0);
    const everyone = [...a.nodes, ...b.nodes, ...c.nodes];
    let seen = '';
    await waitFor(
      'every node sees all three datacenters alive',
      async () => {
        const views = await Promise.all(everyone.map((n) => federation(n.url)));
        seen = views
          .map((f) => f.datacenters.map((d) => `${d.name}:${d.status}:${d.members.length}`).join(','))
          .join(' | ');
        return views.every((f) =>
          ['dc-a', 'dc-b', 'dc-c'].every(
            (dc) => statusOf(f, dc) === 'alive' && f.datacenters.find((d) => d.name === dc)!.members.length === 3,
          ),
        );
      },
      30_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last seen: ${seen}`);
    });
    const f = await federation(a.nodes[2]!.url);
    expect(f.datacenter).toBe('dc-a');
    const cEntry = f.datacenters.find((d) => d.name === 'dc-c')!;
    expect(cEntry.members.map((m) => m.address).sort()).toEqual(c.nodes.map((n) => n.url).sort());
    const listed = await rollcall('federation', 'list', '--json', '--endpoints', a.nodes[0]!.url);
    expect(listed.code).toBe(0);
    expect((JSON.parse(listed.stdout) as Federation).datacenters.map((d) => [d.name, d.status])).toEqual([
      ['dc-a', 'alive'],
      ['dc-b', 'alive'],
      ['dc-c', 'alive'],
    ]);
    const names = (await http<string[]>('GET', `${a.nodes[1]!.url}/v1/catalog/datacenters`)).body;
    expect(names[0]).toBe('dc-a');
    expect([...names].sort()).toEqual(['dc-a', 'dc-b', 'dc-c']);
    const consulNames = (await http<string[]>('GET', `http://127.0.0.1:${consulPort}/v1/catalog/datacenters`)).body;
    expect(consulNames[0]).toBe('dc-a');
    expect([...consulNames].sort()).toEqual(['dc-a', 'dc-b', 'dc-c']);
  }, 40_000);

  it('forwards ?dc= reads and writes, and refuses an unknown datacenter', async () => {
    expect((await register(a.nodes[0]!.url, 'prod', 'orders', 'o1', { address: '10.0.0.1', port: 9000 })).status).toBe(
      200,
    );
    // Read from dc-c: linearizable in dc-a, so o1 is there at once.
    const read = await list(c.nodes[1]!.url, 'prod', 'orders', '?dc=dc-a');
    expect(read.status, JSON.stringify(read.body)).toBe(200);
    expect(read.headers.get('x-rollcall-datacenter')).toBe('dc-a');
    expect(read.body.instances.map((i: { id: string }) => i.id)).toEqual(['o1']);
    // Nothing is replicated: dc-c's own registry has no such instance.
    expect((await list(c.nodes[1]!.url, 'prod', 'orders')).body.instances).toEqual([]);
    // A write from dc-c applied in dc-a.
    const write = await http('PUT', `${c.nodes[2]!.url}/v1/namespaces/prod/services/orders/instances/o2?dc=dc-a`, {
      address: '10.0.0.2',
      port: 9000,
    });
    expect(write.status).toBe(200);
    expect(write.headers.get('x-rollcall-datacenter')).toBe('dc-a');
    expect((await list(a.nodes[2]!.url, 'prod', 'orders')).body.instances.map((i: { id: string }) => i.id)).toEqual([
      'o1',
      'o2',
    ]);
    // ?dc= naming ourselves is served here.
    expect((await list(a.nodes[1]!.url, 'prod', 'orders', '?dc=dc-a')).body.instances).toHaveLength(2);
    // A watch from dc-c on dc-a: a proxied stream, history then live changes.
    const abort = new AbortController();
    const stream = await fetch(`${c.nodes[1]!.url}/v1/watch?namespace=prod&service=orders&fromRevision=1&dc=dc-a`, {
      signal: abort.signal,
    });
    expect(stream.status).toBe(200);
    expect(stream.headers.get('x-rollcall-datacenter')).toBe('dc-a');
    const reader = stream.body!.getReader();
    let text = '';
    const until = async (id: string) => {
      while (!text.includes(`"id":"${id}"`)) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`the watch ended before ${id}: ${text}`);
        text += new TextDecoder().decode(value);
      }
    };
    await until('o2');
    expect((await register(a.nodes[1]!.url, 'prod', 'orders', 'o3', { address: '10.0.0.3', port: 9000 })).status).toBe(
      200,
    );
    await until('o3');
    abort.abort();
    const unknown = await list(c.nodes[0]!.url, 'prod', 'orders', '?dc=dc-zz');
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.code).toBe('UNKNOWN_DATACENTER');
  }, 20_000);

  it('refuses gossip signed with another secret, and forged hops', async () => {
    const sent: Uint8Array[] = [];
    const stranger = new FederationEngine({
      datacenter: 'dc-x',
      nodeId: 'x1',
      address: 'http://127.0.0.1:9',
      secret: 'not-the-federation-secret',
      clock: systemClock,
      random: new SeededRandom(1),
      send: (_to, bytes) => sent.push(bytes),
      join: [a.nodes[0]!.url],
    });
    stranger.tick(systemClock.now() + 10_000);
    expect(sent.length).toBeGreaterThan(0);
    for (const bytes of sent) {
      const res = await fetch(`${a.nodes[0]!.url}${GOSSIP_PATH}`, {
        method: 'POST',
        headers: { 'content-type': GOSSIP_CONTENT_TYPE },
        body: bytes,
      });
      expect(res.status).toBe(204);
    }
    await waitFor('the refusal logged', () =>
      logs.some((l) => l.startsWith('dc-a/n1 ') && l.includes('gossip message refused') && l.includes('bad-mac')),
    );
    expect(statusOf(await federation(a.nodes[0]!.url), 'dc-x')).toBeUndefined();
    const forged = await http(
      'GET',
      `${a.nodes[0]!.url}/v1/namespaces/prod/services/orders/instances?dc=dc-a`,
      undefined,
      { 'x-rollcall-federation-hop': `dc-c.${Date.now()}.${'00'.repeat(32)}` },
    );
    expect(forged.status).toBe(401);
  }, 20_000);

  it('reports a killed datacenter unreachable, answers 503 for it, and carries on locally', async () => {
    const killedAt = Date.now();
    await Promise.all(b.nodes.map((n) => b.kill(n.id)));
    const watchers = [...a.nodes, ...c.nodes];
    await waitFor(
      'every node of dc-a and dc-c sees dc-b unreachable',
      async () => {
        const views = await Promise.all(watchers.map((n) => federation(n.url)));
        return views.every((f) => statusOf(f, 'dc-b') === 'unreachable');
      },
      20_000,
      100,
    );
    const detectMs = Date.now() - killedAt;
    // Suspicion timeout: 4 × 300 ms at least, up to 3 × that for a lone suspector; plus the rounds to suspect.
    expect(detectMs).toBeLessThan(15_000);

    const t0 = performance.now();
    const res = await list(a.nodes[0]!.url, 'prod', 'orders', '?dc=dc-b');
    expect(res.status).toBe(503);
    expect(res.body.error.code).toBe('DATACENTER_UNREACHABLE');
    expect(performance.now() - t0).toBeLessThan(1000);

    for (let i = 0; i < 20; i++) {
      const s = performance.now();
      expect(
        (await register(a.nodes[i % 3]!.url, 'prod', 'local', `l${i}`, { address: '10.0.1.1', port: 80 + i })).status,
      ).toBe(200);
      expect(performance.now() - s).toBeLessThan(1000);
    }

    // Restarted, with only what each node stored: alive again without intervention, and with
    // all three members (each restarted node first knows only itself: issue 18).
    await Promise.all(b.nodes.map((n) => b.restart(n.id)));
    let seen = '';
    await waitFor(
      'dc-b alive again everywhere, with its three members',
      async () => {
        const views = await Promise.all(watchers.map((n) => federation(n.url)));
        seen = views
          .map((f) => `${statusOf(f, 'dc-b')}:${f.datacenters.find((d) => d.name === 'dc-b')?.members.length}`)
          .join(' ');
        return views.every(
          (f) => statusOf(f, 'dc-b') === 'alive' && f.datacenters.find((d) => d.name === 'dc-b')!.members.length === 3,
        );
      },
      20_000,
      100,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last seen: ${seen}`);
    });
    // Alive to the gossip is not yet serving: a linearizable read waits for dc-b's new leader.
    await waitForLeader(
      b.nodes.map((n) => n.url),
      30_000,
    );
    const fromB = await list(c.nodes[0]!.url, 'prod', 'orders', '?dc=dc-b');
    expect(fromB.headers.get('x-rollcall-datacenter'), `${fromB.status} ${JSON.stringify(fromB.body)}`).toBe('dc-b');
  }, 60_000);

  it('leaves the federation: every member of the cluster forgets the others', async () => {
    const left = await rollcall('federation', 'leave', '--endpoints', c.nodes[0]!.url);
    expect(left.code).toBe(0);
    for (const n of c.nodes) expect((await federation(n.url)).datacenters.map((d) => d.name)).toEqual(['dc-c']);
    expect((await list(c.nodes[1]!.url, 'prod', 'orders', '?dc=dc-a')).body.error.code).toBe('UNKNOWN_DATACENTER');
  }, 20_000);
});
