/**
 * The monitoring page under a burst of live changes, in headless Chromium against the real
 * HTTP app over an InMemoryNodeApi: the changes are applied in batches (at most one per
 * animation frame), the list is updated in place (only the rows in view that changed are
 * built again, the list is never rebuilt from scratch), and the final list and counts are
 * right. Counted through the DOM (a MutationObserver) and the page's own counters
 * (`window.rollcallPage`), never through time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log/index.js';
import { buildApp } from '../src/server/app.js';
import { browserReady, CHROMIUM, CHROMIUM_ARGS, pw } from './helpers/chromium.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

// The in-page code is plain JavaScript in strings: test code is compiled without the DOM lib.

/** Counts, from now on, what the page does to the list: rows added, the list replaced, frames. */
const WATCH_LIST = `(() => {
  const box = document.getElementById('services');
  const seen = { rowsAdded: 0, listReplaced: 0, frames: 0, stats: { ...window.rollcallPage } };
  window.__seen = seen;
  new MutationObserver((records) => {
    for (const r of records) {
      if (r.target === box) seen.listReplaced++;
      for (const n of r.addedNodes) {
        if (n.nodeType !== 1) continue;
        if (n.matches('[data-instance]')) seen.rowsAdded++;
        seen.rowsAdded += n.querySelectorAll('[data-instance]').length;
      }
    }
  }).observe(box, { childList: true, subtree: true });
  const frame = () => { seen.frames++; requestAnimationFrame(frame); };
  requestAnimationFrame(frame);
})()`;

const SEEN = `(() => {
  const s = window.__seen;
  const now = window.rollcallPage;
  return {
    rowsAdded: s.rowsAdded,
    listReplaced: s.listReplaced,
    frames: s.frames,
    changesApplied: now.changesApplied - s.stats.changesApplied,
    batches: now.batches - s.stats.batches,
    listBuilds: now.listBuilds - s.stats.listBuilds,
    rowsBuilt: now.rowsBuilt - s.stats.rowsBuilt,
  };
})()`;

const PER_SERVICE = 300;
const id = (n: number) => `i${String(n).padStart(4, '0')}`;

describe.skipIf(!browserReady)('monitoring page: live changes in batches, the list updated in place', () => {
  let browser: import('playwright-core').BrowserContext;
  let profile: string;
  let node: InMemoryNodeApi;
  let app: FastifyInstance;
  let url: string;

  beforeAll(async () => {
    node = await InMemoryNodeApi.create({ historySize: 10_000 });
    app = buildApp({ node, logger: silentLogger(), healthReports: () => [] });
    url = await app.listen({ host: '127.0.0.1', port: 0 });
    profile = mkdtempSync(path.join(tmpdir(), 'rollcall-chromium-'));
    browser = await pw!.chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
      viewport: { width: 1440, height: 900 },
      // The counters are evaluated from strings, which the page's CSP (no eval) refuses.
      bypassCSP: true,
    });
  });
  afterAll(async () => {
    await browser?.close();
    // The page's streams never end by themselves: cut them so close does not wait on them.
    app?.server.closeAllConnections();
    await app?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  const register = (service: string, n: number, weight: number) =>
    node.apply({ type: 'register', namespace: 'prod', service, id: id(n), address: '10.4.0.1', port: 1, weight });

  it('applies a burst of changes in few batches, rebuilds only the changed rows in view, and ends with the right list and counts', async () => {
    for (const svc of ['alpha', 'beta', 'gamma']) for (let n = 0; n < PER_SERVICE; n++) register(svc, n, 1);
    const page = await browser.newPage();
    page.setDefaultTimeout(15_000);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${url}/ui`);
    await page.locator('#services-count', { hasText: `3 services · ${3 * PER_SERVICE} instances` }).waitFor();
    await page.locator('#watch.live-live').waitFor();
    // The rows in view and the margin around them are drawn: all of them alpha's first rows.
    await page.waitForFunction('window.rollcallPage.listComplete');
    const shown = () =>
      page.locator('[data-instance]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-instance')));
    const before = await shown();
    expect(before.every((key) => key?.startsWith('prod/alpha/'))).toBe(true);
    await page.evaluate(WATCH_LIST);

    // The burst, in one go on the server: 3 weight changes in view, 400 out of view (alpha's
    // last rows, beta), 50 registrations in gamma and 30 removals in beta, below the view.
    const from = node.registry.revision;
    for (const n of [0, 1, 2]) register('alpha', n, 77);
    for (let n = 200; n < 300; n++) register('alpha', n, 5);
    for (let n = 0; n < 300; n++) register('beta', n, 9);
    for (let n = PER_SERVICE; n < PER_SERVICE + 50; n++) register('gamma', n, 1);
    for (let n = 0; n < 30; n++) node.apply({ type: 'unregister', namespace: 'prod', service: 'beta', id: id(n) });
    const revision = node.registry.revision;
    const changes = revision - from;
    expect(changes).toBe(483);
    await page.waitForFunction(`Number(document.getElementById('revision').textContent) >= ${revision}`);
    await page.locator('#services-count', { hasText: `3 services · ${3 * PER_SERVICE + 20} instances` }).waitFor();
    await page.waitForFunction('window.rollcallPage.listComplete');
    const seen = await page.evaluate<{
      rowsAdded: number;
      listReplaced: number;
      frames: number;
      changesApplied: number;
      batches: number;
      listBuilds: number;
      rowsBuilt: number;
    }>(SEEN);

    // Every change applied, in batches: at most one a frame, far fewer than the changes.
    expect(seen.changesApplied).toBe(changes);
    expect(seen.batches).toBeGreaterThan(0);
    expect(seen.batches).toBeLessThanOrEqual(seen.frames);
    expect(seen.batches).toBeLessThan(changes / 4);
    // In place: the list was never rebuilt, and the only rows built are the three that changed in view.
    expect(seen.listReplaced).toBe(0);
    expect(seen.listBuilds).toBe(0);
    expect(seen.rowsAdded).toBe(3);
    expect(seen.rowsBuilt).toBe(3);

    // The final list: the same rows in the same order, the changed ones with their new weight.
    expect(await shown()).toEqual(before);
    for (const n of [0, 1, 2]) {
      const row = page.locator(`[data-instance="prod/alpha/${id(n)}"]`);
      expect(await row.locator('[role=cell]').nth(3).textContent()).toBe('77');
    }
    expect(
      await page
        .locator(`[data-instance="prod/alpha/${id(3)}"] [role=cell]`)
        .nth(3)
        .textContent(),
    ).toBe('1');
    // The counts per service, kept as the changes came: each service's header through the filter.
    for (const [svc, count] of [
      ['alpha', PER_SERVICE],
      ['beta', PER_SERVICE - 30],
      ['gamma', PER_SERVICE + 50],
    ] as const) {
      await page.fill('#filter', `prod/${svc}`);
      await page.locator(`section[data-service="prod/${svc}"] .chip`, { hasText: `${count} healthy` }).waitFor();
      expect(
        await page.locator('section[data-service]').evaluateAll((s) => s.map((e) => e.getAttribute('data-service'))),
      ).toEqual([`prod/${svc}`]);
    }
    // The feed's newest entry is the last change.
    expect(await page.locator('.feed li').first().getAttribute('data-revision')).toBe(String(revision));
    expect(errors).toEqual([]);
    await page.close();
  });
});
