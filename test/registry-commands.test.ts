import { describe, expect, it } from 'vitest';
import type { Command } from '../src/registry/index.js';
import { DEFAULT_CLUSTER, DEFAULT_WEIGHT, parseCommand } from '../src/registry/index.js';
import { inst, Log, ok } from './registry-helpers.js';

/** A deliberately unchecked command, for the invalid cases. */
const raw = (o: Record<string, unknown>): Record<string, unknown> => o;
const open = (sessionId: string, ttlMs = 10_000): Command => ({ type: 'openSession', sessionId, ttlMs, now: 1_000 });

describe('register', () => {
  it('creates an instance with defaults, revision 1, version 1 and a put event', async () => {
    const log = await Log.open();
    const { result, events } = log.apply(inst('a'));
    expect(result).toEqual({ ok: true, revision: 1, changed: true, version: 1 });
    const a = log.registry.getInstance('prod', 'orders', 'a');
    expect(a).toEqual({
      id: 'a',
      namespace: 'prod',
      service: 'orders',
      cluster: DEFAULT_CLUSTER,
      address: '10.0.0.1',
      port: 8080,
      weight: DEFAULT_WEIGHT,
      tags: [],
      metadata: {},
      health: 'healthy',
      enabled: true,
      sessionId: null,
      createRevision: 1,
      modRevision: 1,
      version: 1,
    });
    expect(events).toEqual([{ type: 'put', revision: 1, instance: a, cause: 'register' }]);
    expect(Object.isFrozen(a)).toBe(true);
  });

  it('upserts: a change bumps version and revision and the event carries previous; an identical one changes nothing', async () => {
    const log = await Log.open();
    log.apply(inst('a', { tags: ['b', 'a', 'b'], metadata: { z: '1', a: '2' } }));
    const before = log.registry.getInstance('prod', 'orders', 'a');
    expect(before?.tags).toEqual(['a', 'b']);
    expect(Object.keys(before?.metadata ?? {})).toEqual(['a', 'z']);

    const same = log.apply(inst('a', { tags: ['a', 'b'], metadata: { a: '2', z: '1' } }));
    expect(same.result).toEqual({ ok: true, revision: 1, changed: false, version: 1 });
    expect(same.events).toEqual([]);

    const moved = log.apply(inst('a', { port: 9090 }));
    expect(moved.result).toEqual({ ok: true, revision: 2, changed: true, version: 2 });
    const after = log.registry.getInstance('prod', 'orders', 'a');
    expect(after).toMatchObject({ port: 9090, createRevision: 1, modRevision: 2, version: 2, tags: ['a', 'b'] });
    expect(moved.events).toEqual([{ type: 'put', revision: 2, instance: after, previous: before, cause: 'register' }]);
  });

  it('keeps omitted optional fields of an existing instance (admin weight, disabled, cluster)', async () => {
    const log = await Log.open();
    log.apply(inst('a', { cluster: 'vip', weight: 5, enabled: false, metadata: { k: 'v' } }));
    log.apply(inst('a', { port: 1 }));
    expect(log.registry.getInstance('prod', 'orders', 'a')).toMatchObject({
      cluster: 'vip',
      weight: 5,
      enabled: false,
      metadata: { k: 'v' },
      port: 1,
    });
  });

  it('binds an ephemeral instance to an open session, fails on an unknown one', async () => {
    const log = await Log.open();
    const missing = log.apply(inst('a', { sessionId: 's1' }));
    expect(missing.result).toMatchObject({ ok: false, code: 'SESSION_NOT_FOUND', field: 'sessionId' });
    expect(log.registry.revision).toBe(0);

    log.apply(open('s1'));
    expect(ok(log.apply(inst('a', { sessionId: 's1' })).result).changed).toBe(true);
    expect(log.registry.getInstance('prod', 'orders', 'a')?.sessionId).toBe('s1');
    expect(log.registry.sessionInstances('s1').map((i) => i.id)).toEqual(['a']);
  });

  it('moves an ephemeral instance to a new session but refuses to switch persistent <-> ephemeral', async () => {
    const log = await Log.open();
    log.apply(open('s1'));
    log.apply(open('s2'));
    log.apply(inst('e', { sessionId: 's1' }));
    ok(log.apply(inst('e', { sessionId: 's2' })).result);
    expect(log.registry.sessionInstances('s1')).toEqual([]);
    expect(log.registry.sessionInstances('s2').map((i) => i.id)).toEqual(['e']);

    expect(log.apply(inst('e')).result).toMatchObject({ ok: false, code: 'KIND_MISMATCH' });
    log.apply(inst('p'));
    expect(log.apply(inst('p', { sessionId: 's1' })).result).toMatchObject({ ok: false, code: 'KIND_MISMATCH' });
  });

  it('rejects bad fields with INVALID_ARGUMENT naming the field, and non-commands with INVALID_COMMAND', async () => {
    const log = await Log.open();
    const cases: [Record<string, unknown>, string][] = [
      [{ namespace: 'a/b' }, 'namespace'],
      [{ service: '' }, 'service'],
      [{ id: 'x\u0000y' }, 'id'],
      [{ port: 0 }, 'port'],
      [{ port: 1.5 }, 'port'],
      [{ weight: 10_001 }, 'weight'],
      [{ tags: 'a' }, 'tags'],
      [{ metadata: { k: 1 } }, 'metadata.k'],
      [{ enabled: 'yes' }, 'enabled'],
      [{ address: '' }, 'address'],
      [{ sessionId: '' }, 'sessionId'],
    ];
    for (const [extra, field] of cases) {
      expect(log.apply(inst('a', extra)).result, field).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT', field });
    }
    expect(log.apply({ type: 'nope' }).result).toMatchObject({ ok: false, code: 'INVALID_COMMAND' });
    expect(log.apply([1, 2] as unknown as Record<string, unknown>).result).toMatchObject({
      ok: false,
      code: 'INVALID_COMMAND',
    });
    expect(log.registry.revision).toBe(0);
    expect(parseCommand(inst('ok'))).toMatchObject({ ok: true });
  });
});

describe('unregister', () => {
  it('deletes with a delete event; a missing instance changes nothing', async () => {
    const log = await Log.open();
    log.apply(inst('a'));
    const a = log.registry.getInstance('prod', 'orders', 'a');
    const del = log.apply({ type: 'unregister', namespace: 'prod', service: 'orders', id: 'a' });
    expect(del.result).toEqual({ ok: true, revision: 2, changed: true });
    expect(del.events).toEqual([{ type: 'delete', revision: 2, instance: a, cause: 'unregister' }]);
    expect(log.registry.listServices()).toEqual([]);

    const again = log.apply({ type: 'unregister', namespace: 'prod', service: 'orders', id: 'a' });
    expect(again.result).toEqual({ ok: true, revision: 2, changed: false });
    expect(again.events).toEqual([]);
  });

  it('serviceRevision survives the service emptying (blocking queries still see the delete)', async () => {
    const log = await Log.open();
    log.apply(inst('a'));
    expect(log.registry.listInstances('prod', 'orders').serviceRevision).toBe(1);
    log.apply({ ...inst('x'), service: 'other' } as Command);
    log.apply({ type: 'unregister', namespace: 'prod', service: 'orders', id: 'a' });
    const list = log.registry.listInstances('prod', 'orders');
    expect(list).toEqual({ revision: 3, serviceRevision: 3, instances: [] });
    log.apply(inst('b'));
    expect(log.registry.listInstances('prod', 'orders').serviceRevision).toBe(4);
  });
});

describe('update (compare-and-set)', () => {
  it('applies a patch when the version matches', async () => {
    const log = await Log.open();
    log.apply(inst('a', { tags: ['x'], metadata: { a: '1' } }));
    const r = log.apply({
      type: 'update',
      namespace: 'prod',
      service: 'orders',
      id: 'a',
      expectedVersion: 1,
      patch: { weight: 0, enabled: false, metadata: { b: '2' } },
    });
    expect(r.result).toEqual({ ok: true, revision: 2, changed: true, version: 2 });
    expect(log.registry.getInstance('prod', 'orders', 'a')).toMatchObject({
      weight: 0,
      enabled: false,
      metadata: { b: '2' },
      tags: ['x'],
    });
    expect(r.events[0]).toMatchObject({
      type: 'put',
      cause: 'update',
      previous: { version: 1, weight: DEFAULT_WEIGHT },
    });
  });

  it('fails with VERSION_MISMATCH and the current version, changing nothing', async () => {
    const log = await Log.open();
    log.apply(inst('a'));
    log.apply(inst('a', { port: 2 }));
    const r = log.apply({
      type: 'update',
      namespace: 'prod',
      service: 'orders',
      id: 'a',
      expectedVersion: 1,
      patch: { weight: 1 },
    });
    expect(r.result).toMatchObject({
      ok: false,
      code: 'VERSION_MISMATCH',
      currentVersion: 2,
      field: 'expectedVersion',
    });
    expect(log.registry.revision).toBe(2);
    expect(r.ops.map((o) => o.key)).toEqual(['\x00meta/applied']);
  });

  it('fails on a missing instance and on an empty patch', async () => {
    const log = await Log.open();
    expect(
      log.apply({
        type: 'update',
        namespace: 'prod',
        service: 'orders',
        id: 'a',
        expectedVersion: 1,
        patch: { weight: 1 },
      }).result,
    ).toMatchObject({
      code: 'INSTANCE_NOT_FOUND',
    });
    log.apply(inst('a'));
    expect(
      log.apply({ type: 'update', namespace: 'prod', service: 'orders', id: 'a', expectedVersion: 1, patch: {} })
        .result,
    ).toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'patch',
    });
  });
});

describe('sessions', () => {
  it('openSession bumps the revision without an event; a duplicate id fails', async () => {
    const log = await Log.open();
    const r = log.apply(open('s1', 5_000));
    expect(r.result).toEqual({ ok: true, revision: 1, changed: true });
    expect(r.events).toEqual([]);
    expect(log.registry.getSession('s1')).toEqual({
      id: 's1',
      ttlMs: 5_000,
      openedAt: 1_000,
      createRevision: 1,
      suspectSince: null,
    });
    expect(log.apply(open('s1')).result).toMatchObject({ ok: false, code: 'SESSION_EXISTS' });
    expect(log.apply(open('s2', 10)).result).toMatchObject({ ok: false, code: 'INVALID_ARGUMENT', field: 'ttlMs' });
  });

  it('closeSession deletes its ephemeral instances under one revision, leaving persistent ones', async () => {
    const log = await Log.open();
    log.apply(open('s1'));
    log.apply(inst('b', { sessionId: 's1' }));
    log.apply(inst('a', { sessionId: 's1' }));
    log.apply({ ...inst('c', { sessionId: 's1' }), service: 'billing' } as Command);
    log.apply(inst('p'));
    const r = log.apply({ type: 'closeSession', sessionId: 's1' });
    expect(r.result).toEqual({ ok: true, revision: 6, changed: true, count: 3 });
    expect(r.events.map((e) => [e.type, e.revision, e.instance.service, e.instance.id, e.cause])).toEqual([
      ['delete', 6, 'billing', 'c', 'closeSession'],
      ['delete', 6, 'orders', 'a', 'closeSession'],
      ['delete', 6, 'orders', 'b', 'closeSession'],
    ]);
    expect(log.registry.getSession('s1')).toBeUndefined();
    expect(log.registry.listInstances('prod', 'orders').instances.map((i) => i.id)).toEqual(['p']);
    expect(log.apply({ type: 'closeSession', sessionId: 's1' }).result).toMatchObject({ code: 'SESSION_NOT_FOUND' });
  });
});

describe('leader commands', () => {
  it('expire removes the sessions and their instances in one revision; unknown ids are skipped', async () => {
    const log = await Log.open();
    log.apply(open('s1'));
    log.apply(open('s2'));
    log.apply(inst('a', { sessionId: 's1' }));
    log.apply(inst('b', { sessionId: 's2' }));
    const r = log.apply({ type: 'expire', term: 1, sessionIds: ['s2', 'gone', 's1'], now: 50_000 });
    expect(r.result).toEqual({ ok: true, revision: 5, changed: true, count: 2 });
    expect(r.events.map((e) => [e.type, e.instance.id, e.cause])).toEqual([
      ['delete', 'a', 'expire'],
      ['delete', 'b', 'expire'],
    ]);
    expect(log.registry.sessions()).toEqual([]);
    expect(log.apply({ type: 'expire', term: 1, sessionIds: ['s1'], now: 50_000 }).result).toEqual({
      ok: true,
      revision: 5,
      changed: false,
      count: 0,
    });
  });

  it('a stale expire (a higher term was already applied) is rejected and changes nothing', async () => {
    const log = await Log.open();
    log.apply(open('s1'));
    log.apply(inst('a', { sessionId: 's1' }));
    log.applyEntries([{ command: null, term: 2 }]); // the new leader's no-op
    const stale = log.apply({ type: 'expire', term: 1, sessionIds: ['s1'], now: 1 });
    expect(stale.result).toMatchObject({ ok: false, code: 'STALE_TERM', field: 'term' });
    expect(log.registry.getSession('s1')).toBeDefined();
    expect(log.registry.revision).toBe(2);
    expect(ok(log.apply({ type: 'expire', term: 2, sessionIds: ['s1'], now: 1 }).result).changed).toBe(true);
  });

  it('an expiry intent changes nothing: no revision, no event, the session and its instances stay', async () => {
    const log = await Log.open();
    log.apply(open('s1'));
    log.apply(inst('a', { sessionId: 's1' }));
    const r = log.apply({ type: 'expiryIntent', term: 1, sessionIds: ['s1', 'gone'], now: 50_000 });
    expect(r.result).toEqual({ ok: true, revision: 2, changed: false });
    expect(r.events).toEqual([]);
    expect(log.registry.getSession('s1')).toBeDefined();
    expect(log.registry.listInstances('prod', 'orders').instances.map((i) => i.id)).toEqual(['a']);
    // One from a leader already replaced is refused like any stale leader command.
    log.applyEntries([{ command: null, term: 2 }]);
    expect(log.apply({ type: 'expiryIntent', term: 1, sessionIds: ['s1'], now: 1 }).result).toMatchObject({
      ok: false,
      code: 'STALE_TERM',
    });
    expect(
      parseCommand({ type: 'expiryIntent', term: 1, sessionIds: [], now: 1, client: { id: 'c', seq: 1 } }),
    ).toMatchObject({ ok: false, code: 'INVALID_COMMAND' });
  });

  it('an old-term command re-proposed inside a newer entry is stale by the entry term itself', async () => {
    const log = await Log.open();
    log.apply(open('s1'));
    const out = log.applyEntries([{ command: { type: 'expire', term: 1, sessionIds: ['s1'], now: 1 }, term: 3 }]);
    expect(out.results.get(log.index)).toMatchObject({ code: 'STALE_TERM' });
    expect(log.registry.appliedTerm).toBe(3);
  });

  it('markSuspect flags a session and its instances; clearSuspect restores them; both keep the first mark time', async () => {
    const log = await Log.open();
    log.apply(open('s1'));
    log.apply(inst('a', { sessionId: 's1' }));
    log.apply(inst('p'));
    const m = log.apply({ type: 'markSuspect', term: 1, sessionIds: ['s1'], now: 7_000 });
    expect(m.result).toEqual({ ok: true, revision: 4, changed: true, count: 1 });
    expect(m.events).toMatchObject([
      {
        type: 'put',
        cause: 'markSuspect',
        instance: { id: 'a', health: 'suspect', version: 2 },
        previous: { health: 'healthy' },
      },
    ]);
    expect(log.registry.getSession('s1')?.suspectSince).toBe(7_000);
    // still listed, flagged
    expect(log.registry.listInstances('prod', 'orders').instances.map((i) => [i.id, i.health])).toEqual([
      ['a', 'suspect'],
      ['p', 'healthy'],
    ]);
    expect(log.apply({ type: 'markSuspect', term: 1, sessionIds: ['s1'], now: 9_000 }).result).toMatchObject({
      changed: false,
    });
    expect(log.registry.getSession('s1')?.suspectSince).toBe(7_000);

    // a new instance on a held session is born suspect; health checks cannot override it
    log.apply(inst('b', { sessionId: 's1' }));
    expect(log.registry.getInstance('prod', 'orders', 'b')?.health).toBe('suspect');
    expect(
      log.apply({ type: 'setHealth', term: 1, namespace: 'prod', service: 'orders', id: 'a', health: 'healthy' })
        .result,
    ).toMatchObject({
      code: 'INSTANCE_SUSPECT',
    });

    const c = log.apply({ type: 'clearSuspect', term: 1, sessionIds: ['s1'] });
    expect(c.result).toMatchObject({ ok: true, changed: true, count: 2 });
    expect(log.registry.sessionInstances('s1').map((i) => i.health)).toEqual(['healthy', 'healthy']);
    expect(log.registry.getSession('s1')?.suspectSince).toBeNull();
  });

  it('setHealth changes health on a transition only, and refuses suspect', async () => {
    const log = await Log.open();
    log.apply(inst('a'));
    const set = (health: string) =>
      log.apply(raw({ type: 'setHealth', term: 1, namespace: 'prod', service: 'orders', id: 'a', health }));
    expect(set('down').result).toEqual({ ok: true, revision: 2, changed: true, version: 2 });
    expect(set('down').result).toEqual({ ok: true, revision: 2, changed: false, version: 2 });
    expect(set('suspect').result).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'health' });
    expect(
      log.apply({ type: 'setHealth', term: 1, namespace: 'prod', service: 'orders', id: 'zz', health: 'down' }).result,
    ).toMatchObject({
      code: 'INSTANCE_NOT_FOUND',
    });
    expect(
      log.apply(
        raw({
          type: 'setHealth',
          term: 1,
          client: { id: 'c', seq: 1 },
          namespace: 'prod',
          service: 'orders',
          id: 'a',
          health: 'down',
        }),
      ).result,
    ).toMatchObject({
      code: 'INVALID_COMMAND',
    });
  });
});

describe('setCheckHealth', () => {
  const cmd = (o: Record<string, unknown> = {}): Record<string, unknown> => ({
    type: 'setCheckHealth',
    namespace: 'prod',
    service: 'orders',
    id: 'a',
    expectedVersion: 1,
    health: 'subhealthy',
    ...o,
  });

  it('sets health and, when given, the metadata in one change, compare-and-set on the version', async () => {
    const log = await Log.open();
    log.apply(inst('a', { metadata: { zone: 'z1' } }));
    const r = log.apply(cmd({ metadata: { check: 'warning' } }));
    expect(r.result).toEqual({ ok: true, revision: 2, changed: true, version: 2 });
    const a = log.registry.getInstance('prod', 'orders', 'a');
    expect(a).toMatchObject({ health: 'subhealthy', metadata: { check: 'warning' }, version: 2, modRevision: 2 });
    expect(r.events).toEqual([
      {
        type: 'put',
        revision: 2,
        instance: a,
        previous: expect.objectContaining({ health: 'healthy', version: 1 }),
        cause: 'setCheckHealth',
      },
    ]);
    // Without metadata the metadata stays; the same health again is no change.
    expect(log.apply(cmd({ expectedVersion: 2, health: 'down' })).result).toEqual({
      ok: true,
      revision: 3,
      changed: true,
      version: 3,
    });
    expect(log.registry.getInstance('prod', 'orders', 'a')).toMatchObject({
      health: 'down',
      metadata: { check: 'warning' },
    });
    expect(log.apply(cmd({ expectedVersion: 3, health: 'down' })).result).toEqual({
      ok: true,
      revision: 3,
      changed: false,
      version: 3,
    });
    // A stale version changes nothing and says where the instance is.
    expect(log.apply(cmd({ expectedVersion: 2, health: 'healthy' })).result).toMatchObject({
      ok: false,
      code: 'VERSION_MISMATCH',
      currentVersion: 3,
    });
    expect(log.registry.getInstance('prod', 'orders', 'a')?.health).toBe('down');
  });

  it('is a client command: deduplicated by client ref, and validated', async () => {
    const log = await Log.open();
    log.apply(inst('a'));
    const client = { id: 'consul-n1', seq: 1 };
    const first = log.apply(cmd({ client }));
    expect(first.result).toMatchObject({ ok: true, changed: true, version: 2 });
    // The retry answers the first result, even though the version no longer matches.
    expect(log.apply(cmd({ client })).result).toEqual(first.result);
    expect(log.apply(cmd({ health: 'suspect' })).result).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'health' });
    expect(log.apply(cmd({ expectedVersion: undefined })).result).toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'expectedVersion',
    });
    expect(log.apply(cmd({ metadata: { k: 1 } })).result).toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'metadata.k',
    });
    expect(log.apply(cmd({ id: 'zz' })).result).toMatchObject({ code: 'INSTANCE_NOT_FOUND' });
    expect(parseCommand(cmd({ term: 3, metadata: { b: '1', a: '2' } }))).toEqual({
      ok: true,
      command: {
        type: 'setCheckHealth',
        namespace: 'prod',
        service: 'orders',
        id: 'a',
        expectedVersion: 1,
        health: 'subhealthy',
        metadata: { a: '2', b: '1' },
      },
    });
  });

  it('refuses a suspect instance (expiry protection owns it) and metadata the environment label refuses', async () => {
    const log = await Log.open();
    log.apply(open('s1'));
    log.apply(inst('a', { sessionId: 's1' }));
    log.apply({ type: 'markSuspect', term: 1, sessionIds: ['s1'], now: 2_000 });
    const held = log.registry.getInstance('prod', 'orders', 'a')!;
    expect(log.apply(cmd({ expectedVersion: held.version })).result).toMatchObject({ code: 'INSTANCE_SUSPECT' });

    const log2 = await Log.open();
    log2.apply({ type: 'setAccessRules', rules: { environment: 'prod' } });
    log2.apply(inst('a', { metadata: { environment: 'prod' } }));
    expect(log2.apply(cmd({ metadata: { environment: 'test' } })).result).toMatchObject({
      code: 'ENVIRONMENT_MISMATCH',
      field: 'metadata.environment',
    });
    expect(log2.apply(cmd({ metadata: { environment: 'prod', k: 'v' } })).result).toMatchObject({
      ok: true,
      changed: true,
    });
  });
});

describe('access rules, no-ops, conf, reads', () => {
  it('setAccessRules stores the canonical document and bumps the revision only on change (more in registry-access.test.ts)', async () => {
    const log = await Log.open();
    const rules = { allow: [{ cidr: '10.0.0.0/8' }] };
    expect(log.apply({ type: 'setAccessRules', rules }).result).toEqual({
      ok: true,
      revision: 1,
      changed: true,
      version: 1,
    });
    expect(log.registry.accessRules()).toEqual({
      rules: { environment: null, requireEnvironment: false, deny: [], ...rules },
      revision: 1,
    });
    expect(log.apply({ type: 'setAccessRules', rules: { ...rules } }).result).toEqual({
      ok: true,
      revision: 1,
      changed: false,
      version: 1,
    });
    expect(log.apply(raw({ type: 'setAccessRules', rules: { ...rules, version: 1 } })).result).toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'rules.version',
    });
    expect(log.apply(raw({ type: 'setAccessRules', rules: [] })).result).toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'rules',
    });
  });

  it('no-op and conf entries advance the applied index and write the reserved meta keys', async () => {
    const log = await Log.open();
    const conf = { voters: ['n1', 'n2', 'n3'], learners: [] };
    const out = log.applyEntries([{ command: null }, { command: null, conf, term: 2 }]);
    expect(out.results.size).toBe(0);
    expect(log.registry.appliedIndex).toBe(2);
    expect(log.registry.appliedTerm).toBe(2);
    expect(log.registry.conf).toEqual(conf);
    expect(log.registry.revision).toBe(0);
    expect(out.ops.map((o) => o.key)).toEqual(['\x00meta/applied', '\x00meta/conf']);
    // already applied entries are skipped; gaps are refused before anything changes
    expect(log.registry.applyBatch([{ index: 2, term: 2, command: inst('a') }]).ops).toEqual([]);
    expect(() => log.registry.applyBatch([{ index: 4, term: 2, command: inst('a') }])).toThrow(/gap/);
    expect(log.registry.appliedIndex).toBe(2);
  });

  it('lists by service and cluster, hides disabled unless asked, and summarises services', async () => {
    const log = await Log.open();
    log.apply(inst('b', { cluster: 'vip' }));
    log.apply(inst('a'));
    log.apply(inst('c', { cluster: 'vip', enabled: false }));
    log.apply({ ...inst('z'), namespace: 'test' } as Command);
    const ids = (filter?: Parameters<typeof log.registry.listInstances>[2]) =>
      log.registry.listInstances('prod', 'orders', filter).instances.map((i) => i.id);
    expect(ids()).toEqual(['a', 'b']);
    expect(ids({ includeDisabled: true })).toEqual(['a', 'b', 'c']);
    expect(ids({ cluster: 'vip', includeDisabled: true })).toEqual(['b', 'c']);
    expect(ids({ cluster: ['nope'] })).toEqual([]);
    expect(log.registry.listServices()).toEqual([
      { namespace: 'prod', service: 'orders', instanceCount: 3, revision: 3 },
      { namespace: 'test', service: 'orders', instanceCount: 1, revision: 4 },
    ]);
    expect(log.registry.listServices('test').map((s) => s.namespace)).toEqual(['test']);
  });

  it('revision increases by exactly one per changing command and never otherwise', async () => {
    const log = await Log.open();
    const cmds: [Command | Record<string, unknown>, boolean][] = [
      [open('s'), true],
      [inst('a', { sessionId: 's' }), true],
      [inst('a', { sessionId: 's' }), false],
      [{ type: 'unregister', namespace: 'prod', service: 'orders', id: 'x' }, false],
      [
        { type: 'update', namespace: 'prod', service: 'orders', id: 'a', expectedVersion: 9, patch: { weight: 1 } },
        false,
      ],
      [{ type: 'closeSession', sessionId: 's' }, true],
      [{ type: 'bogus' }, false],
    ];
    for (const [cmd, changes] of cmds) {
      const before = log.registry.revision;
      log.apply(cmd);
      expect(log.registry.revision).toBe(changes ? before + 1 : before);
    }
  });
});

describe('the instance each write left (the basis of write answers)', () => {
  it('is the state after that command, even when a later command in the same batch changes it again', async () => {
    const log = await Log.open();
    const first = log.index + 1;
    const out = log.applyEntries([
      { command: inst('a', { weight: 10 }) },
      {
        command: {
          type: 'update',
          namespace: 'prod',
          service: 'orders',
          id: 'a',
          expectedVersion: 1,
          patch: { weight: 20 },
        } as Command,
      },
      { command: { type: 'unregister', namespace: 'prod', service: 'orders', id: 'a' } as Command },
    ]);
    expect(out.instances.get(first)).toMatchObject({ id: 'a', weight: 10, version: 1 });
    expect(out.instances.get(first + 1)).toMatchObject({ id: 'a', weight: 20, version: 2 });
    expect(out.instances.has(first + 2)).toBe(false);
    expect(log.registry.getInstance('prod', 'orders', 'a')).toBeUndefined();
  });

  it('is absent for a retry answered from the deduplication table, whose result is the first one', async () => {
    const log = await Log.open();
    const client = { id: 'c1', seq: 1 };
    const a = log.applyEntries([{ command: { ...inst('a', { weight: 10 }), client } as Command }]);
    const retry = log.applyEntries([{ command: { ...inst('a', { weight: 10 }), client } as Command }]);
    expect(a.instances.get(log.index - 1)).toMatchObject({ weight: 10, version: 1 });
    expect(retry.instances.size).toBe(0);
    expect(retry.results.get(log.index)).toEqual(a.results.get(log.index - 1));
  });
});
