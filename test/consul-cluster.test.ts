/**
 * The Consul-compatible API on a real 3-node cluster (separate processes, real LevelDB),
 * driven by the real npm `consul` client and by exactly the requests Prometheus's Consul
 * discovery makes. Each node serves the Consul API on its own port (--consul-listen, here
 * through ROLLCALL_CONSUL_LISTEN); everything a test writes through one node it reads
 * through another.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Consul from 'consul';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { freePort, LocalCluster } from '../scripts/local-cluster.js';
import { http, waitFor, waitForLeader } from './helpers/http.js';

/** Debian's Prometheus (apt-get install prometheus); built without Consul discovery, so only http_sd_configs runs here. */
const PROMETHEUS = '/usr/bin/prometheus';

type Entry = {
  Node: { Node: string; Address: string; Meta: Record<string, string>; TaggedAddresses: Record<string, unknown> };
  Service: { ID: string; Service: string; Address: string; Port: number; Tags: string[]; Meta: Record<string, string> };
  Checks: { CheckID: string; Status: string; Output: string }[];
};

/** The client's types want Name and Timeout on every check; Consul (and the client) need neither for a TTL check. */
const register = (c: Consul, definition: object): Promise<unknown> => c.agent.service.register(definition as never);

describe('Consul-compatible API on a 3-node cluster', () => {
  let cluster: LocalCluster;
  let consulPorts: number[];
  let clients: Consul[];
  /** Consul base URL of a node by id. */
  const curl = (id: string) => `http://127.0.0.1:${consulPorts[Number(id.slice(1)) - 1]}`;
  const client = (id: string) => clients[Number(id.slice(1)) - 1]!;
  let leader: string;
  let followers: string[];

  beforeAll(async () => {
    consulPorts = [await freePort(), await freePort(), await freePort()];
    cluster = await LocalCluster.start({
      size: 3,
      logLevel: 'warn',
      env: { ROLLCALL_TEST_FAULTS: '1' },
      nodeEnv: (id) => ({ ROLLCALL_CONSUL_LISTEN: `127.0.0.1:${consulPorts[Number(id.slice(1)) - 1]}` }),
    });
    clients = consulPorts.map((port) => new Consul({ host: '127.0.0.1', port }));
    leader = await waitForLeader(cluster.nodes.map((n) => n.url));
    followers = cluster.nodes.map((n) => n.id).filter((id) => id !== leader);
  });
  // Roles as they are now: a test that cuts a follower off must not cut off a new leader.
  beforeEach(async () => {
    leader = await waitForLeader(cluster.nodes.map((n) => n.url));
    followers = cluster.nodes.map((n) => n.id).filter((id) => id !== leader);
  });
  afterAll(async () => {
    for (const c of clients ?? []) c.destroy();
    await cluster?.close();
  });

  /** Passes a TTL check every `everyMs` through the nodes in turn, until stopped. */
  function keepPassing(checkId: string, everyMs = 500): { stop: () => void; errors: unknown[] } {
    let stopped = false;
    const errors: unknown[] = [];
    let k = 0;
    void (async () => {
      while (!stopped) {
        try {
          await clients[k++ % clients.length]!.agent.check.pass(checkId);
        } catch (err) {
          errors.push(err);
        }
        await new Promise((r) => setTimeout(r, everyMs));
      }
    })();
    return { stop: () => (stopped = true), errors };
  }

  it('the npm client: register with a TTL check, pass it, read through other nodes, watch, TTL lapse, deregister', async () => {
    const [a, b] = followers as [string, string];
    await register(client(a), {
      name: 'pay',
      id: 'pay-1',
      address: '10.1.0.1',
      port: 8080,
      tags: ['v1'],
      meta: { zone: 'a' },
      check: { ttl: '4s' },
    });

    // A TTL check starts critical until its first pass, as on Consul.
    const before = (await client(b).health.service({ service: 'pay' })) as Entry[];
    expect(before.map((e) => [e.Service.ID, e.Checks[0]!.Status])).toEqual([['pay-1', 'critical']]);
    expect(await client(b).health.service({ service: 'pay', passing: true })).toEqual([]);

    // Passed through another node than the one that registered it.
    await client(b).agent.check.pass({ id: 'service:pay-1', note: 'all good' });
    const pass1 = keepPassing('service:pay-1');
    try {
      const passing = (await client(leader).health.service({ service: 'pay', passing: true })) as Entry[];
      expect(passing).toHaveLength(1);
      const e = passing[0]!;
      expect(e.Service).toMatchObject({
        ID: 'pay-1',
        Service: 'pay',
        Address: '10.1.0.1',
        Port: 8080,
        Tags: ['v1'],
        Meta: { zone: 'a' },
      });
      expect(e.Node).toMatchObject({ Node: '10.1.0.1', Address: '10.1.0.1', Meta: {} });
      expect(e.Checks).toEqual([
        expect.objectContaining({ CheckID: 'service:pay-1', Status: 'passing', Output: 'all good' }),
      ]);

      expect(await client(a).catalog.service.list()).toEqual({ pay: ['v1'] });

      // A watch through the third node sees a new instance registered through the leader.
      const seen: string[][] = [];
      const watch = client(b).watch({
        method: client(b).health.service,
        options: { service: 'pay', passing: true, wait: '5s' } as never,
      });
      watch.on('change', (data: Entry[]) => seen.push(data.map((x) => x.Service.ID)));
      watch.on('error', () => {});
      try {
        await waitFor('the watch to report pay-1', () => seen.some((ids) => ids.includes('pay-1')), 15_000);
        await register(client(leader), {
          name: 'pay',
          id: 'pay-2',
          address: '10.1.0.2',
          port: 8080,
          tags: ['v1'],
          check: { ttl: '30s', status: 'passing' },
        });
        await waitFor(
          'the watch to report pay-2',
          () => seen.some((ids) => ids.includes('pay-1') && ids.includes('pay-2')),
          15_000,
        );
      } finally {
        watch.end();
      }

      // warn and fail take pay-2 out of `passing`; pass puts it back.
      await client(a).agent.check.fail({ id: 'service:pay-2', note: 'disk full' });
      const ids = async () =>
        ((await client(b).health.service({ service: 'pay', passing: true })) as Entry[]).map((x) => x.Service.ID);
      expect(await ids()).toEqual(['pay-1']);
      const critical = (await client(leader).health.state('critical')) as { ServiceID: string; Output: string }[];
      expect(critical).toEqual([expect.objectContaining({ ServiceID: 'pay-2', Output: 'disk full' })]);
      await client(b).agent.check.warn('service:pay-2');
      expect(
        ((await client(a).health.checks('pay')) as { ServiceID: string; Status: string }[]).map((c) => [
          c.ServiceID,
          c.Status,
        ]),
      ).toEqual([
        ['pay-1', 'passing'],
        ['pay-2', 'warning'],
      ]);
      await client(leader).agent.check.pass('service:pay-2');
      expect(await ids()).toEqual(['pay-1', 'pay-2']);
    } finally {
      pass1.stop();
    }
    expect(pass1.errors).toEqual([]);

    // No more passes: the TTL lapses and the instance is gone (Rollcall removes it; Consul would mark it critical).
    await waitFor(
      'pay-1 to lapse',
      async () => {
        const all = (await client(a).health.service('pay')) as Entry[];
        return all.every((x) => x.Service.ID !== 'pay-1') ? true : undefined;
      },
      25_000,
      200,
    );
    await expect(client(b).agent.check.pass('service:pay-1')).rejects.toThrow('Unknown check ID "service:pay-1"');

    await client(b).agent.service.deregister('pay-2');
    expect(await client(a).health.service('pay')).toEqual([]);
    expect(await client(leader).catalog.service.list()).toEqual({});
    await expect(client(a).agent.service.deregister('pay-2')).rejects.toThrow('Unknown service ID "pay-2"');
  });

  it("warn, fail and pass through any node set the instance's Rollcall health, seen natively and through Consul on every node", async () => {
    const [a, b] = followers as [string, string];
    const nodes = [a, b, leader];
    /** The instance's health through the native API, on every node (linearizable reads). */
    const nativeHealth = async () =>
      Promise.all(
        nodes.map(
          async (id) =>
            (await http('GET', `${cluster.node(id).url}/v1/namespaces/default/services/ledger/instances/ledger-1`)).body
              .instance?.health as string,
        ),
      );
    const passingIds = async (id: string) =>
      ((await client(id).health.service({ service: 'ledger', passing: true })) as Entry[]).map((x) => x.Service.ID);
    await register(client(a), {
      name: 'ledger',
      id: 'ledger-1',
      address: '10.3.0.1',
      port: 7000,
      check: { ttl: '30s', status: 'passing' },
    });
    expect(await nativeHealth()).toEqual(['healthy', 'healthy', 'healthy']);

    // warn through one follower: the other follower's `passing` leaves it out, native health is subhealthy everywhere.
    await client(a).agent.check.warn({ id: 'service:ledger-1', note: 'slow disk' });
    expect(await passingIds(b)).toEqual([]);
    expect(await nativeHealth()).toEqual(['subhealthy', 'subhealthy', 'subhealthy']);
    const warned = (await client(leader).health.service('ledger')) as Entry[];
    expect(warned[0]!.Checks).toEqual([expect.objectContaining({ Status: 'warning', Output: 'slow disk' })]);

    // fail through the leader: critical on Consul, down natively.
    await client(leader).agent.check.fail({ id: 'service:ledger-1', note: 'disk full' });
    expect(await nativeHealth()).toEqual(['down', 'down', 'down']);
    expect(((await client(b).health.state('critical')) as { ServiceID: string }[]).map((c) => c.ServiceID)).toContain(
      'ledger-1',
    );

    // pass through the other follower brings it back.
    await client(b).agent.check.pass('service:ledger-1');
    expect(await nativeHealth()).toEqual(['healthy', 'healthy', 'healthy']);
    expect(await passingIds(a)).toEqual(['ledger-1']);

    // update with Status does the same (the npm client has no call for it); then clean up.
    expect(
      (await http('PUT', `${curl(a)}/v1/agent/check/update/service:ledger-1`, { Status: 'warning', Output: 'busy' }))
        .status,
    ).toBe(200);
    expect(await nativeHealth()).toEqual(['subhealthy', 'subhealthy', 'subhealthy']);
    await client(b).agent.service.deregister('ledger-1');
  });

  it('answers exactly the requests Prometheus consul_sd makes (agent/self, catalog/services, health/service with stale, index, wait=120000ms)', async () => {
    const at = curl(followers[0]!);
    await http('PUT', `${curl(leader)}/v1/agent/service/register`, {
      Name: 'node-exporter',
      ID: 'ne-1',
      Address: '10.2.0.1',
      Port: 9100,
      Tags: ['prod', 'metrics'],
      Meta: { team: 'infra' },
    });
    // The reads below are ?stale on a follower: its own applied state, which may not hold the write yet.
    await waitFor(
      'the follower to apply the registration',
      async () => ((await http('GET', `${at}/v1/catalog/service/node-exporter?stale`)).body as unknown[]).length === 1,
      10_000,
    );

    const self = await http('GET', `${at}/v1/agent/self`);
    expect(self.status).toBe(200);
    expect(self.body.Config.Datacenter).toBe('dc1');
    expect(typeof self.body.Config.NodeName).toBe('string');
    // The Go client decodes map[string]map[string]interface{}: every top-level value an object.
    for (const v of Object.values(self.body))
      expect(v !== null && typeof v === 'object' && !Array.isArray(v)).toBe(true);

    const meta = (r: { headers: Headers }) => {
      expect(r.headers.get('x-consul-index')).toMatch(/^[1-9][0-9]*$/);
      expect(r.headers.get('x-consul-lastcontact')).toMatch(/^[0-9]+$/);
      expect(r.headers.get('x-consul-knownleader')).toBe('true');
      return Number(r.headers.get('x-consul-index'));
    };
    const services = await http('GET', `${at}/v1/catalog/services?dc=dc1&stale=&wait=120000ms`);
    expect(services.status).toBe(200);
    expect(services.headers.get('x-consul-effective-consistency')).toBe('stale');
    expect(services.body['node-exporter']).toEqual(['metrics', 'prod']);
    const servicesIndex = meta(services);

    const health = await http('GET', `${at}/v1/health/service/node-exporter?dc=dc1&stale=&wait=120000ms`);
    expect(health.status).toBe(200);
    const healthIndex = meta(health);
    const [entry] = health.body as Entry[];
    // What Prometheus reads: Node.Address, Node.Node, Node.Meta, Node.TaggedAddresses (strings),
    // Service.Address, Service.Port, Service.Tags, Service.ID, Service.Meta, Checks[].Status.
    expect(entry!.Node).toMatchObject({ Node: '10.2.0.1', Address: '10.2.0.1', Meta: {} });
    for (const v of Object.values(entry!.Node.TaggedAddresses)) expect(typeof v).toBe('string');
    expect(entry!.Service).toMatchObject({
      ID: 'ne-1',
      Address: '10.2.0.1',
      Port: 9100,
      Tags: ['metrics', 'prod'],
      Meta: { team: 'infra' },
    });
    expect(entry!.Checks.map((c) => c.Status)).toEqual(['passing']);

    // Both blocking queries park (wait=120000ms) and wake on the change that concerns them.
    const started = Date.now();
    const parkedServices = http(
      'GET',
      `${at}/v1/catalog/services?dc=dc1&stale=&index=${servicesIndex}&wait=120000ms`,
      undefined,
      {},
      30_000,
    );
    const parkedHealth = http(
      'GET',
      `${at}/v1/health/service/node-exporter?dc=dc1&stale=&index=${healthIndex}&wait=120000ms`,
      undefined,
      {},
      30_000,
    );
    await new Promise((r) => setTimeout(r, 300));
    await http('PUT', `${curl(leader)}/v1/agent/service/register`, {
      Name: 'node-exporter',
      ID: 'ne-2',
      Address: '10.2.0.2',
      Port: 9100,
      Tags: ['prod', 'canary'],
    });
    const [s2, h2] = await Promise.all([parkedServices, parkedHealth]);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(meta(s2)).toBeGreaterThan(servicesIndex);
    expect(s2.body['node-exporter']).toEqual(['canary', 'metrics', 'prod']);
    expect(meta(h2)).toBeGreaterThan(healthIndex);
    expect((h2.body as Entry[]).map((e) => e.Service.ID)).toEqual(['ne-1', 'ne-2']);
    // With tags, as ServiceMultipleTags asks: every tag must match.
    const tagged = await http('GET', `${at}/v1/health/service/node-exporter?dc=dc1&stale=&tag=prod&tag=canary`);
    expect((tagged.body as Entry[]).map((e) => e.Service.ID)).toEqual(['ne-2']);
  });

  it('blocking queries: a change to another service never wakes a query on this one; one to this service does', async () => {
    const at = curl(followers[1]!);
    const w = curl(leader);
    await http('PUT', `${w}/v1/agent/service/register`, {
      Name: 'quiet',
      ID: 'q1',
      Address: '10.3.0.1',
      Port: 1,
      Tags: ['t'],
    });
    const first = await http('GET', `${at}/v1/health/service/quiet`);
    const index = Number(first.headers.get('x-consul-index'));
    const catalog = await http('GET', `${at}/v1/catalog/services`);
    const catalogIndex = Number(catalog.headers.get('x-consul-index'));

    // Queries woken on this node: one woken by another service and parked again answers the same, so only this shows it.
    const wakeups = async () =>
      Number(
        ((await http('GET', `${at}/v1/agent/self`)).body as { Stats: { rollcall: { wakeups: string } } }).Stats.rollcall
          .wakeups,
      );
    const wakeups0 = await wakeups();
    const t0 = Date.now();
    const parked = http('GET', `${at}/v1/health/service/quiet?index=${index}&wait=2s`, undefined, {}, 10_000);
    // The catalog index moves only when the set of services or tags changes: a new instance of
    // a known service with known tags, and a check status change, do not wake it.
    const parkedCatalog = http('GET', `${at}/v1/catalog/services?index=${catalogIndex}&wait=2s`, undefined, {}, 10_000);
    for (let k = 0; k < 5; k++) {
      await http('PUT', `${w}/v1/agent/service/register`, {
        Name: 'noisy',
        ID: `n${k}`,
        Address: '10.3.0.2',
        Port: 1 + k,
        Tags: k === 0 ? ['t'] : [],
      });
    }
    const [r, c] = await Promise.all([parked, parkedCatalog]);
    const elapsed = Date.now() - t0;
    expect(r.status).toBe(200);
    expect(Number(r.headers.get('x-consul-index'))).toBe(index);
    expect(elapsed).toBeGreaterThanOrEqual(1900);
    // The first "noisy" registration added a service: that one did wake the catalog query.
    expect(Number(c.headers.get('x-consul-index'))).toBeGreaterThan(catalogIndex);
    // ...and only that one (if it had parked before that registration): the query on "quiet"
    // was never woken (a feed waking every query would count it once per noisy registration).
    expect((await wakeups()) - wakeups0).toBeLessThanOrEqual(1);

    const catalog2 = await http('GET', `${at}/v1/catalog/services`);
    const catalogIndex2 = Number(catalog2.headers.get('x-consul-index'));
    const wakeups1 = await wakeups();
    const t1 = Date.now();
    const parkedCatalog2 = http(
      'GET',
      `${at}/v1/catalog/services?index=${catalogIndex2}&wait=2s`,
      undefined,
      {},
      10_000,
    );
    await http('PUT', `${w}/v1/agent/service/register`, {
      Name: 'noisy',
      ID: 'n9',
      Address: '10.3.0.9',
      Port: 9,
      Tags: ['t'],
    });
    const c2 = await parkedCatalog2;
    expect(Number(c2.headers.get('x-consul-index'))).toBe(catalogIndex2);
    expect(Date.now() - t1).toBeGreaterThanOrEqual(1900);
    expect(await wakeups()).toBe(wakeups1);

    // A change to this service wakes it at once.
    const t2 = Date.now();
    const parked2 = http('GET', `${at}/v1/health/service/quiet?index=${index}&wait=60s`, undefined, {}, 30_000);
    await new Promise((res) => setTimeout(res, 200));
    await http('PUT', `${w}/v1/agent/service/register`, { Name: 'quiet', ID: 'q2', Address: '10.3.0.3', Port: 1 });
    const r2 = await parked2;
    expect(Number(r2.headers.get('x-consul-index'))).toBeGreaterThan(index);
    expect(Date.now() - t2).toBeLessThan(10_000);
    expect((r2.body as Entry[]).map((e) => e.Service.ID)).toEqual(['q1', 'q2']);
  });

  it('a watcher on a follower catches a change written through the leader, and an index ahead of a lagging follower waits for it', async () => {
    const follower = followers[0]!;
    const at = curl(follower);
    const seen: string[][] = [];
    const watch = client(follower).watch({
      method: client(follower).catalog.service.nodes,
      options: { service: 'orders', wait: '10s' } as never,
    });
    watch.on('change', (data: { ServiceID: string }[]) => seen.push(data.map((x) => x.ServiceID)));
    watch.on('error', () => {});
    try {
      await waitFor('the first (empty) answer', () => seen.length > 0, 10_000);
      await register(client(leader), { name: 'orders', id: 'o1', address: '10.4.0.1', port: 7000 });
      await waitFor('the follower watcher to see o1', () => seen.some((ids) => ids.includes('o1')), 10_000);
    } finally {
      watch.end();
    }

    // Cut the follower off, write through the leader, ask the follower with the leader's new index.
    const others = cluster.nodes.map((n) => n.id).filter((id) => id !== follower);
    const faults = async (id: string, body: unknown) =>
      expect((await http('PUT', `${cluster.node(id).url}/v1/test/faults`, body)).status).toBe(200);
    await faults(follower, { dropTo: others, dropFrom: others });
    for (const id of others) await faults(id, { dropTo: [follower], dropFrom: [follower] });
    try {
      await http('PUT', `${curl(leader)}/v1/agent/service/register`, {
        Name: 'orders',
        ID: 'o2',
        Address: '10.4.0.2',
        Port: 7000,
      });
      const onLeader = await http('GET', `${curl(leader)}/v1/health/service/orders`);
      const newIndex = Number(onLeader.headers.get('x-consul-index'));
      const behind = await http('GET', `${at}/v1/health/service/orders?stale`);
      expect(Number(behind.headers.get('x-consul-index'))).toBeLessThan(newIndex);
      // Blocking on the index minus one: the follower must not answer with its older state.
      const t0 = Date.now();
      const parked = http(
        'GET',
        `${at}/v1/health/service/orders?stale&index=${newIndex - 1}&wait=30s`,
        undefined,
        {},
        40_000,
      );
      await new Promise((r) => setTimeout(r, 1000));
      for (const id of cluster.nodes.map((n) => n.id)) await faults(id, {});
      const r = await parked;
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      expect(Number(r.headers.get('x-consul-index'))).toBeGreaterThanOrEqual(newIndex);
      expect((r.body as Entry[]).map((e) => e.Service.ID)).toEqual(['o1', 'o2']);
    } finally {
      for (const id of cluster.nodes.map((n) => n.id))
        await http('PUT', `${cluster.node(id).url}/v1/test/faults`, {}).catch(() => undefined);
    }
  });

  it.skipIf(!existsSync(PROMETHEUS))(
    'real Prometheus discovers instances through http_sd_configs (GET /v1/sd/prometheus), new ones too',
    async () => {
      const native = cluster.node(followers[0]!).url;
      await http('PUT', `${cluster.node(leader).url}/v1/namespaces/sd/services/orders/instances/o1`, {
        address: '10.9.0.1',
        port: 9100,
        cluster: 'vip',
        tags: ['b', 'a'],
        metadata: { zone: 'eu-1', 'team.name': 'pay' },
      });
      await http('PUT', `${curl(leader)}/v1/agent/service/register?ns=sd`, {
        Name: 'web',
        ID: 'w1',
        Address: '10.9.0.2',
        Port: 8080,
        Tags: ['x'],
      });
      const dir = mkdtempSync(path.join(tmpdir(), 'rollcall-prometheus-'));
      const port = await freePort();
      writeFileSync(
        path.join(dir, 'prometheus.yml'),
        `global:\n  scrape_interval: 1h\nscrape_configs:\n  - job_name: rollcall\n    http_sd_configs:\n      - url: ${native}/v1/sd/prometheus?namespace=sd\n        refresh_interval: 1s\n`,
      );
      let prom: ChildProcess | null = spawn(
        PROMETHEUS,
        [
          `--config.file=${path.join(dir, 'prometheus.yml')}`,
          `--storage.tsdb.path=${path.join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
        ],
        { stdio: 'ignore' },
      );
      type Target = { discoveredLabels: Record<string, string> };
      const targets = async (): Promise<Target[]> =>
        (
          (await http('GET', `http://127.0.0.1:${port}/api/v1/targets`, undefined, {}, 2000)).body as {
            data: { activeTargets: Target[] };
          }
        ).data.activeTargets;
      try {
        const found = await waitFor(
          'Prometheus to discover two targets',
          async () => ((await targets()).length === 2 ? targets() : undefined),
          40_000,
          500,
        );
        const byAddress = Object.fromEntries(found.map((t) => [t.discoveredLabels['__address__'], t.discoveredLabels]));
        expect(byAddress['10.9.0.1:9100']).toMatchObject({
          __meta_rollcall_namespace: 'sd',
          __meta_rollcall_service: 'orders',
          __meta_rollcall_cluster: 'vip',
          __meta_rollcall_instance: 'o1',
          __meta_rollcall_health: 'healthy',
          __meta_rollcall_tags: ',a,b,',
          __meta_rollcall_metadata_zone: 'eu-1',
          __meta_rollcall_metadata_team_name: 'pay',
        });
        // Registered through the Consul API: seen by the native adapter too.
        expect(byAddress['10.9.0.2:8080']).toMatchObject({
          __meta_rollcall_service: 'web',
          __meta_rollcall_instance: 'w1',
          __meta_rollcall_tags: ',x,',
        });
        await http('PUT', `${cluster.node(leader).url}/v1/namespaces/sd/services/orders/instances/o2`, {
          address: '10.9.0.3',
          port: 9100,
        });
        await waitFor(
          'Prometheus to discover the new instance',
          async () => (await targets()).some((t) => t.discoveredLabels['__address__'] === '10.9.0.3:9100'),
          30_000,
          500,
        );
      } finally {
        const p = prom;
        prom = null;
        if (p !== null && p.exitCode === null) {
          const exited = new Promise((r) => p.once('exit', r));
          p.kill('SIGTERM');
          await exited;
        }
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it('refuses what it does not serve, in plain text with Consul status codes', async () => {
    const at = curl(leader);
    const kv = await fetch(`${at}/v1/kv/some/key`);
    expect(kv.status).toBe(404);
    expect(kv.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await kv.text()).toMatch(/^Rollcall does not serve the KV store/);
    for (const path of ['/v1/session/create', '/v1/acl/tokens', '/v1/connect/ca/roots', '/v1/query']) {
      const r = await fetch(`${at}${path}`, { method: path === '/v1/session/create' ? 'PUT' : 'GET' });
      expect(r.status).toBe(404);
      expect(await r.text()).toMatch(/^Rollcall does not serve /);
    }
    const wrong = await fetch(`${at}/v1/agent/check/pass/service:x`, { method: 'GET' });
    expect(wrong.status).toBe(405);
    expect(wrong.headers.get('allow')).toBe('PUT');
    const http1 = await fetch(`${at}/v1/agent/service/register`, {
      method: 'PUT',
      body: JSON.stringify({ Name: 'x', Port: 1, Check: { HTTP: 'http://x/', Interval: '10s' } }),
    });
    expect(http1.status).toBe(400);
    expect(await http1.text()).toBe('Check.HTTP: Rollcall runs no such checks; use a TTL check');
    await expect(
      register(client(leader), { name: 'x', port: 1, check: { http: 'http://x/', interval: '10s' } }),
    ).rejects.toThrow('Check.HTTP: Rollcall runs no such checks; use a TTL check');
    const badWait = await fetch(`${at}/v1/health/service/x?index=1&wait=10`);
    expect(badWait.status).toBe(400);
    expect(await badWait.text()).toBe('Invalid wait time');
    const dc = await fetch(`${at}/v1/catalog/services?dc=elsewhere`);
    expect(dc.status).toBe(500);
    expect(await dc.text()).toBe('No path to datacenter');
  });
});
