/**
 * The admin-set health policy in a real 3-node cluster (separate processes, LevelDB,
 * loopback): a PUT through a follower is replicated to every node, reaches a node that was
 * down by snapshot, survives restarts; a leader elected afterwards decides health with it
 * (an instance turns subhealthy under the custom threshold while one with the same reports
 * under the defaults stays healthy), and a changed policy applies to the next reports.
 * `rollcall health policy get|set` does the same from the shell.
 * Needs `npx tsc -p tsconfig.json` first (npm test does it).
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster, type LocalNode } from '../scripts/local-cluster.js';
import { findCommand, runCommand } from '../src/cli/commands/index.js';
import { http, list, register, waitFor, waitForLeader } from './helpers/http.js';

/** Strict for prod/orders only; minDwellMs 0 so a later, looser policy lets it recover at once. */
const STRICT = {
  services: {
    'prod/orders': { health: { successRatio: { subhealthy: { enter: 0.99, exit: 0.995 } }, minDwellMs: 0 } },
  },
};
const LOOSE = {
  services: { 'prod/orders': { health: { successRatio: { subhealthy: { enter: 0.95, exit: 0.96 } }, minDwellMs: 0 } } },
};
/** Healthy by the defaults (subhealthy below 0.90), subhealthy by STRICT (below 0.99), healthy by LOOSE. */
const REPORT = { successRatio: 0.97, p99Ms: 120, cpu: 0.3, memory: 0.4, disk: 0.2 };

const getPolicy = (url: string, query = '') => http('GET', `${url}/v1/health/policy${query}`, undefined, {}, 3000);
const putPolicy = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  http('PUT', `${url}/v1/health/policy`, body, headers);
const healthOf = async (url: string, svc: string, id: string): Promise<string | undefined> =>
  ((await list(url, 'prod', svc, '?consistency=serializable')).body.instances as { id: string; health: string }[]).find(
    (i) => i.id === id,
  )?.health;

describe('the health policy in a real cluster', () => {
  let cluster: LocalCluster;
  const logs: string[] = [];
  let leader: string;
  let via: LocalNode; // the follower the policy is PUT through
  let lagger: LocalNode; // down while the policy is written; catches up by snapshot
  let policyRevision: number;
  const keepalive = { stop: false, loop: Promise.resolve() };

  beforeAll(async () => {
    cluster = await LocalCluster.start({
      size: 3,
      logLevel: 'info',
      extraArgs: ['--compact-every', '40'],
      onLog: (id, line) => logs.push(`${id} ${line}`),
    });
    leader = await waitForLeader(cluster.nodes.map((n) => n.url));
    [via, lagger] = cluster.nodes.filter((n) => n.id !== leader) as [LocalNode, LocalNode];
  });
  afterAll(async () => {
    keepalive.stop = true;
    await keepalive.loop;
    await cluster?.close();
  });

  it('a PUT through a follower is replicated to every node, including one that catches up by snapshot', async () => {
    await cluster.kill(lagger.id);
    const before = await getPolicy(via.url);
    expect(before.body).toMatchObject({ policy: null, policyRevision: 0 });

    const put = await putPolicy(via.url, STRICT);
    expect(put.status).toBe(200);
    expect(put.body).toMatchObject({ changed: true, policy: STRICT });
    policyRevision = put.body.policyRevision as number;
    expect(policyRevision).toBe(put.body.revision);
    expect(put.headers.get('x-rollcall-revision')).toBe(String(policyRevision));

    // A bad document is refused naming the field; a stale compare-and-set is refused; neither changes anything.
    const bad = await putPolicy(via.url, {
      services: { 'prod/orders': { health: { successRatio: { subhealthy: { enter: 0.9, exit: 0.8 } } } } },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({
      code: 'INVALID_ARGUMENT',
      field: 'policy.services.prod/orders.health.successRatio.subhealthy',
    });
    const stale = await putPolicy(via.url, LOOSE, { 'if-match': '0' });
    expect(stale.status).toBe(412);
    expect(stale.body.error).toMatchObject({
      code: 'VERSION_MISMATCH',
      field: 'if-match',
      currentVersion: policyRevision,
    });

    // Enough writes for the leader to compact past everything the lagger has.
    for (let i = 0; i < 60; i++)
      expect((await register(via.url, 'prod', 'filler', `f${i}`, { address: '10.9.0.1', port: 1 + i })).status).toBe(
        200,
      );
    await cluster.restart(lagger.id);
    await waitFor(
      'the restarted node to install a snapshot from the leader',
      () => logs.some((l) => l.startsWith(`${lagger.id} `) && l.includes('installed a snapshot from the leader')),
      30_000,
    );

    for (const n of cluster.nodes) {
      const got = await waitFor(`${n.id} to serve the policy`, async () => {
        const r = await getPolicy(n.url);
        return r.status === 200 ? r : undefined;
      });
      expect(got.body, n.id).toMatchObject({ policy: STRICT, policyRevision });
      expect(got.headers.get('x-rollcall-node')).toBe(n.id);
    }
    // What prod/orders resolves to, on the node that was down.
    const resolved = await getPolicy(lagger.url, '?namespace=prod&service=orders&consistency=serializable');
    expect(resolved.body.resolved.health.successRatio.subhealthy).toEqual({ enter: 0.99, exit: 0.995 });
  }, 120_000);

  it('a leader elected after the PUT decides with it; a changed policy applies to the next reports', async () => {
    // kill -9 the leader that took the PUT: its successor only has the policy from the log.
    await cluster.kill(leader);
    const live = cluster.running().map((n) => n.url);
    const next = await waitFor('a new leader', async () => {
      const agreed = await waitForLeader(live, 2000).catch(() => undefined);
      return agreed !== leader ? agreed : undefined;
    });

    const s = await http('POST', `${via.url}/v1/sessions`, { ttlMs: 10_000 });
    expect(s.status).toBe(201);
    const session = s.body.id as string;
    // One session, so both instances get exactly the same reports at the same moments.
    expect(
      (await register(via.url, 'prod', 'orders', 'o1', { address: '10.0.0.1', port: 80, sessionId: session })).status,
    ).toBe(200);
    expect(
      (await register(via.url, 'prod', 'billing', 'b1', { address: '10.0.0.2', port: 80, sessionId: session })).status,
    ).toBe(200);
    keepalive.loop = (async () => {
      while (!keepalive.stop) {
        await http('PUT', `${via.url}/v1/sessions/${session}/keepalive`, { report: REPORT }, {}, 3000).catch(
          () => undefined,
        );
        await new Promise((r) => setTimeout(r, 200));
      }
    })();

    await waitFor(
      'prod/orders/o1 to turn subhealthy under the policy',
      async () => (await healthOf(via.url, 'orders', 'o1')) === 'subhealthy',
      20_000,
    );
    // Same reports, default thresholds: the leader holds prod/billing/b1 healthy with nothing pending.
    const reports = await http('GET', `${via.url}/v1/health/reports?namespace=prod`);
    expect(reports.body.from).toBe(next);
    const b1 = (reports.body.reports as { service: string; state: string; pending: unknown; report: unknown }[]).find(
      (r) => r.service === 'billing',
    );
    expect(b1).toMatchObject({ state: 'healthy', pending: null, report: REPORT });
    expect(await healthOf(via.url, 'billing', 'b1')).toBe('healthy');
    expect((await list(via.url, 'prod', 'orders', '?health=healthy')).body.instances).toEqual([]);

    // A looser policy (compare-and-set on the one in force): the same reports now mean healthy.
    const once = { 'if-match': String(policyRevision), 'x-rollcall-client-id': 'policy-admin', 'x-rollcall-seq': '1' };
    const put = await putPolicy(via.url, LOOSE, once);
    expect(put.status).toBe(200);
    expect(put.body.policyRevision).toBeGreaterThan(policyRevision);
    // A retry of that request (its answer lost, say) gets the same answer, not a mismatch with itself.
    const retry = await putPolicy(via.url, LOOSE, once);
    expect(retry.status).toBe(200);
    expect(retry.body.policyRevision).toBe(put.body.policyRevision);
    policyRevision = put.body.policyRevision as number;
    await waitFor(
      'prod/orders/o1 to recover under the new policy',
      async () => (await healthOf(via.url, 'orders', 'o1')) === 'healthy',
      20_000,
    );
    expect(await healthOf(via.url, 'billing', 'b1')).toBe('healthy');
  }, 120_000);

  it('a node restarted after a kill -9 still has the latest policy', async () => {
    const old = cluster.node(leader);
    await cluster.restart(old.id);
    // Serializable: this node's own state (loaded from its LevelDB, then caught up).
    const got = await waitFor(`${old.id} to show policy revision ${policyRevision}`, async () => {
      const r = await getPolicy(old.url, '?consistency=serializable');
      return r.body?.policyRevision === policyRevision ? r : undefined;
    });
    expect(got.body.policy).toEqual(LOOSE);
    // And a graceful restart of another member, read back linearizably.
    expect(await cluster.stop(lagger.id)).toBe(0);
    await cluster.restart(lagger.id);
    const again = await waitFor(`${lagger.id} to serve the policy again`, async () => {
      const r = await getPolicy(lagger.url);
      return r.status === 200 ? r : undefined;
    });
    expect(again.body).toMatchObject({ policy: LOOSE, policyRevision });
  }, 120_000);

  it('rollcall health policy get|set reads and replaces it', async () => {
    const endpoints = cluster
      .running()
      .map((n) => n.url)
      .join(',');
    const dir = await mkdtemp(path.join(tmpdir(), 'rollcall-policy-'));
    const run = async (...args: string[]) => {
      let stdout = '';
      let stderr = '';
      const code = await runCommand(findCommand('health')!, [...args, '--endpoints', endpoints], {
        out: (t) => void (stdout += t),
        err: (t) => void (stderr += t),
      });
      return { code, stdout, stderr };
    };
    try {
      const file = path.join(dir, 'policy.json');
      await writeFile(file, JSON.stringify(STRICT));
      const set = await run('policy', 'set', file, '--if-revision', String(policyRevision), '--json');
      expect(set.code, set.stderr).toBe(0);
      expect(JSON.parse(set.stdout)).toMatchObject({ changed: true, policy: STRICT });
      const stored = JSON.parse(set.stdout).policyRevision as number;

      const get = await run('policy', 'get', '--namespace', 'prod', '--service', 'orders', '--json');
      expect(get.code).toBe(0);
      expect(JSON.parse(get.stdout)).toMatchObject({
        policyRevision: stored,
        policy: STRICT,
        resolved: { health: { successRatio: { subhealthy: { enter: 0.99 } } } },
      });
      expect((await run('policy')).stdout).toContain(`policy stored at revision ${stored}`);

      // A stale compare-and-set and a bad document are refused (exit 5), naming why.
      const stale = await run('policy', 'set', file, '--if-revision', String(policyRevision), '--json');
      expect(stale.code).toBe(5);
      expect(JSON.parse(stale.stderr).error).toMatchObject({ code: 'VERSION_MISMATCH', currentVersion: stored });
      await writeFile(file, JSON.stringify({ defaults: { health: { cpuUsage: {} } } }));
      const bad = await run('policy', 'set', file, '--json');
      expect(bad.code).toBe(5);
      expect(JSON.parse(bad.stderr).error).toMatchObject({
        code: 'INVALID_ARGUMENT',
        field: 'policy.defaults.health.cpuUsage',
      });
      expect((await run('policy', 'set')).code).toBe(2);
      expect((await run('--namespace', 'prod')).code).toBe(2); // a policy flag without 'policy'
      expect((await getPolicy(via.url)).body.policyRevision).toBe(stored);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
