/**
 * The monitoring page and federation (issue 18), in headless Chromium against two real
 * single-node datacenters (separate processes, LevelDB, loopback, gossip every 300 ms): the
 * page on dc-a lists both datacenters with their status from GET /v1/federation, shows
 * dc-b's services through `?dc=dc-b` (listing and watch forwarded by dc-a's node), follows
 * live changes there, and goes back to its own.
 *
 * Needs `npx tsc -p tsconfig.json` and `npm run build:ui` first (npm test does both). Without
 * playwright-core or /usr/bin/chromium it is skipped, except under CI, where it fails.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalCluster } from '../scripts/local-cluster.js';
import { browserReady, CHROMIUM, CHROMIUM_ARGS, pw } from './helpers/chromium.js';
import { federationArgs } from './helpers/federation.js';
import { http, register, waitFor, waitForLeader } from './helpers/http.js';

const SECRET = 'ui-federation-test-secret';
const dcArgs = (dc: string, join: string[] = []) => federationArgs(dc, join, { secret: SECRET, roundMs: 300 });

describe.skipIf(!browserReady)('monitoring page across two federated datacenters', () => {
  let a: LocalCluster;
  let b: LocalCluster;
  let browser: import('playwright-core').BrowserContext;
  let profile: string;

  beforeAll(async () => {
    [a, browser] = await Promise.all([
      LocalCluster.start({ size: 1, logLevel: 'warn', extraArgs: dcArgs('dc-a') }),
      pw!.chromium.launchPersistentContext((profile = mkdtempSync(path.join(tmpdir(), 'rollcall-chromium-'))), {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        viewport: { width: 1440, height: 900 },
      }),
    ]);
    b = await LocalCluster.start({ size: 1, logLevel: 'warn', extraArgs: dcArgs('dc-b', [a.nodes[0]!.url]) });
    await Promise.all([waitForLeader([a.nodes[0]!.url]), waitForLeader([b.nodes[0]!.url])]);
    await waitFor(
      'dc-a sees dc-b alive',
      async () => {
        const f = await http('GET', `${a.nodes[0]!.url}/v1/federation`, undefined, {}, 2000);
        return f.body.datacenters?.some(
          (d: { name: string; status: string }) => d.name === 'dc-b' && d.status === 'alive',
        );
      },
      30_000,
    );
  }, 90_000);
  afterAll(async () => {
    await browser?.close();
    await Promise.all([a?.close(), b?.close()]);
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it("lists the datacenters, shows dc-b's services live, and goes back to its own", async () => {
    const aUrl = a.nodes[0]!.url;
    const bUrl = b.nodes[0]!.url;
    expect((await register(aUrl, 'prod', 'orders', 'in-a', { address: '10.5.0.1', port: 80 })).status).toBe(200);
    expect((await register(bUrl, 'prod', 'payments', 'in-b', { address: '10.6.0.1', port: 80 })).status).toBe(200);

    const page = await browser.newPage();
    page.setDefaultTimeout(15_000);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(`${aUrl}/ui`);

    // Both datacenters with their status; this one is marked and shown.
    await page
      .locator('#datacenters tr[data-dc="dc-a"][data-status="alive"]', { hasText: 'this datacenter' })
      .waitFor();
    await page.locator('#datacenters tr[data-dc="dc-b"][data-status="alive"]').waitFor();
    await page.locator('[data-testid="services-dc"]', { hasText: 'dc-a' }).waitFor();
    await page.locator('[data-instance="prod/orders/in-a"]').waitFor();
    await page.locator('#watch.live-live').waitFor();

    await page.click('button[data-view-dc="dc-b"]');
    await page.locator('[data-testid="services-dc"]', { hasText: 'dc-b' }).waitFor();
    await page.locator('[data-instance="prod/payments/in-b"]').waitFor();
    expect(await page.locator('[data-instance="prod/orders/in-a"]').count()).toBe(0);
    await page.locator('#watch.live-live').waitFor();
    // A change in dc-b arrives through the watch dc-a's node forwards.
    expect((await register(bUrl, 'prod', 'payments', 'in-b-2', { address: '10.6.0.2', port: 80 })).status).toBe(200);
    await page.locator('[data-instance="prod/payments/in-b-2"]').waitFor();
    await page.locator('.feed li', { hasText: 'prod/payments/in-b-2' }).first().waitFor();
    await page.locator('#datacenters tr.viewing[data-dc="dc-b"]').waitFor();

    await page.click('button[data-view-dc="dc-a"]');
    await page.locator('[data-testid="services-dc"]', { hasText: 'dc-a' }).waitFor();
    await page.locator('[data-instance="prod/orders/in-a"]').waitFor();
    expect(await page.locator('[data-instance^="prod/payments/"]').count()).toBe(0);
    expect(errors).toEqual([]);
    await page.close();
  });
});
