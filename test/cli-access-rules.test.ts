/**
 * The access rules from the SDK (`accessRules()` / `setAccessRules()`) and the shell
 * (`rollcall rules get|set`) against a real 3-node cluster (separate processes, loopback):
 * rules set through a follower are read back from another node, a stale --if-revision and a
 * bad document are refused (exit 5) naming why, and a registration the new rules deny is
 * refused with 403 ACCESS_DENIED.
 * Needs `npx tsc -p tsconfig.json` first (npm test does it).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster, type LocalNode } from '../scripts/local-cluster.js';
import { findCommand, runCommand } from '../src/cli/commands/index.js';
import { ApiError, RollcallClient } from '../src/client/index.js';
import { waitFor, waitForLeader } from './helpers/http.js';

const RULES = {
  environment: 'prod',
  allow: [{ name: 'prod-net', namespace: 'prod', cidr: '10.0.0.0/8' }],
  deny: [{ name: 'quarantine', cidr: '10.66.0.0/16' }],
};
const NORMALIZED = { requireEnvironment: false, ...RULES };

describe('access rules through the SDK and `rollcall rules`', () => {
  let cluster: LocalCluster;
  let follower: LocalNode; // rules are set through it
  let other: LocalNode; // and read back from this one
  let dir: string;
  const clients: RollcallClient[] = [];
  const clientOf = (node: LocalNode) => {
    const c = new RollcallClient({ endpoints: [node.url] });
    clients.push(c);
    return c;
  };
  const run = async (node: LocalNode, ...args: string[]) => {
    let stdout = '';
    let stderr = '';
    const code = await runCommand(findCommand('rules')!, [...args, '--endpoints', node.url], {
      out: (t) => void (stdout += t),
      err: (t) => void (stderr += t),
    });
    return { code, stdout, stderr };
  };

  beforeAll(async () => {
    cluster = await LocalCluster.start({ size: 3, logLevel: 'warn' });
    const leader = await waitForLeader(cluster.nodes.map((n) => n.url));
    follower = cluster.nodes.find((n) => n.id !== leader)!;
    other = cluster.nodes.find((n) => n.id !== follower.id)!;
    dir = await mkdtemp(path.join(tmpdir(), 'rollcall-rules-'));
  }, 60_000);
  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await cluster?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('the SDK reads the defaults before any rules are set', async () => {
    const r = await clientOf(other).accessRules();
    expect(r).toMatchObject({
      rulesRevision: 0,
      rules: { environment: null, requireEnvironment: false, allow: [], deny: [] },
    });
    expect(r.revision).toBeGreaterThanOrEqual(0);
    const human = await run(other, 'get');
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toContain('no rules stored: the defaults apply');
  });

  it('set through a follower with the CLI, read back from another node; stale and bad documents exit 5', async () => {
    const file = path.join(dir, 'rules.json');
    await writeFile(file, JSON.stringify(RULES));
    const set = await run(follower, 'set', file, '--if-revision', '0', '--json');
    expect(set.code, set.stderr).toBe(0);
    const written = JSON.parse(set.stdout) as { revision: number; rulesRevision: number; rules: unknown };
    expect(written).toMatchObject({ rules: NORMALIZED });
    expect(written.rulesRevision).toBeGreaterThan(0);
    const stored = written.rulesRevision;

    // Linearizable read from another node: it sees the write.
    const got = await run(other, 'get', '--json');
    expect(got.code, got.stderr).toBe(0);
    expect(JSON.parse(got.stdout)).toMatchObject({ rulesRevision: stored, rules: NORMALIZED });
    // The SDK agrees, even with a serializable read once that node has applied the write.
    const sdk = await clientOf(other).accessRules({ consistency: 'serializable', minRevision: stored });
    expect(sdk).toMatchObject({ rulesRevision: stored, rules: NORMALIZED });

    const human = await run(other);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout.split('\n')).toEqual([
      `rules stored at revision ${stored}:`,
      'environment: prod',
      'requireEnvironment: false',
      'allow[0] (prod-net): namespace=prod cidr=10.0.0.0/8',
      'deny[0] (quarantine): cidr=10.66.0.0/16',
      '',
    ]);

    // A stale compare-and-set is refused (exit 5, VERSION_MISMATCH with the stored revision).
    const stale = await run(follower, 'set', file, '--if-revision', '0', '--json');
    expect(stale.code).toBe(5);
    expect(JSON.parse(stale.stderr).error).toMatchObject({ code: 'VERSION_MISMATCH', currentVersion: stored });
    const staleHuman = await run(follower, 'set', file, '--if-revision', String(stored - 1));
    expect(staleHuman.code).toBe(5);
    expect(staleHuman.stderr).toMatch(/^rollcall: /);

    // A bad document is refused whole, naming the field.
    const badFile = path.join(dir, 'bad.json');
    await writeFile(badFile, JSON.stringify({ deny: [{ name: 'broken', cidr: 'not-an-address' }] }));
    const bad = await run(follower, 'set', badFile, '--json');
    expect(bad.code).toBe(5);
    expect(JSON.parse(bad.stderr).error).toMatchObject({ code: 'INVALID_ARGUMENT', field: 'deny.0.cidr' });

    // Usage errors exit 2.
    expect((await run(follower, 'set')).code).toBe(2);
    expect((await run(follower, 'set', file, '--if-revision', 'x')).code).toBe(2);
    expect((await run(follower, 'get', '--if-revision', '3')).code).toBe(2);
    expect((await run(follower, 'frobnicate')).code).toBe(2);
    const notJson = path.join(dir, 'not.json');
    await writeFile(notJson, '{');
    expect((await run(follower, 'set', notJson)).code).toBe(2);

    // Nothing refused changed the rules.
    expect((await clientOf(follower).accessRules()).rulesRevision).toBe(stored);
  }, 60_000);

  it('a registration the new rules deny is refused with 403 ACCESS_DENIED through the SDK', async () => {
    const client = clientOf(follower);
    const current = await client.accessRules();
    expect(current.rules).toMatchObject(NORMALIZED);

    const err = await client
      .putInstance({ namespace: 'prod', service: 'orders', id: 'q1', address: '10.66.1.2', port: 9000 })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 403, code: 'ACCESS_DENIED' });
    expect((err as ApiError).details.rule).toBe('deny[0] (quarantine)');

    // An address the allow list covers is admitted.
    const ok = await client.putInstance({
      namespace: 'prod',
      service: 'orders',
      id: 'o1',
      address: '10.1.2.3',
      port: 9000,
    });
    expect(ok.instance.id).toBe('o1');

    // Compare-and-set through the SDK: loosen the rules, then a stale write is VERSION_MISMATCH.
    const loosened = await client.setAccessRules({ environment: 'prod' }, { expectedRevision: current.rulesRevision });
    expect(loosened.rulesRevision).toBeGreaterThan(current.rulesRevision);
    expect(loosened.rules).toEqual({ environment: 'prod', requireEnvironment: false, allow: [], deny: [] });
    const stale = await client.setAccessRules(RULES, { expectedRevision: current.rulesRevision }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(stale).toBeInstanceOf(ApiError);
    expect(stale).toMatchObject({
      status: 412,
      code: 'VERSION_MISMATCH',
      details: { currentVersion: loosened.rulesRevision },
    });

    // Once another node has applied the looser rules, it admits what was denied.
    await waitFor(
      'the other node to apply the looser rules',
      async () =>
        (await clientOf(other).accessRules({ consistency: 'serializable' })).rulesRevision === loosened.rulesRevision,
    );
    const admitted = await clientOf(other).putInstance({
      namespace: 'prod',
      service: 'orders',
      id: 'q1',
      address: '10.66.1.2',
      port: 9000,
    });
    expect(admitted.instance.address).toBe('10.66.1.2');
  }, 60_000);
});
