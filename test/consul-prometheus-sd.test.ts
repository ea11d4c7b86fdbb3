/**
 * Prometheus HTTP service discovery on the native API (GET /v1/sd/prometheus), a route of the
 * native app (buildApp): target groups, labels, filters, order, auth.
 */
import type { FastifyInstance } from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log/index.js';
import { hostPort, sanitizeLabelName, targetGroup } from '../src/sd/prometheus.js';
import { buildApp } from '../src/server/app.js';
import { TokenAuthority } from '../src/server/auth.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

describe('GET /v1/sd/prometheus', () => {
  let app: FastifyInstance | null = null;
  afterEach(async () => {
    await app?.close();
    app = null;
  });

  async function start(tokens: TokenAuthority | null = null): Promise<{ node: InMemoryNodeApi; app: FastifyInstance }> {
    const node = await InMemoryNodeApi.create();
    app = buildApp({ logger: silentLogger(), node, tokens });
    await app.ready();
    return { node, app };
  }
  const reg = (
    node: InMemoryNodeApi,
    namespace: string,
    service: string,
    id: string,
    extra: Record<string, unknown> = {},
  ) => node.apply({ type: 'register', namespace, service, id, address: '10.0.0.1', port: 9100, ...extra } as never);

  it('answers [] when empty, as application/json', async () => {
    const { app } = await start();
    const r = await app.inject({ method: 'GET', url: '/v1/sd/prometheus' });
    expect(r.statusCode).toBe(200);
    expect(r.headers['content-type']).toMatch(/^application\/json/);
    expect(r.json()).toEqual([]);
  });

  it('one group per instance, sorted, with __meta_rollcall_* labels; disabled left out; health and namespace filters', async () => {
    const { node, app } = await start();
    reg(node, 'prod', 'orders', 'o2', {
      cluster: 'vip',
      tags: ['b', 'a'],
      metadata: { zone: 'eu-1', 'team.name': 'pay', 'rollcall.consul': '{}' },
    });
    reg(node, 'prod', 'orders', 'o1', { address: '::1', port: 9200 });
    reg(node, 'prod', 'api', 'a1');
    reg(node, 'test', 'orders', 't1');
    reg(node, 'prod', 'orders', 'o3', { enabled: false });
    node.apply({ type: 'setHealth', term: 1, namespace: 'prod', service: 'api', id: 'a1', health: 'down' });

    const all = (await app.inject({ method: 'GET', url: '/v1/sd/prometheus' })).json() as {
      targets: string[];
      labels: Record<string, string>;
    }[];
    expect(
      all.map(
        (g) =>
          `${g.labels['__meta_rollcall_namespace']}/${g.labels['__meta_rollcall_service']}/${g.labels['__meta_rollcall_instance']}`,
      ),
    ).toEqual(['prod/api/a1', 'prod/orders/o1', 'prod/orders/o2', 'test/orders/t1']);
    const o2 = all[2]!;
    expect(o2).toEqual({
      targets: ['10.0.0.1:9100'],
      labels: {
        __meta_rollcall_namespace: 'prod',
        __meta_rollcall_service: 'orders',
        __meta_rollcall_cluster: 'vip',
        __meta_rollcall_instance: 'o2',
        __meta_rollcall_health: 'healthy',
        __meta_rollcall_tags: ',a,b,',
        __meta_rollcall_metadata_team_name: 'pay',
        __meta_rollcall_metadata_zone: 'eu-1',
      },
    });
    expect(all[1]!.targets).toEqual(['[::1]:9200']);
    expect(all[1]!.labels['__meta_rollcall_tags']).toBe(',,');

    const prodOrders = (
      await app.inject({ method: 'GET', url: '/v1/sd/prometheus?namespace=prod&service=orders' })
    ).json() as unknown[];
    expect(prodOrders).toHaveLength(2);
    const usable = (
      await app.inject({
        method: 'GET',
        url: '/v1/sd/prometheus?namespace=prod&health=usable&consistency=serializable',
      })
    ).json() as { labels: Record<string, string> }[];
    expect(usable.map((g) => g.labels['__meta_rollcall_instance'])).toEqual(['o1', 'o2']);
    expect((await app.inject({ method: 'GET', url: '/v1/sd/prometheus?health=bogus' })).statusCode).toBe(400);
  });

  it('answers byte for byte the same for unchanged instances (encoded once), and anew after each change', async () => {
    const { node, app } = await start();
    reg(node, 'prod', 'orders', 'o1', { tags: ['a'], metadata: { zone: 'eu-1' } });
    reg(node, 'prod', 'orders', 'o2', { metadata: { zone: 'eu-2' } });
    const get = async (url = '/v1/sd/prometheus') => (await app.inject({ method: 'GET', url })).body;
    /** What each group is when encoded afresh from the node's current state. */
    const fresh = async () =>
      JSON.stringify(
        node.registry
          .listInstances('prod', 'orders')
          .instances.filter((i) => i.enabled)
          .map((i) => targetGroup(i)),
      );
    const first = await get();
    expect(first).toBe(await fresh());
    expect(await get()).toBe(first);

    node.apply({ type: 'setHealth', term: 1, namespace: 'prod', service: 'orders', id: 'o1', health: 'down' });
    const afterHealth = await get();
    expect(afterHealth).not.toBe(first);
    expect(afterHealth).toBe(await fresh());
    const groups = JSON.parse(afterHealth) as { labels: Record<string, string> }[];
    expect(groups[0]!.labels['__meta_rollcall_health']).toBe('down');
    // o2 did not change: its group's bytes are the same as before.
    expect(JSON.stringify(groups[1])).toBe(JSON.stringify((JSON.parse(first) as unknown[])[1]));
    expect(await get('/v1/sd/prometheus?health=healthy')).toBe(JSON.stringify([groups[1]]));

    reg(node, 'prod', 'orders', 'o2', { port: 9300, metadata: { zone: 'eu-2' } });
    const afterRegister = await get();
    expect(afterRegister).toBe(await fresh());
    expect((JSON.parse(afterRegister) as { targets: string[] }[])[1]!.targets).toEqual(['10.0.0.1:9300']);
    node.apply({ type: 'unregister', namespace: 'prod', service: 'orders', id: 'o1' } as never);
    expect(await get()).toBe(await fresh());
    expect(JSON.parse(await get())).toHaveLength(1);
  });

  it('needs a read token; a namespace-limited one must name its namespace', async () => {
    const { node, app } = await start(
      TokenAuthority.parse(
        JSON.stringify([
          { token: 'read-token-0123456789', role: 'read' },
          { token: 'prod-token-0123456789', role: 'read', namespaces: ['prod'] },
        ]),
      ),
    );
    reg(node, 'prod', 'orders', 'o1');
    expect((await app.inject({ method: 'GET', url: '/v1/sd/prometheus' })).statusCode).toBe(401);
    expect(
      (
        await app.inject({
          method: 'GET',
          url: '/v1/sd/prometheus',
          headers: { authorization: 'Bearer read-token-0123456789' },
        })
      ).statusCode,
    ).toBe(200);
    expect(
      (
        await app.inject({
          method: 'GET',
          url: '/v1/sd/prometheus',
          headers: { authorization: 'Bearer prod-token-0123456789' },
        })
      ).statusCode,
    ).toBe(403);
    const own = await app.inject({
      method: 'GET',
      url: '/v1/sd/prometheus?namespace=prod',
      headers: { authorization: 'Bearer prod-token-0123456789' },
    });
    expect(own.statusCode).toBe(200);
    expect(own.json()).toHaveLength(1);
  });

  it('sanitizes label names and joins host and port as Go does', () => {
    expect(sanitizeLabelName('team.name-x/y')).toBe('team_name_x_y');
    expect(hostPort('10.0.0.1', 80)).toBe('10.0.0.1:80');
    expect(hostPort('fe80::1', 80)).toBe('[fe80::1]:80');
    expect(hostPort('db.local', 5432)).toBe('db.local:5432');
  });
});
