/**
 * Access rules in the registry state machine: the pure rules module (parse, CIDR v4/v6,
 * deny before allow, environment label), setAccessRules (canonical document, compare-and-set
 * on the rules revision like setHealthPolicy), and register/update judged at apply time
 * against the rules in force at that log position: the check-then-propose race is closed.
 */
import { describe, expect, it } from 'vitest';
import { encode } from '../src/codec/index.js';
import type { AccessRulesDoc } from '../src/registry/index.js';
import {
  CompiledRules,
  META_APPLIED_KEY,
  parseAccessRules,
  parseCommand,
  Registry,
  rulesInForce,
} from '../src/registry/index.js';
import { inst, Log, MemorySm, ok } from './registry-helpers.js';

const raw = (o: Record<string, unknown>): Record<string, unknown> => o;
/** Where the state machine keeps the access rules (persistence.ts). */
const RULES_KEY = 'r/access';

function compiled(doc: Record<string, unknown>): CompiledRules {
  const parsed = parseAccessRules(doc);
  if (!parsed.ok) throw new Error(`${parsed.field}: ${parsed.message}`);
  return new CompiledRules(parsed.value);
}

/** Everything replicated except the applied index and term, which every entry advances. */
const replicated = (r: Registry) => {
  const { appliedIndex: _i, appliedTerm: _t, ...rest } = r.dump();
  return rest;
};

const RULES = {
  environment: 'prod',
  allow: [
    { name: 'prod-net', namespace: 'prod', cidr: '10.0.0.0/8' },
    { namespace: 'prod', service: 'legacy' },
    { cidr: 'fd00::/8' },
  ],
  deny: [{ name: 'quarantine', cidr: '10.66.0.0/16' }, { service: 'banned' }],
};

describe('the rules module', () => {
  it('parses to a canonical document: defaults filled in, fixed key order, frozen', () => {
    const parsed = parseAccessRules({ deny: [{ cidr: '10.0.0.0/8', name: 'x' }], environment: 'prod' });
    expect(parsed).toEqual({
      ok: true,
      value: { environment: 'prod', requireEnvironment: false, allow: [], deny: [{ name: 'x', cidr: '10.0.0.0/8' }] },
    });
    const doc = (parsed as { value: AccessRulesDoc }).value;
    expect(Object.keys(doc)).toEqual(['environment', 'requireEnvironment', 'allow', 'deny']);
    expect(Object.keys(doc.deny[0]!)).toEqual(['name', 'cidr']);
    expect(Object.isFrozen(doc) && Object.isFrozen(doc.deny) && Object.isFrozen(doc.deny[0])).toBe(true);
    expect(parseAccessRules({})).toEqual({
      ok: true,
      value: { environment: null, requireEnvironment: false, allow: [], deny: [] },
    });
  });

  it('refuses what the HTTP schema refuses, and what it cannot, naming the field', () => {
    const bad: [unknown, string][] = [
      [[], 'rules'],
      [{ allow: 'x' }, 'allow'],
      [{ allow: [{ cidr: '10.0.0.0/33' }] }, 'allow.0.cidr'],
      [{ deny: [{}, { cidr: 'example.com' }] }, 'deny.0'],
      [{ deny: [{ namespace: 'prod' }, { cidr: 'example.com' }] }, 'deny.1.cidr'],
      [{ deny: [{ namespace: 'a/b' }] }, 'deny.0.namespace'],
      [{ deny: [{ service: 7 }] }, 'deny.0.service'],
      [{ deny: [{ service: 'x', port: 80 }] }, 'deny.0.port'],
      [{ allow: [{ namespace: 'x', name: 'has space' }] }, 'allow.0.name'],
      [{ environment: 'has space' }, 'environment'],
      [{ requireEnvironment: true }, 'requireEnvironment'],
      [{ requireEnvironment: 'yes', environment: 'prod' }, 'requireEnvironment'],
      [{ version: 1 }, 'version'],
      [{ allow: Array.from({ length: 257 }, () => ({ namespace: 'x' })) }, 'allow'],
    ];
    for (const [doc, field] of bad) expect([doc, parseAccessRules(doc)]).toMatchObject([doc, { ok: false, field }]);
  });

  it('deny wins over allow, an allow list admits only what it matches, * matches any name', () => {
    const rules = compiled(RULES);
    expect(rules.check('prod', 'orders', '10.1.2.3', undefined)).toEqual({ ok: true });
    // 10.66.x is inside the allowed 10/8, but the deny rule comes first.
    expect(rules.check('prod', 'orders', '10.66.0.9', undefined)).toMatchObject({
      ok: false,
      code: 'ACCESS_DENIED',
      rule: 'deny[0] (quarantine)',
    });
    expect(rules.check('prod', 'banned', '10.1.2.3', undefined)).toMatchObject({
      code: 'ACCESS_DENIED',
      rule: 'deny[1]',
    });
    expect(rules.check('prod', 'orders', '192.168.1.1', undefined)).toMatchObject({
      code: 'ACCESS_DENIED',
      rule: 'allow',
    });
    expect(rules.check('test', 'orders', '10.1.2.3', undefined)).toMatchObject({
      code: 'ACCESS_DENIED',
      rule: 'allow',
    });
    expect(rules.check('prod', 'legacy', 'legacy.internal', undefined)).toEqual({ ok: true });
    const star = compiled({ deny: [{ namespace: '*', service: 'x' }] });
    expect(star.check('any', 'x', 'h', undefined)).toMatchObject({ code: 'ACCESS_DENIED', rule: 'deny[0]' });
    expect(star.check('any', 'y', 'h', undefined)).toEqual({ ok: true });
    // No rules at all: everything is admitted.
    expect(compiled({}).check('a', 'b', 'c', { environment: 'whatever' })).toEqual({ ok: true });
  });

  it('cidr: IPv4 and IPv6 ranges, single addresses, brackets and IPv4-mapped IPv6; a host name never matches', () => {
    const v4 = compiled({ deny: [{ cidr: '10.0.0.0/8' }, { cidr: '192.168.1.7' }] });
    expect(v4.check('n', 's', '10.255.255.255', undefined).ok).toBe(false);
    expect(v4.check('n', 's', '11.0.0.0', undefined).ok).toBe(true);
    expect(v4.check('n', 's', '192.168.1.7', undefined).ok).toBe(false);
    expect(v4.check('n', 's', '192.168.1.8', undefined).ok).toBe(true);
    expect(v4.check('n', 's', '::ffff:10.1.2.3', undefined).ok).toBe(false);
    expect(v4.check('n', 's', '10.example.com', undefined).ok).toBe(true);
    const v6 = compiled({ deny: [{ cidr: 'fd00::/8' }] });
    expect(v6.check('n', 's', 'fd12:3456::1', undefined).ok).toBe(false);
    expect(v6.check('n', 's', '[fd12::1]', undefined).ok).toBe(false);
    expect(v6.check('n', 's', 'fe80::1', undefined).ok).toBe(true);
    expect(v6.check('n', 's', '10.0.0.1', undefined).ok).toBe(true);
    // Allow lists: a host name matches no cidr rule, so a cidr-only allow list refuses it.
    const allow = compiled({ allow: [{ cidr: '0.0.0.0/0' }, { cidr: '::/0' }] });
    expect(allow.check('n', 's', '1.2.3.4', undefined).ok).toBe(true);
    expect(allow.check('n', 's', '2001:db8::1', undefined).ok).toBe(true);
    expect(allow.check('n', 's', 'localhost', undefined)).toMatchObject({ code: 'ACCESS_DENIED', rule: 'allow' });
  });

  it('environment label: a different label is refused, a missing one only with requireEnvironment', () => {
    const label = compiled({ environment: 'prod' });
    expect(label.check('n', 's', 'h', { environment: 'prod' })).toEqual({ ok: true });
    expect(label.check('n', 's', 'h', {})).toEqual({ ok: true });
    expect(label.check('n', 's', 'h', undefined)).toEqual({ ok: true });
    expect(label.check('n', 's', 'h', { environment: 'test' })).toMatchObject({
      ok: false,
      code: 'ENVIRONMENT_MISMATCH',
      field: 'metadata.environment',
    });
    const required = compiled({ environment: 'prod', requireEnvironment: true });
    expect(required.check('n', 's', 'h', { zone: 'a' })).toMatchObject({
      code: 'ENVIRONMENT_MISMATCH',
      field: 'metadata.environment',
    });
    expect(required.checkEnvironment(undefined, 'patch.metadata.environment')).toMatchObject({
      field: 'patch.metadata.environment',
    });
    expect(required.check('n', 's', 'h', { environment: 'prod' })).toEqual({ ok: true });
    // No label: the environment is not looked at.
    expect(compiled({ deny: [{ service: 'x' }] }).check('n', 's', 'h', { environment: 'anything' })).toEqual({
      ok: true,
    });
  });

  it('rulesInForce compiles once per stored object and calls an unreadable document invalid', () => {
    const stored = Object.freeze({ rules: { deny: [{ service: 'x' }] }, revision: 3 });
    const a = rulesInForce(stored);
    expect(a).toBeInstanceOf(CompiledRules);
    expect(rulesInForce(stored)).toBe(a);
    expect(rulesInForce(null)).toBeNull();
    expect(rulesInForce(Object.freeze({ rules: { deny: ['10.0.0.0/8'] }, revision: 4 }))).toBe('invalid');
  });
});

describe('setAccessRules', () => {
  it('stores the canonical document with the revision that stored it; the same rules again are no change', async () => {
    const log = await Log.open();
    expect(log.apply({ type: 'setAccessRules', rules: RULES }).result).toEqual({
      ok: true,
      revision: 1,
      changed: true,
      version: 1,
    });
    const stored = log.registry.accessRules();
    expect(stored).toEqual({ rules: { requireEnvironment: false, ...RULES }, revision: 1 });
    // Key order differs, defaults given explicitly: the same canonical document.
    const same = { deny: RULES.deny, allow: RULES.allow, requireEnvironment: false, environment: 'prod' };
    expect(log.apply({ type: 'setAccessRules', rules: same }).result).toEqual({
      ok: true,
      revision: 1,
      changed: false,
      version: 1,
    });
    expect(log.registry.accessRules()).toBe(stored);
    expect(log.apply({ type: 'setAccessRules', rules: {} }).result).toEqual({
      ok: true,
      revision: 2,
      changed: true,
      version: 2,
    });
  });

  it('refuses a bad document naming the field under rules, and changes nothing', async () => {
    const log = await Log.open();
    ok(log.apply({ type: 'setAccessRules', rules: RULES }).result);
    const before = replicated(log.registry);
    expect(
      log.apply(raw({ type: 'setAccessRules', rules: { allow: [{ cidr: '300.0.0.0/8' }] } })).result,
    ).toMatchObject({
      ok: false,
      code: 'INVALID_ARGUMENT',
      field: 'rules.allow.0.cidr',
    });
    expect(log.apply(raw({ type: 'setAccessRules', rules: [] })).result).toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'rules',
    });
    for (const expectedRevision of [-1, 1.5, '1']) {
      expect(log.apply(raw({ type: 'setAccessRules', rules: {}, expectedRevision })).result).toMatchObject({
        code: 'INVALID_ARGUMENT',
        field: 'expectedRevision',
      });
    }
    expect(replicated(log.registry)).toEqual(before);
    expect(
      parseCommand({ type: 'setAccessRules', rules: { deny: [{ namespace: 'x' }] }, expectedRevision: 0 }),
    ).toEqual({
      ok: true,
      command: {
        type: 'setAccessRules',
        rules: { environment: null, requireEnvironment: false, allow: [], deny: [{ namespace: 'x' }] },
        expectedRevision: 0,
      },
    });
  });

  it('compare-and-set: expectedRevision must name the stored rules revision (0: none stored)', async () => {
    const log = await Log.open();
    ok(log.apply(inst('a')).result);
    expect(log.apply({ type: 'setAccessRules', rules: RULES, expectedRevision: 5 }).result).toEqual({
      ok: false,
      code: 'VERSION_MISMATCH',
      message: 'expected access rules revision 5, but no access rules are stored',
      field: 'expectedRevision',
      currentVersion: 0,
    });
    expect(log.registry.accessRules()).toBeNull();
    expect(log.apply({ type: 'setAccessRules', rules: RULES, expectedRevision: 0 }).result).toEqual({
      ok: true,
      revision: 2,
      changed: true,
      version: 2,
    });
    const before = replicated(log.registry);
    // A second admin who also read "none stored" loses.
    expect(log.apply({ type: 'setAccessRules', rules: {}, expectedRevision: 0 }).result).toMatchObject({
      ok: false,
      code: 'VERSION_MISMATCH',
      currentVersion: 2,
    });
    expect(replicated(log.registry)).toEqual(before);
    // The same rules at the right revision: no change, version stays the revision that stored them.
    expect(log.apply({ type: 'setAccessRules', rules: RULES, expectedRevision: 2 }).result).toEqual({
      ok: true,
      revision: 2,
      changed: false,
      version: 2,
    });
    expect(log.apply({ type: 'setAccessRules', rules: {}, expectedRevision: 2 }).result).toEqual({
      ok: true,
      revision: 3,
      changed: true,
      version: 3,
    });
    expect(log.registry.accessRules()).toEqual({
      rules: { environment: null, requireEnvironment: false, allow: [], deny: [] },
      revision: 3,
    });
  });

  it('a CAS retry with the same client id and seq applies once', async () => {
    const log = await Log.open();
    const cmd = { type: 'setAccessRules', rules: RULES, expectedRevision: 0, client: { id: 'admin', seq: 1 } } as const;
    const first = log.apply(cmd).result;
    expect(first).toEqual({ ok: true, revision: 1, changed: true, version: 1 });
    expect(log.apply(cmd).result).toEqual(first);
  });
});

describe('register and update are judged by the rules in force when applied', () => {
  const register = (id: string, extra: Record<string, unknown> = {}) => inst(id, extra);

  it('refuses by deny rule, allow list and environment, naming what refused; a refusal changes nothing but the applied index', async () => {
    const log = await Log.open();
    ok(log.apply({ type: 'setAccessRules', rules: RULES }).result);
    ok(log.apply(register('ok1', { address: '10.1.2.3' })).result);
    const cases: [Record<string, unknown>, Record<string, unknown>][] = [
      [{ address: '10.66.0.9' }, { code: 'ACCESS_DENIED', rule: 'deny[0] (quarantine)' }],
      [{ service: 'banned' }, { code: 'ACCESS_DENIED', rule: 'deny[1]' }],
      [{ address: '192.168.1.1' }, { code: 'ACCESS_DENIED', rule: 'allow' }],
      [{ address: 'orders.internal' }, { code: 'ACCESS_DENIED', rule: 'allow' }],
      [{ namespace: 'test' }, { code: 'ACCESS_DENIED', rule: 'allow' }],
      [{ metadata: { environment: 'test' } }, { code: 'ENVIRONMENT_MISMATCH', field: 'metadata.environment' }],
      // Checked before the session: the order of errors the API always had.
      [{ address: '10.66.0.9', sessionId: 'nope' }, { code: 'ACCESS_DENIED' }],
    ];
    for (const [extra, expected] of cases) {
      const before = replicated(log.registry);
      const index = log.registry.appliedIndex;
      const out = log.apply(register('x', extra));
      expect([extra, out.result]).toMatchObject([extra, { ok: false, ...expected }]);
      expect(out.events).toEqual([]);
      expect(replicated(log.registry)).toEqual(before);
      expect(log.registry.appliedIndex).toBe(index + 1);
      // The only op is the applied index.
      expect(out.ops.map((o) => o.key)).toEqual([META_APPLIED_KEY]);
    }
    expect(ok(log.apply(register('ok2', { address: 'fd00::5' })).result).changed).toBe(true);
    expect(
      ok(
        log.apply(register('ok3', { service: 'legacy', address: 'legacy.internal', metadata: { environment: 'prod' } }))
          .result,
      ).changed,
    ).toBe(true);
  });

  it('the environment is checked on the metadata the instance ends up with, and requireEnvironment', async () => {
    const log = await Log.open();
    ok(log.apply(register('a', { metadata: { environment: 'test' } })).result);
    ok(log.apply(register('b', { metadata: { environment: 'prod' } })).result);
    ok(log.apply({ type: 'setAccessRules', rules: { environment: 'prod', requireEnvironment: true } }).result);
    // New instance without the label: refused.
    expect(log.apply(register('c')).result).toMatchObject({
      code: 'ENVIRONMENT_MISMATCH',
      field: 'metadata.environment',
    });
    // Re-registering without metadata keeps the instance's: a test-labelled one is refused, a prod one admitted.
    expect(log.apply(register('a')).result).toMatchObject({
      code: 'ENVIRONMENT_MISMATCH',
      message: expect.stringContaining('"test"'),
    });
    expect(ok(log.apply(register('b', { port: 9 })).result).changed).toBe(true);
    ok(log.apply(register('c', { metadata: { environment: 'prod' } })).result);
  });

  it('update: a new metadata map is checked against the label; other patches are not', async () => {
    const log = await Log.open();
    const v = ok(log.apply(register('a', { metadata: { environment: 'prod' } })).result).version!;
    ok(log.apply({ type: 'setAccessRules', rules: { environment: 'prod', deny: [{ cidr: '10.0.0.0/8' }] } }).result);
    const before = replicated(log.registry);
    const patch = (p: Record<string, unknown>, expectedVersion = v) =>
      log.apply({ type: 'update', namespace: 'prod', service: 'orders', id: 'a', expectedVersion, patch: p }).result;
    expect(patch({ metadata: { environment: 'dev' } })).toMatchObject({
      ok: false,
      code: 'ENVIRONMENT_MISMATCH',
      field: 'patch.metadata.environment',
    });
    // Checked before the CAS and the lookup, as the API always did.
    expect(patch({ metadata: { environment: 'dev' } }, 99)).toMatchObject({ code: 'ENVIRONMENT_MISMATCH' });
    expect(replicated(log.registry)).toEqual(before);
    // The address is not patchable, so the deny rule on it (which came later) does not stop a weight change.
    expect(ok(patch({ weight: 5 })).changed).toBe(true);
    expect(ok(patch({ metadata: { environment: 'prod', zone: 'a' } }, v + 1)).changed).toBe(true);
    expect(ok(patch({ metadata: { zone: 'b' } }, v + 2)).changed).toBe(true);
  });

  it('the race is closed: a register checked under the old rules, applied after a setAccessRules that denies it, is refused', async () => {
    const log = await Log.open();
    ok(log.apply({ type: 'setAccessRules', rules: { deny: [{ name: 'old', service: 'banned' }] } }).result);
    const cmd = register('late', { address: '10.9.9.9', client: { id: 'deployer', seq: 1 } });
    // Under the rules this node has applied, the register is admitted (what a pre-check before proposing saw) ...
    const seen = rulesInForce(log.registry.accessRules());
    expect(seen !== null && seen !== 'invalid' && seen.check('prod', 'orders', '10.9.9.9', undefined)).toEqual({
      ok: true,
    });
    // ... but a setAccessRules denying it commits first; both land in one batch, in log order.
    const out = log.applyEntries([
      { command: { type: 'setAccessRules', rules: { deny: [{ name: 'lab', cidr: '10.9.0.0/16' }] } } },
      { command: cmd },
    ]);
    const results = [...out.results.values()];
    expect(results[0]).toMatchObject({ ok: true, changed: true });
    expect(results[1]).toEqual({
      ok: false,
      code: 'ACCESS_DENIED',
      message: 'registration of prod/orders at 10.9.9.9 is refused by access rule deny[0] (lab)',
      rule: 'deny[0] (lab)',
    });
    expect(log.registry.getInstance('prod', 'orders', 'late')).toBeUndefined();
    expect(out.events).toEqual([]);
    // The refusal is recorded for exactly-once: a retry gets the same answer, even once the rules allow it.
    ok(log.apply({ type: 'setAccessRules', rules: {} }).result);
    expect(log.apply(cmd).result).toEqual(results[1]);
    expect(log.registry.getInstance('prod', 'orders', 'late')).toBeUndefined();
    // A new request of that client is judged afresh.
    expect(
      ok(log.apply(register('late', { address: '10.9.9.9', client: { id: 'deployer', seq: 2 } })).result).changed,
    ).toBe(true);
    // And in the other order (register first, then the rules), the register stands.
    const other = await Log.open();
    const both = other.applyEntries([
      { command: register('early', { address: '10.9.9.9' }) },
      { command: { type: 'setAccessRules', rules: { deny: [{ cidr: '10.9.0.0/16' }] } } },
    ]);
    expect([...both.results.values()].map((r) => r.ok)).toEqual([true, true]);
    expect(other.registry.getInstance('prod', 'orders', 'early')).toBeDefined();
  });

  it('a refusal is persisted in the dedup table and survives a restart', async () => {
    const log = await Log.open();
    ok(log.apply({ type: 'setAccessRules', rules: { deny: [{ service: 'orders' }] } }).result);
    const cmd = register('a', { client: { id: 'c', seq: 1 } });
    const refused = log.apply(cmd).result;
    expect(refused).toMatchObject({ ok: false, code: 'ACCESS_DENIED', rule: 'deny[0]' });
    const reopened = await log.reopen();
    expect(reopened.dump()).toEqual(log.registry.dump());
    expect(reopened.dump().dedup).toEqual([{ client: 'c', seq: 1, index: 2, result: refused }]);
  });

  it('stored rules this build cannot read refuse registrations alike on every replica (ACCESS_RULES_INVALID)', async () => {
    // As a newer build might have written them: a rule field this build does not know.
    const sm = new MemorySm();
    sm.data.set(RULES_KEY, encode({ rules: { deny: [{ service: 'x', port: 80 }] }, revision: 1 }));
    const reg = await Registry.open(sm);
    const log = new Log(reg, sm);
    expect(log.apply(register('a')).result).toMatchObject({ ok: false, code: 'ACCESS_RULES_INVALID' });
    expect(
      log.apply({
        type: 'update',
        namespace: 'prod',
        service: 'orders',
        id: 'a',
        expectedVersion: 1,
        patch: { metadata: {} },
      }).result,
    ).toMatchObject({ code: 'ACCESS_RULES_INVALID' });
    // Replacing them heals it.
    ok(log.apply({ type: 'setAccessRules', rules: {} }).result);
    ok(log.apply(register('a')).result);
  });
});
