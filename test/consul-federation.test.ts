/**
 * `?dc=` on the Consul API (issues 17 and 18), with real processes: two single-node
 * datacenters on loopback, federated with a shared secret (dc-b joins dc-a), each with its
 * Consul listener. Instances live in dc-b; dc-a's Consul API answers for them with `?dc=dc-b`
 * (raw HTTP and the npm `consul` client), blocking queries included, and refuses a
 * datacenter nobody knows as Consul does: 500 `No path to datacenter`.
 */
import Consul from 'consul';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, LocalCluster } from '../scripts/local-cluster.js';
import { federationArgs, waitForDatacentersAlive } from './helpers/federation.js';
import { register, waitForLeader } from './helpers/http.js';

const SECRET = 'consul-federation-secret';
const ROUND_MS = 200;

let a: LocalCluster;
let b: LocalCluster;
let consulA = '';
let consulPortA = 0;

const dcArgs = (dc: string, join: string[] = []) => federationArgs(dc, join, { secret: SECRET, roundMs: ROUND_MS });

interface Entry {
  readonly Node: { readonly Datacenter: string };
  readonly Service: { readonly ID: string; readonly Datacenter: string; readonly Tags: string[] };
  readonly Checks: { readonly Status: string }[];
}

async function consulGet(path: string): Promise<{ status: number; headers: Headers; text: string }> {
  const res = await fetch(`${consulA}${path}`, { signal: AbortSignal.timeout(20_000) });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

beforeAll(async () => {
  consulPortA = await freePort();
  consulA = `http://127.0.0.1:${consulPortA}`;
  const consulPortB = await freePort();
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
  for (const [id, address, tags] of [
    ['web-1', '10.9.8.7', ['v1']],
    ['web-2', '10.9.8.8', ['v2']],
  ] as const) {
    const r = await register(b.nodes[0]!.url, 'default', 'web', id, { address, port: 8080, tags });
    expect(r.status).toBe(200);
  }
}, 120_000);

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
});

describe('Consul API ?dc= across two federated datacenters', () => {
  it("reads another datacenter's service through this node, shaped with that datacenter's name", async () => {
    const local = await consulGet('/v1/health/service/web');
    expect([local.status, JSON.parse(local.text)]).toEqual([200, []]);
    const remote = await consulGet('/v1/health/service/web?dc=dc-b');
    expect(remote.status).toBe(200);
    expect(remote.headers.get('x-rollcall-datacenter')).toBe('dc-b');
    expect(Number(remote.headers.get('x-consul-index'))).toBeGreaterThanOrEqual(1);
    expect(remote.headers.get('x-consul-knownleader')).toBe('true');
    const entries = JSON.parse(remote.text) as Entry[];
    expect(entries.map((e) => e.Service.ID)).toEqual(['web-1', 'web-2']);
    expect(entries.every((e) => e.Node.Datacenter === 'dc-b' && e.Service.Datacenter === 'dc-b')).toBe(true);
    expect(entries.map((e) => e.Checks[0]!.Status)).toEqual(['passing', 'passing']);
    const tagged = await consulGet('/v1/catalog/service/web?dc=dc-b&tag=v2');
    expect((JSON.parse(tagged.text) as { ServiceID: string; Datacenter: string }[]).map((s) => s.ServiceID)).toEqual([
      'web-2',
    ]);
    const checks = await consulGet('/v1/health/checks/web?dc=dc-b&stale');
    expect(checks.headers.get('x-consul-effective-consistency')).toBe('stale');
    expect((JSON.parse(checks.text) as { ServiceID: string }[]).map((c) => c.ServiceID)).toEqual(['web-1', 'web-2']);
    // Our own datacenter by name is served here.
    expect(JSON.parse((await consulGet('/v1/health/service/web?dc=dc-a')).text)).toEqual([]);
  });

  it('a blocking query with ?dc= waits in that datacenter and wakes on its change', async () => {
    const first = await consulGet('/v1/health/service/web?dc=dc-b');
    const index = Number(first.headers.get('x-consul-index'));
    const started = performance.now();
    const parked = consulGet(`/v1/health/service/web?dc=dc-b&index=${index}&wait=15s`);
    // Parked in dc-b: an answer before the change would be a bug.
    const early = await Promise.race([parked.then(() => 'answered'), new Promise((r) => setTimeout(r, 500, 'parked'))]);
    expect(early).toBe('parked');
    expect(
      (await register(b.nodes[0]!.url, 'default', 'web', 'web-3', { address: '10.9.8.9', port: 8080 })).status,
    ).toBe(200);
    const woken = await parked;
    expect(performance.now() - started).toBeLessThan(10_000);
    expect(Number(woken.headers.get('x-consul-index'))).toBeGreaterThan(index);
    expect((JSON.parse(woken.text) as Entry[]).map((e) => e.Service.ID)).toEqual(['web-1', 'web-2', 'web-3']);
  });

  it('the npm consul client reads dc-b through dc-a with its dc option', async () => {
    const consul = new Consul({ host: '127.0.0.1', port: consulPortA });
    const entries = (await consul.health.service({ service: 'web', dc: 'dc-b', passing: true })) as Entry[];
    expect(entries.map((e) => e.Service.ID)).toContain('web-1');
    expect(entries.every((e) => e.Node.Datacenter === 'dc-b')).toBe(true);
    expect(await consul.catalog.datacenters()).toEqual(expect.arrayContaining(['dc-a', 'dc-b']));
    await expect(consul.health.service({ service: 'web', dc: 'dc-nowhere' })).rejects.toThrow(/No path to datacenter/);
  });

  it('an unknown datacenter is 500 No path to datacenter; a route answered here only is 400', async () => {
    const unknown = await consulGet('/v1/catalog/service/web?dc=dc-nowhere');
    expect([unknown.status, unknown.text]).toEqual([500, 'No path to datacenter']);
    // Before anything else: an agent route with an unknown datacenter too.
    expect((await consulGet('/v1/agent/services?dc=dc-nowhere')).status).toBe(500);
    const agent = await consulGet('/v1/agent/services?dc=dc-b');
    expect(agent.status).toBe(400);
    expect(agent.text).toMatch(/^dc: GET \/v1\/agent\/services is answered by this node only/);
  });

  it('with every member of dc-b gone: 500 within the deadline, never a hang (last: it stops dc-b)', async () => {
    await b.kill('n1');
    const started = performance.now();
    const r = await consulGet('/v1/health/service/web?dc=dc-b');
    expect(r.status).toBe(500);
    expect(r.text).toMatch(/^rpc error: /);
    expect(performance.now() - started).toBeLessThan(15_000);
  });
});
