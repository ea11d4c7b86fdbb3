/**
 * `?dc=` on the Consul API's namespace lists (issue 18): `/v1/catalog/services`,
 * `/v1/catalog/nodes` and `/v1/health/state/:state` answered for another datacenter, with
 * real processes: two single-node datacenters on loopback, federated with a shared secret
 * (dc-b joins dc-a), each with its Consul listener. The same instances are registered in
 * both, so dc-a's own answer and its answer for dc-b must read the same but for the
 * datacenter's name and the revisions. Blocking queries across datacenters wake on a change
 * there and time out at their wait with the index they were given; an unknown datacenter is
 * Consul's 500 `No path to datacenter`, a dead one 500 `rpc error` within the deadline.
 */
import Consul from 'consul';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, LocalCluster } from '../scripts/local-cluster.js';
import { federationArgs, waitForDatacentersAlive } from './helpers/federation.js';
import { register, waitFor, waitForLeader } from './helpers/http.js';

const SECRET = 'consul-federation-lists-secret';
const ROUND_MS = 200;
const LISTS = ['/v1/catalog/services', '/v1/catalog/nodes', '/v1/health/state/any'] as const;

let a: LocalCluster;
let b: LocalCluster;
let consulA = '';
let consulB = '';
let consulPortA = 0;

const dcArgs = (dc: string, join: string[] = []) => federationArgs(dc, join, { secret: SECRET, roundMs: ROUND_MS });

interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
  readonly ms: number;
}

async function get(base: string, path: string): Promise<Answer> {
  const started = performance.now();
  const res = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(30_000) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, ms: performance.now() - started };
}

async function put(base: string, path: string, body?: unknown): Promise<void> {
  const res = await fetch(`${base}${path}`, {
    method: 'PUT',
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(10_000),
  });
  expect([path, res.status, await res.text()]).toEqual([path, 200, expect.anything()]);
}

const indexOf = (r: Answer): number => Number(r.headers.get('x-consul-index'));

/** An answer with what may differ between two datacenters holding the same instances left out. */
function comparable(text: string): unknown {
  return JSON.parse(text, (key, value: unknown) =>
    key === 'Datacenter' ? 'DC' : key === 'CreateIndex' || key === 'ModifyIndex' ? 0 : value,
  );
}

/** The same instances in each datacenter, through its own Consul listener. */
async function populate(consul: string): Promise<void> {
  const ttl = (id: string) => ({ CheckID: `service:${id}`, TTL: '600s', Status: 'passing' });
  await put(consul, '/v1/agent/service/register', {
    Name: 'web',
    ID: 'web-1',
    Address: '10.9.0.1',
    Port: 8080,
    Tags: ['v1', 'blue'],
    Check: ttl('web-1'),
  });
  await put(consul, '/v1/agent/service/register', {
    Name: 'web',
    ID: 'web-2',
    Address: '10.9.0.2',
    Port: 8080,
    Tags: ['v2'],
    Check: ttl('web-2'),
  });
  await put(consul, '/v1/agent/service/register', {
    Name: 'api',
    ID: 'api-1',
    Address: '10.9.0.1',
    Port: 9090,
    Tags: ['x'],
    Check: ttl('api-1'),
  });
  await put(consul, '/v1/agent/service/register', { Name: 'db', ID: 'db-1', Address: '10.9.0.3', Port: 5432 });
  await put(consul, '/v1/agent/check/fail/service:api-1?note=disk%20full');
}

beforeAll(async () => {
  consulPortA = await freePort();
  const consulPortB = await freePort();
  consulA = `http://127.0.0.1:${consulPortA}`;
  consulB = `http://127.0.0.1:${consulPortB}`;
  a = await LocalCluster.start({
    size: 1,
    logLevel: 'warn',
    extraArgs: dcArgs('dc-a'),
    nodeEnv: () => ({ ROLLCALL_CONSUL_LISTEN: `127.0.0.1:${consulPortA}` }),
  });
  b = await LocalCluster.start({
    size: 1,
    logLevel: 'warn',
    extraArgs: dcArgs('dc-b', [a.nodes[0]!.url]),
    nodeEnv: () => ({ ROLLCALL_CONSUL_LISTEN: `127.0.0.1:${consulPortB}` }),
  });
  await Promise.all([waitForLeader([a.nodes[0]!.url], 60_000), waitForLeader([b.nodes[0]!.url], 60_000)]);
  await waitForDatacentersAlive([a.nodes[0]!.url, b.nodes[0]!.url], ['dc-a', 'dc-b']);
  await populate(consulA);
  await populate(consulB);
}, 120_000);

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
});

describe("Consul API ?dc= on a namespace's lists, across two federated datacenters", () => {
  it("answers each list with the other datacenter's instances, shaped as the local answer", async () => {
    for (const list of [...LISTS, '/v1/health/state/critical', '/v1/health/state/passing']) {
      const local = await get(consulA, list);
      const remote = await get(consulA, `${list}?dc=dc-b`);
      expect([list, remote.status]).toEqual([list, 200]);
      expect(remote.headers.get('x-rollcall-datacenter')).toBe('dc-b');
      expect(remote.headers.get('x-consul-knownleader')).toBe('true');
      expect(remote.headers.get('x-consul-effective-consistency')).toBe('consistent');
      expect(indexOf(remote)).toBeGreaterThanOrEqual(1);
      expect([list, comparable(remote.text)]).toEqual([list, comparable(local.text)]);
      // What dc-b's own listener answers, but for the indexes (dc-b's revisions either way).
      expect(JSON.parse(remote.text)).toEqual(JSON.parse((await get(consulB, list)).text));
    }
    const services = await get(consulA, '/v1/catalog/services?dc=dc-b&stale');
    expect(services.headers.get('x-consul-effective-consistency')).toBe('stale');
    expect(services.text).toBe('{"api":["x"],"db":[],"web":["blue","v1","v2"]}');
    const nodes = JSON.parse((await get(consulA, '/v1/catalog/nodes?dc=dc-b')).text) as {
      Node: string;
      Datacenter: string;
    }[];
    expect(nodes.map((n) => [n.Node, n.Datacenter])).toEqual([
      ['10.9.0.1', 'dc-b'],
      ['10.9.0.2', 'dc-b'],
      ['10.9.0.3', 'dc-b'],
    ]);
    const critical = JSON.parse((await get(consulA, '/v1/health/state/critical?dc=dc-b')).text) as {
      ServiceID: string;
      Output: string;
    }[];
    expect(critical).toEqual([expect.objectContaining({ ServiceID: 'api-1', Output: 'disk full' })]);
    // A state Consul does not have is refused here, before anything is asked of dc-b.
    expect((await get(consulA, '/v1/health/state/sleepy?dc=dc-b')).status).toBe(400);
  });

  it('the npm consul client reads the lists of dc-b through dc-a with its dc option', async () => {
    const consul = new Consul({ host: '127.0.0.1', port: consulPortA });
    expect(await consul.catalog.service.list({ dc: 'dc-b' })).toEqual({
      api: ['x'],
      db: [],
      web: ['blue', 'v1', 'v2'],
    });
    const nodes = (await consul.catalog.node.list({ dc: 'dc-b' })) as { Node: string; Datacenter: string }[];
    expect(nodes.map((n) => n.Node)).toEqual(['10.9.0.1', '10.9.0.2', '10.9.0.3']);
    expect(new Set(nodes.map((n) => n.Datacenter))).toEqual(new Set(['dc-b']));
    const critical = (await consul.health.state({ state: 'critical', dc: 'dc-b' })) as { ServiceID: string }[];
    expect(critical.map((c) => c.ServiceID)).toEqual(['api-1']);
  });

  it('a blocking query on dc-b times out at its wait with the same index; a health change does not move the catalog', async () => {
    const services = await get(consulA, '/v1/catalog/services?dc=dc-b');
    const index = indexOf(services);
    const parked = get(consulA, `/v1/catalog/services?dc=dc-b&index=${index}&wait=1500ms`);
    // A health change in dc-b: the catalog of services and tags is the same.
    await put(consulB, '/v1/agent/check/warn/service:web-2');
    const quiet = await parked;
    expect(quiet.status).toBe(200);
    expect(indexOf(quiet)).toBe(index);
    expect(quiet.text).toBe(services.text);
    expect(quiet.ms).toBeGreaterThanOrEqual(1400);
    expect(quiet.ms).toBeLessThan(1500 * (17 / 16) + 5_000);
    await put(consulB, '/v1/agent/check/pass/service:web-2');

    const nodes = await get(consulA, '/v1/catalog/nodes?dc=dc-b&stale');
    const still = await get(consulA, `/v1/catalog/nodes?dc=dc-b&stale&index=${indexOf(nodes)}&wait=1s`);
    expect([still.status, indexOf(still), still.text]).toEqual([200, indexOf(nodes), nodes.text]);
    expect(still.ms).toBeGreaterThanOrEqual(900);
  });

  it('a blocking query on dc-b wakes when an instance is registered there', async () => {
    const consul = new Consul({ host: '127.0.0.1', port: consulPortA });
    const seen: Record<string, string[]>[] = [];
    const watch = consul.watch({
      method: consul.catalog.service.list,
      options: { dc: 'dc-b', wait: '10s' } as never,
    });
    watch.on('change', (data: Record<string, string[]>) => seen.push(data));
    watch.on('error', () => {});
    try {
      await waitFor('the watch to read dc-b', () => seen.length > 0, 15_000);
      expect(Object.keys(seen[0]!)).not.toContain('cache');

      const before = await Promise.all(LISTS.map((list) => get(consulA, `${list}?dc=dc-b`)));
      const parked = LISTS.map((list, k) => get(consulA, `${list}?dc=dc-b&index=${indexOf(before[k]!)}&wait=20s`));
      // Parked in dc-b: an answer before the change would be a bug.
      const early = await Promise.race([
        Promise.all(parked).then(() => 'answered'),
        new Promise((r) => setTimeout(r, 500, 'parked')),
      ]);
      expect(early).toBe('parked');
      const started = performance.now();
      const r = await register(b.nodes[0]!.url, 'default', 'cache', 'cache-1', {
        address: '10.9.0.4',
        port: 6379,
        tags: ['hot'],
      });
      expect(r.status).toBe(200);
      const woken = await Promise.all(parked);
      expect(performance.now() - started).toBeLessThan(10_000);
      for (const [k, w] of woken.entries()) {
        expect([LISTS[k], w.status]).toEqual([LISTS[k], 200]);
        expect(indexOf(w)).toBeGreaterThan(indexOf(before[k]!));
        // The new service, the node at its address, its check.
        expect(w.text).toContain(['"cache"', '"10.9.0.4"', '"cache-1"'][k]);
      }
      expect(JSON.parse(woken[0]!.text)).toMatchObject({ cache: ['hot'] });
      expect((JSON.parse(woken[1]!.text) as { Node: string }[]).map((n) => n.Node)).toContain('10.9.0.4');
      await waitFor('the npm watch to see cache', () => seen.some((s) => 'cache' in s), 15_000);
    } finally {
      watch.end();
    }
  });

  it('every watch stream the blocking queries opened in dc-b is closed once they are answered', async () => {
    const watchers = async (): Promise<number> => {
      const text = await (await fetch(`${b.nodes[0]!.url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
      const states = [...text.matchAll(/^rollcall_watchers\{[^}]*\} (\d+)$/gm)];
      expect(states).toHaveLength(3); // live, catchup, closing
      return states.reduce((n, m) => n + Number(m[1]), 0);
    };
    const opened = async (): Promise<number> => {
      const text = await (await fetch(`${b.nodes[0]!.url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
      return Number(/^rollcall_watch_opened_total (\d+)$/m.exec(text)?.[1] ?? Number.NaN);
    };
    // The tests above opened some (a blocking query each, the npm client's watch one per round).
    expect(await opened()).toBeGreaterThan(0);
    await waitFor('no watch stream left open in dc-b', async () => (await watchers()) === 0, 10_000);
  });

  it('an unknown datacenter, or a name no datacenter can have, is 500 No path to datacenter', async () => {
    for (const list of LISTS) {
      for (const dc of ['dc-nowhere', 'bad_name!', 'x'.repeat(64)]) {
        const r = await get(consulA, `${list}?dc=${encodeURIComponent(dc)}&index=5&wait=30s`);
        expect([list, dc, r.status, r.text]).toEqual([list, dc, 500, 'No path to datacenter']);
        expect(r.ms).toBeLessThan(5_000);
      }
    }
    const consul = new Consul({ host: '127.0.0.1', port: consulPortA });
    await expect(consul.catalog.service.list({ dc: 'dc-nowhere' })).rejects.toThrow(/No path to datacenter/);
    await expect(consul.health.state({ state: 'any', dc: 'dc-nowhere' })).rejects.toThrow(/No path to datacenter/);
  });

  it('with dc-b gone: a parked query and new ones answer 500 rpc error within the deadline (last: stops dc-b)', async () => {
    const before = await get(consulA, '/v1/health/state/any?dc=dc-b');
    const parked = get(consulA, `/v1/health/state/any?dc=dc-b&index=${indexOf(before)}&wait=60s`);
    await new Promise((r) => setTimeout(r, 300));
    await b.kill('n1');
    const broken = await parked;
    expect(broken.status).toBe(500);
    expect(broken.text).toMatch(/^rpc error: /);
    expect(broken.ms).toBeLessThan(20_000);
    for (const list of LISTS) {
      for (const query of ['', `&index=${indexOf(before)}&wait=60s`]) {
        const r = await get(consulA, `${list}?dc=dc-b${query}`);
        expect([list, query, r.status]).toEqual([list, query, 500]);
        expect(r.text).toMatch(/^rpc error: /);
        expect(r.ms).toBeLessThan(15_000);
      }
    }
  });
});
