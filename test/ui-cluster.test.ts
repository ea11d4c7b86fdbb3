/**
 * The monitoring page against a real 3-node cluster (separate processes, LevelDB, loopback),
 * opened on a follower: it shows a registered instance, turns it subhealthy when its
 * keepalive reports cross the threshold, and shows a new leader after a kill -9 of the old one.
 *
 * Needs `npx tsc -p tsconfig.json` first (npm test does it). Without playwright-core or
 * /usr/bin/chromium it is skipped, except under CI, where it fails: .ci/install-chromium.sh
 * installs the browser. Screenshots of each run go to test-output/ui/.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { STATE_MACHINE_VERSION } from '../src/registry/version.js';
import { browserReady, CHROMIUM, CHROMIUM_ARGS, pw } from './helpers/chromium.js';
import { http, waitFor, waitForLeader } from './helpers/http.js';

// Screenshots of each run, for a person to look at (test-output/ is not committed).
const IMG = new URL('../test-output/ui/', import.meta.url);

const TTL = 10_000;
const GOOD = { successRatio: 0.996, p99Ms: 85, cpu: 0.31, memory: 0.52, disk: 0.34 };
const BAD = { successRatio: 0.71, p99Ms: 1480, cpu: 0.94, memory: 0.66, disk: 0.35 };

describe.skipIf(!browserReady)('monitoring page on a real cluster', () => {
  let cluster: LocalCluster;
  let browser: import('playwright-core').BrowserContext;
  let page: import('playwright-core').Page;
  let profile: string;
  let leader: string;
  let follower: string;
  const keepalives: { stop: boolean; report: Record<string, number>; loops: Promise<void>[] } = {
    stop: false,
    report: GOOD,
    loops: [],
  };

  /** Keeps a session alive through `url` with the current report until the suite ends. */
  function keepAlive(url: string, session: string): void {
    keepalives.loops.push(
      (async () => {
        while (!keepalives.stop) {
          await http('PUT', `${url}/v1/sessions/${session}/keepalive`, { report: keepalives.report }, {}, 3000).catch(
            () => undefined,
          );
          await new Promise((r) => setTimeout(r, 300));
        }
      })(),
    );
  }

  beforeAll(async () => {
    [cluster, browser] = await Promise.all([
      LocalCluster.start({ size: 3, logLevel: 'warn' }),
      pw!.chromium.launchPersistentContext((profile = mkdtempSync(path.join(tmpdir(), 'rollcall-chromium-'))), {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        viewport: { width: 1440, height: 900 },
      }),
    ]);
    leader = await waitForLeader(cluster.nodes.map((n) => n.url));
    follower = cluster.nodes.find((n) => n.id !== leader)!.id;
    page = await browser.newPage();
    await page.goto(`${cluster.node(follower).url}/ui`);
    mkdirSync(IMG, { recursive: true });
  });
  afterAll(async () => {
    keepalives.stop = true;
    await Promise.all(keepalives.loops);
    await browser?.close();
    await cluster?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('shows an instance registered through a follower, with its reports', async () => {
    const url = cluster.node(follower).url;
    await page.locator(`[data-member="${leader}"][data-role="leader"]`).waitFor();
    // The cluster version in the header, each member's build in the table (docs/operations.md, "Upgrades").
    await page
      .locator('[data-testid="cluster-version"]', { hasText: new RegExp(`^v${STATE_MACHINE_VERSION}$`) })
      .waitFor();
    expect(await page.locator(`[data-member] td[data-build="${STATE_MACHINE_VERSION}"]`).count()).toBe(3);
    for (const [id, zone] of [
      ['orders-1', 'eu-west-1a'],
      ['orders-2', 'eu-west-1b'],
    ] as const) {
      const s = await http('POST', `${url}/v1/sessions`, { ttlMs: TTL });
      expect(s.status).toBe(201);
      const r = await http('PUT', `${url}/v1/namespaces/prod/services/orders/instances/${id}`, {
        address: `10.0.0.${id.slice(-1)}`,
        port: 8080,
        sessionId: s.body.id,
        tags: ['v2'],
        metadata: { zone, version: '2.4.1' },
      });
      expect(r.status).toBe(200);
      keepAlive(url, s.body.id);
    }
    await page.locator('[data-instance="prod/orders/orders-1"][data-health="healthy"]').waitFor();
    await page
      .locator('[data-instance="prod/orders/orders-1"] [data-testid="success"]', { hasText: 'ok 99.6%' })
      .waitFor({ timeout: 10_000 });
  });

  it('turns subhealthy when the reports cross the threshold (one setHealth through the log)', async () => {
    keepalives.report = BAD;
    await page.locator('[data-instance="prod/orders/orders-1"][data-health="subhealthy"]').waitFor({ timeout: 15_000 });
    await page.locator('.feed li', { hasText: 'setHealth' }).first().waitFor();
    // Consumers asking for healthy instances only no longer get them.
    const healthy = await http(
      'GET',
      `${cluster.node(follower).url}/v1/namespaces/prod/services/orders/instances?health=healthy`,
    );
    expect(healthy.body.instances).toEqual([]);
    await page.locator('[data-alert="service-min-healthy:prod/orders"]').waitFor({ timeout: 10_000 });
    await page.screenshot({ path: new URL('ui.png', IMG).pathname });
  });

  it('shows a new leader after a kill -9 of the leader', async () => {
    const before = await http('GET', `${cluster.node(follower).url}/v1/cluster`);
    await cluster.kill(leader);
    const next = await waitFor('a new leader', async () => {
      const c = await http('GET', `${cluster.node(follower).url}/v1/cluster`, undefined, {}, 2000);
      return c.body.leader && c.body.leader !== leader ? (c.body.leader as string) : undefined;
    });
    await page.locator('#leader', { hasText: next }).waitFor({ timeout: 10_000 });
    await page.locator(`[data-member="${next}"][data-role="leader"]`).waitFor();
    // The dead leader is shown as unreachable, not by the stale role it last reported.
    await page.locator(`[data-member="${leader}"][data-role="unreachable"]`).waitFor();
    expect(Number(await page.locator('#term').textContent())).toBeGreaterThan(before.body.term as number);
    await page.locator(`[data-alert="node-unreachable:${leader}"]`).waitFor({ timeout: 15_000 });
    await page.screenshot({ path: new URL('ui-failover.png', IMG).pathname });
  });
});
