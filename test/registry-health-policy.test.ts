/**
 * The replicated health policy in the registry state machine: setHealthPolicy validated
 * with parseHealthPolicy (a bad document is refused naming the field and changes nothing),
 * stored canonically with the revision that stored it, compare-and-set on that revision,
 * persisted and reloaded like the access rules.
 */
import { describe, expect, it } from 'vitest';
import { encode } from '../src/codec/index.js';
import type { HealthPolicy } from '../src/health/index.js';
import { resolvePolicy } from '../src/health/index.js';
import { CorruptStateError, parseCommand, Registry } from '../src/registry/index.js';
import { inst, Log, MemorySm, ok } from './registry-helpers.js';

const raw = (o: Record<string, unknown>): Record<string, unknown> => o;

const POLICY: HealthPolicy = {
  services: { 'prod/orders': { health: { successRatio: { subhealthy: { enter: 0.99, exit: 0.995 } } } } },
  defaults: { alerts: { minHealthy: 2 } },
};

/** Everything replicated except the applied index and term, which every entry advances. */
const replicated = (r: Registry) => {
  const { appliedIndex: _i, appliedTerm: _t, ...rest } = r.dump();
  return rest;
};

describe('setHealthPolicy', () => {
  it('stores the canonical policy with the revision that stored it, and a second one replaces it whole', async () => {
    const log = await Log.open();
    ok(log.apply(inst('a')).result);
    expect(log.registry.healthPolicy()).toBeNull();
    const r = log.apply({ type: 'setHealthPolicy', policy: POLICY });
    expect(r.result).toEqual({ ok: true, revision: 2, changed: true, version: 2 });
    expect(r.events).toEqual([]); // not an instance change: watches see nothing
    const stored = log.registry.healthPolicy();
    expect(stored).toEqual({ policy: POLICY, revision: 2 });
    // Canonical: the order the admin wrote the keys in is not what is stored.
    expect(Object.keys(stored!.policy)).toEqual(['defaults', 'services']);
    expect(resolvePolicy(stored!.policy, 'prod', 'orders').health.successRatio.subhealthy).toEqual({
      enter: 0.99,
      exit: 0.995,
    });

    const next: HealthPolicy = { namespaces: { test: { health: { minDwellMs: 0 } } } };
    expect(log.apply({ type: 'setHealthPolicy', policy: next }).result).toEqual({
      ok: true,
      revision: 3,
      changed: true,
      version: 3,
    });
    expect(log.registry.healthPolicy()).toEqual({ policy: next, revision: 3 });
  });

  it('the same document sent again changes nothing and answers with the revision that stored it', async () => {
    const log = await Log.open();
    ok(log.apply({ type: 'setHealthPolicy', policy: POLICY }).result);
    ok(log.apply(inst('a')).result);
    const again = log.apply({ type: 'setHealthPolicy', policy: JSON.parse(JSON.stringify(POLICY)) as HealthPolicy });
    expect(again.result).toEqual({ ok: true, revision: 2, changed: false, version: 1 });
    expect(again.ops.map((o) => o.key)).toEqual(['\u0000meta/applied']);
  });

  it('refuses a bad policy with INVALID_ARGUMENT naming the field, changing nothing', async () => {
    const log = await Log.open();
    ok(log.apply({ type: 'setHealthPolicy', policy: POLICY }).result);
    const before = replicated(log.registry);
    const cases: [unknown, string][] = [
      [undefined, 'policy'],
      [[], 'policy'],
      [{ defaults: { health: { cpuUsage: {} } } }, 'policy.defaults.health.cpuUsage'],
      [
        { defaults: { health: { cpu: { subhealthy: { enter: 1.5, exit: 0.8 } } } } },
        'policy.defaults.health.cpu.subhealthy.enter',
      ],
      [
        { services: { 'prod/orders': { health: { successRatio: { subhealthy: { enter: 0.9, exit: 0.8 } } } } } },
        'policy.services.prod/orders.health.successRatio.subhealthy',
      ],
      [{ services: { orders: {} } }, 'policy.services.orders'],
      [{ cluster: { lag: 1 } }, 'policy.cluster.lag'],
    ];
    for (const [policy, field] of cases) {
      const r = log.apply(raw({ type: 'setHealthPolicy', policy }));
      expect(r.result, field).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT', field });
      expect(
        r.ops.map((o) => o.key),
        field,
      ).toEqual(['\u0000meta/applied']);
      // The API layer refuses it the same way before proposing.
      expect(parseCommand({ type: 'setHealthPolicy', policy }), field).toMatchObject({
        ok: false,
        code: 'INVALID_ARGUMENT',
        field,
      });
    }
    for (const expectedRevision of [-1, 1.5, '1']) {
      expect(log.apply(raw({ type: 'setHealthPolicy', policy: {}, expectedRevision })).result).toMatchObject({
        code: 'INVALID_ARGUMENT',
        field: 'expectedRevision',
      });
    }
    expect(replicated(log.registry)).toEqual(before);
  });

  it('compare-and-set: expectedRevision must name the stored policy revision (0: none stored)', async () => {
    const log = await Log.open();
    expect(log.apply({ type: 'setHealthPolicy', policy: POLICY, expectedRevision: 5 }).result).toEqual({
      ok: false,
      code: 'VERSION_MISMATCH',
      message: 'expected policy revision 5, but no policy is stored',
      field: 'expectedRevision',
      currentVersion: 0,
    });
    expect(log.registry.revision).toBe(0);
    expect(log.apply({ type: 'setHealthPolicy', policy: POLICY, expectedRevision: 0 }).result).toMatchObject({
      ok: true,
      revision: 1,
      version: 1,
    });
    ok(log.apply(inst('a')).result); // revision 2: other changes do not move the policy's revision
    const before = replicated(log.registry);
    const stale = log.apply({ type: 'setHealthPolicy', policy: {}, expectedRevision: 0 });
    expect(stale.result).toMatchObject({ ok: false, code: 'VERSION_MISMATCH', currentVersion: 1 });
    expect(replicated(log.registry)).toEqual(before);
    expect(log.apply({ type: 'setHealthPolicy', policy: {}, expectedRevision: 1 }).result).toEqual({
      ok: true,
      revision: 3,
      changed: true,
      version: 3,
    });
    expect(log.registry.healthPolicy()).toEqual({ policy: {}, revision: 3 });
  });

  it('a retry with the same client id and seq applies once', async () => {
    const log = await Log.open();
    const cmd = {
      type: 'setHealthPolicy',
      policy: POLICY,
      expectedRevision: 0,
      client: { id: 'admin', seq: 1 },
    } as const;
    const first = log.apply(cmd).result;
    expect(first).toMatchObject({ ok: true, revision: 1 });
    // Without dedup the CAS would now fail; the retry gets the first answer instead.
    expect(log.apply(cmd).result).toEqual(first);
  });

  it('is persisted with the revision that stored it and reloaded on restart', async () => {
    const log = await Log.open();
    ok(log.apply(inst('a')).result);
    ok(log.apply({ type: 'setHealthPolicy', policy: POLICY }).result);
    const reopened = await log.reopen();
    expect(reopened.healthPolicy()).toEqual({ policy: POLICY, revision: 2 });
    expect(reopened.dump()).toEqual(log.registry.dump());
    // A snapshot is the state machine's keys: a replica that installs them has the policy too.
    const copy = new MemorySm();
    for (const [k, v] of log.sm.data) copy.data.set(k, v);
    expect((await Registry.open(copy)).healthPolicy()).toEqual({ policy: POLICY, revision: 2 });
    // And reload() (after a snapshot install) swaps it in.
    const other = await Log.open();
    expect(other.registry.healthPolicy()).toBeNull();
    for (const [k, v] of log.sm.data) other.sm.data.set(k, v);
    await other.registry.reload();
    expect(other.registry.healthPolicy()).toEqual({ policy: POLICY, revision: 2 });
  });

  it('refuses to load a stored policy that no longer parses (a replica must not run on half of it)', async () => {
    const sm = new MemorySm();
    sm.data.set('r/health-policy', encode({ policy: { defaults: { health: { cpu: 1 } } }, revision: 3 }));
    await expect(Registry.open(sm)).rejects.toBeInstanceOf(CorruptStateError);
  });
});
