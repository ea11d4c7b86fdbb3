/**
 * Issue 22's rule for the Consul API: no request of any size holds the event loop for long.
 * The Consul listings built their whole answer (and fastify encoded it) in one turn: with
 * 20,000 instances, 150-700 ms of CPU in one turn per request. Now they are written in
 * slices from one revision (src/consul/listing.ts). Measured in process while real HTTP
 * requests read the answers, over a real Registry (InMemoryNodeApi: no Raft, which is not what is
 * measured).
 *
 * What is asserted is the CPU time of the longest event-loop turn (process.cpuUsage between
 * consecutive setImmediate ticks): what this process held the loop for. A perf_hooks delay
 * monitor is printed beside it; its wall-clock figures also count the time a shared 2-core
 * machine gives other processes (under load it reads 100 ms where the turn used 20 ms of CPU).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildConsulApp, type ConsulApp } from '../src/consul/index.js';
import { catalogServicesWriter } from '../src/consul/listing.js';
import { silentLogger } from '../src/log/index.js';
import { targetGroup } from '../src/sd/prometheus.js';
import { buildApp } from '../src/server/app.js';
import { InstanceIndex } from '../src/server/listing/instance-index.js';
import { RevisionView } from '../src/server/listing/revision-view.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

const INSTANCES = 20_000;
const MAX_TURN_CPU_MS = 50;

/** Runs `work` while measuring event-loop turns: the most CPU one took, and the perf_hooks delay monitor's max and p99 (wall clock). */
async function measureTurns<T>(
  work: () => Promise<T>,
): Promise<{ result: T; turnCpuMs: number; delayMaxMs: number; delayP99Ms: number }> {
  const delay = monitorEventLoopDelay({ resolution: 5 });
  let turnCpuMs = 0;
  let last = process.cpuUsage();
  let running = true;
  const tick = (): void => {
    const now = process.cpuUsage();
    turnCpuMs = Math.max(turnCpuMs, (now.user + now.system - last.user - last.system) / 1000);
    last = now;
    if (running) setImmediate(tick);
  };
  delay.enable();
  setImmediate(tick);
  try {
    const result = await work();
    return { result, turnCpuMs, delayMaxMs: delay.max / 1e6, delayP99Ms: delay.percentile(99) / 1e6 };
  } finally {
    running = false;
    delay.disable();
  }
}

/**
 * measureTurns, repeated (up to 3 times) while the longest turn is over the bound. process.cpuUsage
 * counts every thread of the process, so a concurrent GC phase on V8's helper threads, slowed on a
 * loaded 2-core machine, can land in one turn now and then; an answer built in one turn (the bug this
 * guards against, 150-700 ms) is over the bound every time.
 */
async function bestOfTurns<T>(work: () => Promise<T>): Promise<Awaited<ReturnType<typeof measureTurns<T>>>> {
  let best = await measureTurns(work);
  for (let attempt = 1; attempt < 3 && best.turnCpuMs >= MAX_TURN_CPU_MS; attempt++) {
    const again = await measureTurns(work);
    if (again.turnCpuMs < best.turnCpuMs) best = again;
  }
  return best;
}

/** GETs `path`, the body kept as bytes until the caller parses it (after the measurement). */
function get(
  base: string,
  path: string,
  onHeaders?: () => void,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    http
      .get(`${base}${path}`, (res) => {
        onHeaders?.();
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
        );
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

describe('Consul listings of a large service', () => {
  let node: InMemoryNodeApi;
  let consul: ConsulApp;
  let base: string;

  beforeAll(async () => {
    node = await InMemoryNodeApi.create();
    for (let k = 0; k < INSTANCES; k++) {
      const metadata: Record<string, string> = { zone: `zone-${k % 4}`, version: '1.4.2' };
      for (let l = 0; l < 6; l++) metadata[`label-${l}`] = `value-${l}-${k % 97}`;
      const r = node.apply({
        type: 'register',
        namespace: 'default',
        service: 'big',
        id: `big-${k}`,
        address: `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`,
        port: 8000 + (k % 1000),
        tags: k % 2 === 0 ? ['even', 'v1'] : ['odd', 'v1'],
        metadata,
      });
      if (!r.result.ok) throw new Error(r.result.message);
    }
    node.apply({
      type: 'register',
      namespace: 'default',
      service: 'small',
      id: 's1',
      address: '10.9.0.1',
      port: 80,
      tags: ['x'],
    });
    node.apply({ type: 'setHealth', term: 1, namespace: 'default', service: 'big', id: 'big-7', health: 'down' });
    consul = buildConsulApp({ node, logger: silentLogger() });
    await consul.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(consul.app.server.address() as AddressInfo).port}`;
  }, 60_000);
  afterAll(async () => {
    await consul?.app.close();
  });

  it('every listing answers the whole registry while no event-loop turn takes over 50 ms', async () => {
    const paths = [
      '/v1/health/service/big',
      '/v1/health/service/big?passing',
      '/v1/catalog/service/big?tag=even',
      '/v1/health/checks/big',
      '/v1/health/state/any',
      '/v1/catalog/nodes',
      '/v1/catalog/services',
      '/v1/agent/services',
      '/v1/agent/checks',
    ];
    // Warm up (JIT, the index) outside the measurement.
    await get(base, '/v1/health/service/small');
    // One request at a time, its body parsed (and its bytes dropped) outside the measurement.
    const statuses: number[] = [];
    const bodies: unknown[] = [];
    const figures: string[] = [];
    let turnCpuMs = 0;
    for (const path of paths) {
      const measured = await bestOfTurns(() => get(base, path));
      statuses.push(measured.result.status);
      bodies.push(JSON.parse(measured.result.body.toString('utf8')));
      turnCpuMs = Math.max(turnCpuMs, measured.turnCpuMs);
      figures.push(
        `${path}: ${measured.turnCpuMs.toFixed(1)} ms CPU, delay max ${measured.delayMaxMs.toFixed(1)} ms p99 ${measured.delayP99Ms.toFixed(1)} ms`,
      );
    }
    console.log(
      `Consul listings of ${INSTANCES} instances, longest event-loop turn (CPU) and event-loop delay (wall clock):\n  ${figures.join('\n  ')}`,
    );
    expect(statuses).toEqual(paths.map(() => 200));

    const [health, passing, even, checks, any, nodes, services, agentServices, agentChecks] = bodies as [
      { Service: { ID: string } }[],
      unknown[],
      { ServiceTags: string[] }[],
      unknown[],
      unknown[],
      unknown[],
      Record<string, string[]>,
      Record<string, unknown>,
      Record<string, unknown>,
    ];
    expect(health).toHaveLength(INSTANCES);
    // In index order (cluster, then id), as the registry lists them.
    expect(health.slice(0, 3).map((e) => e.Service.ID)).toEqual(['big-0', 'big-1', 'big-10']);
    expect(passing).toHaveLength(INSTANCES - 1);
    expect(even).toHaveLength(INSTANCES / 2);
    expect(even.every((e) => e.ServiceTags.includes('even'))).toBe(true);
    expect(checks).toHaveLength(INSTANCES);
    expect(any).toHaveLength(INSTANCES + 1);
    expect(nodes).toHaveLength(INSTANCES + 1);
    expect(services).toEqual({ big: ['even', 'odd', 'v1'], small: ['x'] });
    expect(Object.keys(agentServices)).toHaveLength(INSTANCES + 1);
    expect(Object.keys(agentChecks)).toHaveLength(INSTANCES + 1);
    expect(turnCpuMs).toBeLessThan(MAX_TURN_CPU_MS);
  }, 60_000);

  it('Prometheus SD (native app) answers every instance, byte for byte as built whole, while no event-loop turn takes over 50 ms', async () => {
    const native = buildApp({ logger: silentLogger(), node, tokens: null });
    try {
      await native.listen({ host: '127.0.0.1', port: 0 });
      const nativeBase = `http://127.0.0.1:${(native.server.address() as AddressInfo).port}`;
      await get(nativeBase, '/v1/sd/prometheus?service=small');
      const measured = await bestOfTurns(() => get(nativeBase, '/v1/sd/prometheus'));
      console.log(
        `Prometheus SD of ${INSTANCES} instances: longest turn ${measured.turnCpuMs.toFixed(1)} ms CPU, delay max ${measured.delayMaxMs.toFixed(1)} ms`,
      );
      expect(measured.result.status).toBe(200);
      // What the answer was when built whole: every enabled instance by (namespace, service, cluster, id).
      const whole = node.registry
        .listServices()
        .flatMap((s) => node.registry.listInstances(s.namespace, s.service).instances.map(targetGroup));
      expect(whole).toHaveLength(INSTANCES + 1);
      expect(measured.result.body.toString('utf8')).toBe(JSON.stringify(whole));
      expect(measured.turnCpuMs).toBeLessThan(MAX_TURN_CPU_MS);
    } finally {
      await native.close();
    }
  }, 60_000);

  it('an answer written over many turns is read at one revision, whatever changes meanwhile', async () => {
    let changed = false;
    // Once the answer has started, change the service: remove an instance and add a tag.
    const listing = get(base, '/v1/health/service/big', () => {
      setImmediate(() => {
        node.apply({ type: 'unregister', namespace: 'default', service: 'big', id: 'big-19999' });
        node.apply({
          type: 'register',
          namespace: 'default',
          service: 'big',
          id: 'big-new',
          address: '10.8.0.1',
          port: 80,
          tags: ['late'],
        });
        changed = true;
      });
    });
    const answer = await listing;
    expect(changed).toBe(true);
    const ids = (JSON.parse(answer.body.toString('utf8')) as { Service: { ID: string } }[]).map((e) => e.Service.ID);
    expect(ids).toHaveLength(INSTANCES);
    expect(ids).toContain('big-19999');
    expect(ids).not.toContain('big-new');
    const after = (
      JSON.parse((await get(base, '/v1/health/service/big')).body.toString('utf8')) as { Service: { ID: string } }[]
    ).map((e) => e.Service.ID);
    expect(after).toHaveLength(INSTANCES);
    expect(after).toContain('big-new');
    expect(after).not.toContain('big-19999');
  }, 60_000);

  it("catalog/services written from a revision a service has changed since reads that service's tags at the revision", async () => {
    const index = InstanceIndex.acquire(node.registry);
    const view = RevisionView.current(index);
    try {
      const before = await get(base, '/v1/catalog/services');
      node.apply({
        type: 'register',
        namespace: 'default',
        service: 'big',
        id: 'big-newer',
        address: '10.8.0.2',
        port: 80,
        tags: ['later'],
      });
      node.apply({ type: 'unregister', namespace: 'default', service: 'small', id: 's1' });
      node.apply({ type: 'register', namespace: 'default', service: 'fresh', id: 'f1', address: '10.8.0.3', port: 80 });
      const writer = catalogServicesWriter(view, 'default', consul.feed.catalog);
      let text = '';
      let slices = 0;
      for (let done = false; !done; slices++) {
        const slice = writer(performance.now() + 0.2);
        text += slice.text;
        done = slice.done;
      }
      expect(JSON.parse(text)).toEqual(JSON.parse(before.body.toString('utf8')));
      // The changed service was walked at the view's revision, in several slices.
      expect(slices).toBeGreaterThan(1);
      expect(JSON.parse((await get(base, '/v1/catalog/services')).body.toString('utf8'))).toMatchObject({
        big: ['even', 'late', 'later', 'odd', 'v1'],
        fresh: [],
      });
    } finally {
      view.close();
      index.release();
    }
  }, 60_000);
});
