/**
 * Tokens limited to service prefixes on the Consul API of a real node (`rollcall server
 * --acl`, real LevelDB, the real npm `consul` client): a route that names one service in
 * scope answers (reads, registration, its TTL check, deregistration); one out of scope is
 * Consul's 403 `Permission denied: ...`; listings (catalog services, agent services and
 * checks, health by state) show only the services in scope; a route that cannot be scoped to
 * services (the node catalog) stays refused.
 */
import Consul from 'consul';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, LocalCluster } from '../scripts/local-cluster.js';
import { bootstrapWhenReady, http } from './helpers/http.js';

/** The client's types want Name and Timeout on every check; Consul (and the client) need neither for a TTL check. */
const register = (c: Consul, definition: object): Promise<unknown> => c.agent.service.register(definition as never);

/** How the client's call failed: its HTTP status and the plain-text body Consul answers with (the client's message is only the status's name). */
async function refusal(call: () => Promise<unknown>): Promise<{ status: number | undefined; message: string }> {
  try {
    await call();
  } catch (err) {
    const e = err as { statusCode?: number; response?: { body?: unknown } };
    return { status: e.statusCode, message: String(e.response?.body) };
  }
  return { status: 200, message: 'not refused' };
}

describe('service-prefix tokens on the Consul API of a real --acl node', () => {
  let cluster: LocalCluster;
  let consulPort: number;
  let admin: Consul;
  let webWriter: Consul;
  let webReader: Consul;
  const clients: Consul[] = [];
  const as = (token: string): Consul => {
    const c = new Consul({ host: '127.0.0.1', port: consulPort, defaults: { token } });
    clients.push(c);
    return c;
  };
  let readerSecret = '';
  const raw = (path: string, token: string) =>
    fetch(`http://127.0.0.1:${consulPort}${path}`, { headers: { 'x-consul-token': token } });

  beforeAll(async () => {
    consulPort = await freePort();
    cluster = await LocalCluster.start({
      size: 1,
      extraArgs: ['--acl'],
      nodeEnv: () => ({ ROLLCALL_CONSUL_LISTEN: `127.0.0.1:${consulPort}` }),
    });
    const url = cluster.node('n1').url;
    const boot = await bootstrapWhenReady(url);
    expect(boot.status).toBe(201);
    const bearer = { authorization: `Bearer ${boot.body.secret}` };
    const token = async (body: object): Promise<string> => {
      const r = await http('POST', `${url}/v1/acl/tokens`, body, bearer);
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body.secret as string;
    };
    admin = as(boot.body.secret as string);
    webWriter = as(await token({ name: 'web-writer', role: 'register', servicePrefixes: ['web-'] }));
    readerSecret = await token({ name: 'web-reader', role: 'read', servicePrefixes: ['web-'] });
    webReader = as(readerSecret);
    await register(admin, { name: 'api', id: 'api-1', address: '10.0.0.9', port: 80, check: { ttl: '60s' } });
    await admin.agent.check.pass('service:api-1');
  }, 90_000);
  afterAll(async () => {
    for (const c of clients) c.destroy();
    await cluster?.close();
  });

  it('a register token registers, passes and deregisters its services, and is refused the others', async () => {
    await register(webWriter, { name: 'web-a', id: 'web-a-1', address: '10.0.0.1', port: 80, check: { ttl: '60s' } });
    await webWriter.agent.check.pass('service:web-a-1');
    await register(webWriter, { name: 'web-b', id: 'web-b-1', address: '10.0.0.2', port: 80 });
    for (const attempt of [
      () => register(webWriter, { name: 'api', id: 'api-2', address: '10.0.0.8', port: 80 }),
      () => webWriter.agent.service.deregister('api-1'),
    ])
      expect(await refusal(attempt)).toEqual({
        status: 403,
        message: 'Permission denied: token web-writer is limited to services starting with web-, not api',
      });
    // A check is refused by its session, as on the native session routes, naming no other service.
    expect(await refusal(() => webWriter.agent.check.fail('service:api-1'))).toEqual({
      status: 403,
      message:
        'Permission denied: token web-writer is limited to services starting with web-; session consul:default:service:api-1 has instances outside them',
    });
    // Nothing of api changed.
    const api = (await admin.health.service('api')) as { Service: { ID: string }; Checks: { Status: string }[] }[];
    expect(api.map((e) => [e.Service.ID, e.Checks.map((c) => c.Status)])).toEqual([['api-1', ['passing']]]);
    await webWriter.agent.service.deregister('web-b-1');
    expect(await admin.catalog.service.nodes('web-b')).toEqual([]);
  });

  it('a read token reads the routes that name its services, and is refused the others', async () => {
    const entries = (await webReader.health.service('web-a')) as { Service: { ID: string } }[];
    expect(entries.map((e) => e.Service.ID)).toEqual(['web-a-1']);
    expect(
      ((await webReader.catalog.service.nodes('web-a')) as { ServiceID: string }[]).map((n) => n.ServiceID),
    ).toEqual(['web-a-1']);
    expect(((await webReader.health.checks('web-a')) as { CheckID: string }[]).map((c) => c.CheckID)).toEqual([
      'service:web-a-1',
    ]);
    const one = await raw('/v1/agent/service/web-a-1', readerSecret);
    expect([one.status, ((await one.json()) as { ID: string }).ID]).toEqual([200, 'web-a-1']);
    for (const attempt of [
      () => webReader.health.service('api'),
      () => webReader.catalog.service.nodes('api'),
      () => webReader.health.checks('api'),
    ])
      expect(await refusal(attempt)).toEqual({
        status: 403,
        message: 'Permission denied: token web-reader is limited to services starting with web-, not api',
      });
    const other = await raw('/v1/agent/service/api-1', readerSecret);
    expect([other.status, await other.text()]).toEqual([
      403,
      'Permission denied: token web-reader is limited to services starting with web-, not api',
    ]);
  });

  it('listings show only the services in scope; the node catalog stays refused', async () => {
    // The admin token sees both, so what is left out is left out for the scoped token only.
    expect(Object.keys((await admin.catalog.service.list()) as object).sort()).toEqual(['api', 'web-a']);
    expect(await webReader.catalog.service.list()).toEqual({ 'web-a': [] });
    expect(Object.keys((await webReader.agent.service.list()) as object)).toEqual(['web-a-1']);
    expect(Object.keys((await webReader.agent.check.list()) as object)).toEqual(['service:web-a-1']);
    const passing = (await webReader.health.state('any')) as { ServiceName: string }[];
    expect(passing.map((c) => c.ServiceName)).toEqual(['web-a']);
    expect(await refusal(() => webReader.catalog.node.list())).toEqual({
      status: 403,
      message:
        'Permission denied: token web-reader is limited to services starting with web-; use a route that names the service',
    });
  });
});
