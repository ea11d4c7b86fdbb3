/**
 * The monitoring page in headless Chromium, against an in-process backend: the real HTTP
 * app (watch, cluster) over the InMemoryNodeApi of the API tests, with the monitoring routes, and a
 * real HealthTracker standing in for the leader (reports in, setHealth applied). Needs no
 * integration patch. Without playwright-core or /usr/bin/chromium it is skipped, except under
 * CI, where it fails: .ci/install-chromium.sh installs the browser.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HealthReport } from '../src/health/index.js';
import { DEFAULT_THRESHOLDS, HealthTracker, healthCommands } from '../src/health/index.js';
import { silentLogger } from '../src/log/index.js';
import { buildApp } from '../src/server/app.js';
import { TokenAuthority } from '../src/server/auth.js';
import { browserReady, CHROMIUM, CHROMIUM_ARGS, pw } from './helpers/chromium.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

interface Backend {
  readonly app: FastifyInstance;
  readonly node: InMemoryNodeApi;
  readonly url: string;
  /** Closes the backend, cutting the page's open streams first. */
  close(): Promise<void>;
  /** A keepalive report as the leader takes it: tracker, then setHealth on a transition. */
  report(id: string, r: HealthReport): void;
}

async function backend(options: { tokens?: TokenAuthority; listMaxItems?: number } = {}): Promise<Backend> {
  const node = await InMemoryNodeApi.create();
  const tracker = new HealthTracker({ thresholds: () => ({ ...DEFAULT_THRESHOLDS, degradeAfter: 2 }) });
  const app = buildApp({
    node,
    logger: silentLogger(),
    healthReports: () => tracker.list(),
    ...(options.tokens ? { tokens: options.tokens } : {}),
    ...(options.listMaxItems ? { listMaxItems: options.listMaxItems } : {}),
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return {
    app,
    async close() {
      // The page's streams (watch, alerts) are requests that never end: fastify's close would
      // wait on them while a failed test still has its page open, and time the test out with
      // no word of what failed. Cut them first.
      app.server.closeAllConnections();
      await app.close();
    },
    node,
    url,
    report(id, r) {
      const inst = node.registry.getInstance('prod', 'orders', id);
      if (!inst) throw new Error(`no instance ${id}`);
      const now = Date.now();
      tracker.report(inst, r, now, inst.health);
      for (const c of healthCommands(tracker.due(now, node.registry), 1)) node.apply(c);
    },
  };
}

describe.skipIf(!browserReady)('monitoring page (in-process backend)', () => {
  let browser: import('playwright-core').BrowserContext;
  let profile: string;
  let b: Backend;

  beforeAll(async () => {
    profile = mkdtempSync(path.join(tmpdir(), 'rollcall-chromium-'));
    browser = await pw!.chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1440, height: 900 },
    });
    b = await backend();
  });
  afterAll(async () => {
    await browser?.close();
    await b?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  async function open(url: string) {
    const page = await browser.newPage();
    // Well inside the test's own timeout, so a step that hangs fails with Playwright's
    // error naming the locator it waited for, not a bare "test timed out".
    page.setDefaultTimeout(15_000);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error' && !m.text().includes('401')) errors.push(m.text());
    });
    await page.goto(url);
    return { page, errors };
  }

  const register = (id: string, body: Record<string, unknown>) =>
    fetch(`${b.url}/v1/namespaces/prod/services/orders/instances/${id}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });

  it('shows an instance registered after it opened, with weight and metadata, and the change in the feed', async () => {
    const { page, errors } = await open(`${b.url}/ui`);
    await page.locator('#watch.live-live').waitFor();
    expect(
      (
        await register('o1', {
          address: '10.1.0.1',
          port: 8080,
          weight: 40,
          metadata: { zone: 'eu-1a', version: '2.4.1' },
        })
      ).status,
    ).toBe(200);
    const row = page.locator('[data-instance="prod/orders/o1"]');
    await row.waitFor();
    expect(await row.getAttribute('data-health')).toBe('healthy');
    expect(await row.locator('[role=cell]').nth(3).textContent()).toBe('40');
    // key and value are separate spans; the '=' between them is drawn by CSS.
    expect(await row.locator('.kv .k').allTextContents()).toEqual(['version', 'zone']);
    expect(await row.locator('.kv').allTextContents()).toEqual(['version2.4.1', 'zoneeu-1a']);
    await page.locator('.feed li', { hasText: 'prod/orders/o1' }).first().waitFor();
    expect(await page.locator('[data-member="fake1"]').getAttribute('data-role')).toBe('leader');
    expect(await page.locator('#leader').textContent()).toBe('fake1');
    expect(errors).toEqual([]);
    await page.close();
  });

  it('turns an instance subhealthy when its reports cross the threshold, with the reason and an alert', async () => {
    await register('o2', { address: '10.1.0.2', port: 8080 });
    const { page, errors } = await open(`${b.url}/ui`);
    const row = page.locator('[data-instance="prod/orders/o2"]');
    await row.waitFor();
    b.report('o2', { successRatio: 0.99, p99Ms: 80, cpu: 0.3 });
    b.report('o2', { successRatio: 0.72, p99Ms: 1400, cpu: 0.95 });
    expect(b.node.registry.getInstance('prod', 'orders', 'o2')?.health).toBe('healthy'); // one bad report is not enough
    b.report('o2', { successRatio: 0.71, p99Ms: 1450, cpu: 0.96 });
    await page.locator('[data-instance="prod/orders/o2"][data-health="subhealthy"]').waitFor();
    await row.locator('[data-testid="success"]', { hasText: 'ok 71.0%' }).waitFor(); // reports are polled every 2 s
    await page.locator('.feed li', { hasText: 'subhealthy' }).first().waitFor();
    // o1 healthy, o2 subhealthy: 50 % is not above the default 50 %; a third, down, tips it.
    await register('o3', { address: '10.1.0.3', port: 8080 });
    b.node.apply({ type: 'setHealth', term: 1, namespace: 'prod', service: 'orders', id: 'o3', health: 'subhealthy' });
    await page.locator('[data-alert="service-subhealthy:prod/orders"]').waitFor();
    expect(errors).toEqual([]);
    await page.close();
  });

  it('follows a change of leader from the cluster status', async () => {
    const { page } = await open(`${b.url}/ui`);
    await page.locator('#leader', { hasText: 'fake1' }).waitFor();
    b.node.leader = null;
    await page.locator('#leader', { hasText: 'none' }).waitFor();
    b.node.leader = 'fake1';
    await page.locator('#leader', { hasText: 'fake1' }).waitFor();
    await page.close();
  });

  it("shows the health policy in force: the built-in thresholds, then an admin's override", async () => {
    const own = await backend();
    try {
      const { page, errors } = await open(`${own.url}/ui`);
      await page.locator('#policy [data-policy="defaults"]').waitFor();
      const p99 = page.locator('#policy table.policy tr', { hasText: 'p99Ms' });
      expect(await p99.locator('td').nth(1).textContent()).toBe('1000 → 800');
      own.node.apply({
        type: 'setHealthPolicy',
        policy: { services: { 'prod/orders': { health: { p99Ms: { subhealthy: { enter: 250, exit: 200 } } } } } },
      });
      const scope = page.locator('#policy li[data-scope="service prod/orders"]');
      await scope.waitFor({ timeout: 30_000 }); // the page reads the policy every 5 s
      expect(await scope.locator('.mono').allTextContents()).toEqual([
        'health.p99Ms.subhealthy.enter = 250',
        'health.p99Ms.subhealthy.exit = 200',
      ]);
      expect(await page.locator('#policy [data-policy="stored"]').count()).toBe(1);
      expect(await page.locator('#policy-rev').textContent()).toMatch(/^rev \d+$/);
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      await own.close();
    }
  });

  it('a section that fails to draw does not stop the others from drawing', async () => {
    const own = await backend();
    try {
      const { page, errors } = await open(`${own.url}/ui`);
      await page.locator('#policy [data-policy="defaults"]').waitFor();
      // The header draws into #leader every cluster poll (1 s): without it, that section throws.
      await page.evaluate("document.getElementById('leader').remove()");
      await expect.poll(() => errors.join('\n'), { timeout: 15_000 }).toContain('no #leader');
      // Before, the throw left the set of sections to draw non-empty and no frame was scheduled
      // again: the page froze, and this policy change never appeared.
      own.node.apply({
        type: 'setHealthPolicy',
        policy: { services: { 'prod/orders': { health: { p99Ms: { subhealthy: { enter: 250, exit: 200 } } } } } },
      });
      await page.locator('#policy li[data-scope="service prod/orders"]').waitFor();
      await page.close();
    } finally {
      await own.close();
    }
  });

  it('lists a registry larger than one answer may hold, in pages; shows and updates the right rows of the virtual list', async () => {
    const big = await backend({ listMaxItems: 1000 });
    try {
      // Before the page paginated, its one listing was refused here (LIMIT_EXCEEDED): an empty page.
      for (let i = 0; i < 4500; i++)
        big.node.apply({
          type: 'register',
          namespace: 'prod',
          service: i % 3 ? 'orders' : 'billing',
          id: `b${i}`,
          address: '10.3.0.1',
          port: 1,
        });
      const { page, errors } = await open(`${big.url}/ui`);
      await page.locator('#services-count', { hasText: '2 services · 4500 instances' }).waitFor();
      await page.locator('#watch.live-live').waitFor();
      // Virtual: only the rows in view (and a margin) are in the DOM, in display order (cluster, id).
      const byOrder = (svc: string) =>
        Array.from({ length: 4500 }, (_, i) => i)
          .filter((i) => (svc === 'billing') === (i % 3 === 0))
          .map((i) => `b${i}`)
          .sort();
      const orders = byOrder('orders');
      const shown = () =>
        page.locator('[data-instance]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-instance')));
      const first = await shown();
      expect(first.length).toBeGreaterThan(5);
      expect(first.length).toBeLessThan(100);
      expect(first.slice(0, 3)).toEqual(
        byOrder('billing')
          .slice(0, 3)
          .map((id) => `prod/billing/${id}`),
      );
      // Scrolled to the end: the last rows of prod/orders, in order, and nothing of billing.
      await page.locator('#services').evaluate((el) => {
        el.scrollTop = el.scrollHeight;
      });
      const last = `prod/orders/${orders.at(-1)}`;
      await page.locator(`[data-instance="${last}"]`).waitFor();
      const end = await shown();
      expect(end.at(-1)).toBe(last);
      expect(end).toEqual(orders.slice(orders.length - end.length).map((id) => `prod/orders/${id}`));
      // Live changes reach the rows in view: a health change, a removal (the rows close up).
      const second = end.at(-2)!;
      big.node.apply({
        type: 'setHealth',
        term: 1,
        namespace: 'prod',
        service: 'orders',
        id: orders.at(-1)!,
        health: 'down',
      });
      await page.locator(`[data-instance="${last}"][data-health="down"]`).waitFor();
      big.node.apply({ type: 'unregister', namespace: 'prod', service: 'orders', id: second.split('/')[2]! });
      await page.locator('#services-count', { hasText: '4499 instances' }).waitFor();
      expect(await page.locator(`[data-instance="${second}"]`).count()).toBe(0);
      expect((await shown()).slice(-2)).toEqual([end.at(-3), last]);
      big.node.apply({
        type: 'register',
        namespace: 'prod',
        service: 'billing',
        id: 'new-one',
        address: '10.3.0.2',
        port: 1,
      });
      await page.locator('#services-count', { hasText: '4500 instances' }).waitFor();
      // The filter narrows to matching rows, wherever they were in the list.
      await page.fill('#filter', 'new-one');
      await page.locator('[data-instance="prod/billing/new-one"]').waitFor();
      expect(await shown()).toEqual(['prod/billing/new-one']);
      expect(errors).toEqual([]);
      await page.close();
    } finally {
      await big.close();
    }
  });

  it('asks for a token when the node requires one, then lists and streams with it', async () => {
    const secured = await backend({
      tokens: TokenAuthority.parse(JSON.stringify([{ token: 'page-reader-token-1', role: 'read' }])),
    });
    try {
      secured.node.apply({
        type: 'register',
        namespace: 'prod',
        service: 'orders',
        id: 'a1',
        address: '10.2.0.1',
        port: 1,
      });
      const { page, errors } = await open(`${secured.url}/ui`);
      await page.locator('#auth:not([hidden])').waitFor();
      await page.fill('#token', 'page-reader-token-1');
      await page.click('#auth button');
      await page.locator('[data-instance="prod/orders/a1"]').waitFor();
      await page.locator('#watch.live-live').waitFor();
      secured.node.apply({
        type: 'register',
        namespace: 'prod',
        service: 'orders',
        id: 'a2',
        address: '10.2.0.2',
        port: 1,
      });
      await page.locator('[data-instance="prod/orders/a2"]').waitFor(); // through the fetch-based stream
      expect(errors.filter((e) => !/Failed to load resource/.test(e))).toEqual([]);
      await page.close();
    } finally {
      await secured.close();
    }
  });
});
