/**
 * The registry holds each instance in one map, its service's (InstanceTable looks keys up
 * through it; by-cluster is a filter): every read must answer as a plain model of the
 * instances does, through registers, moves between clusters, disables and unregisters,
 * and after a reload.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Instance } from '../src/registry/index.js';
import { Registry } from '../src/registry/index.js';
import { inst, Log, seed } from './registry-helpers.js';

const SEED = seed(20_261_204);
const CLUSTERS = ['a', 'default', 'vip'] as const;

const step = fc.oneof(
  fc.record({
    op: fc.constant('register' as const),
    service: fc.constantFrom('orders', 'users'),
    id: fc.constantFrom('i1', 'i2', 'i3', 'i4', 'i5'),
    cluster: fc.constantFrom(...CLUSTERS),
    enabled: fc.boolean(),
  }),
  fc.record({
    op: fc.constant('unregister' as const),
    service: fc.constantFrom('orders', 'users'),
    id: fc.constantFrom('i1', 'i2', 'i3', 'i4', 'i5'),
  }),
);

const byClusterThenId = (a: Instance, b: Instance) =>
  a.cluster < b.cluster ? -1 : a.cluster > b.cluster ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;

describe('instances held once, in their service', () => {
  it('answers every read as a model of the instances does, and again after a reload', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 40 }), async (steps) => {
        const log = await Log.open();
        const model = new Map<string, { service: string; id: string; cluster: string; enabled: boolean }>();
        for (const s of steps) {
          if (s.op === 'register') {
            log.apply(inst(s.id, { service: s.service, cluster: s.cluster, enabled: s.enabled }));
            model.set(`${s.service}/${s.id}`, s);
          } else {
            log.apply({ type: 'unregister', namespace: 'prod', service: s.service, id: s.id });
            model.delete(`${s.service}/${s.id}`);
          }
        }
        const check = (reg: Registry) => {
          for (const service of ['orders', 'users']) {
            const mine = [...model.values()].filter((m) => m.service === service);
            const list = (filter: Parameters<Registry['listInstances']>[2]) =>
              reg.listInstances('prod', service, filter).instances.map((i) => `${i.cluster}/${i.id}`);
            const expected = (keep: (m: (typeof mine)[number]) => boolean) =>
              mine
                .filter(keep)
                .map((m) => ({ cluster: m.cluster, id: m.id }) as Instance)
                .sort(byClusterThenId)
                .map((i) => `${i.cluster}/${i.id}`);
            expect(list({ includeDisabled: true })).toStrictEqual(expected(() => true));
            expect(list({})).toStrictEqual(expected((m) => m.enabled));
            expect(list({ cluster: 'vip' })).toStrictEqual(expected((m) => m.enabled && m.cluster === 'vip'));
            expect(list({ cluster: ['vip', 'a', 'vip'], includeDisabled: true })).toStrictEqual(
              expected((m) => m.cluster !== 'default'),
            );
            expect(reg.serviceSize('prod', service)).toBe(mine.length);
            expect([...reg.eachInstance('prod', service)].map((i) => i.id).sort()).toStrictEqual(
              mine.map((m) => m.id).sort(),
            );
            for (const id of ['i1', 'i2', 'i3', 'i4', 'i5']) {
              const m = model.get(`${service}/${id}`);
              const got = reg.getInstance('prod', service, id);
              expect(got === undefined ? undefined : [got.cluster, got.enabled]).toStrictEqual(
                m === undefined ? undefined : [m.cluster, m.enabled],
              );
            }
          }
          expect(reg.listServices().map((s) => [s.service, s.instanceCount])).toStrictEqual(
            ['orders', 'users']
              .map((service) => [service, [...model.values()].filter((m) => m.service === service).length] as const)
              .filter(([, n]) => n > 0),
          );
          expect(reg.dump().instances.map((i) => `${i.service}/${i.id}`)).toStrictEqual([...model.keys()].sort());
        };
        check(log.registry);
        const reopened = await Registry.open(log.sm);
        check(reopened);
        expect(reopened.dump()).toStrictEqual(log.registry.dump());
      }),
      { seed: SEED, numRuns: 150 },
    );
  });
});
