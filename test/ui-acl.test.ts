/**
 * The monitoring page against a real node started with --acl (a separate process, LevelDB,
 * loopback), in headless Chromium: before bootstrap it says to bootstrap; a pasted token is
 * kept in sessionStorage only (never in the URL, never in the node's logs) and sent as
 * `Authorization: Bearer` on every request and on the watch stream, which then follows live
 * changes; the token is named on the page (GET /v1/acl/token/self); one limited to namespaces
 * is offered only those and lists and follows one at a time; a token the node refuses (401)
 * and one limited to service prefixes (403 on every listing) each show the server's reason.
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
import { http, waitFor } from './helpers/http.js';

const bearer = (secret: string): Record<string, string> => ({ authorization: `Bearer ${secret}` });

describe.skipIf(!browserReady)('monitoring page on a node with --acl', () => {
  let node: LocalCluster;
  let browser: import('playwright-core').BrowserContext;
  let profile: string;
  let url: string;
  let admin = '';
  const logs: string[] = [];

  beforeAll(async () => {
    [node, browser] = await Promise.all([
      LocalCluster.start({ size: 1, logLevel: 'info', extraArgs: ['--acl'], onLog: (_id, line) => logs.push(line) }),
      pw!.chromium.launchPersistentContext((profile = mkdtempSync(path.join(tmpdir(), 'rollcall-chromium-'))), {
        executablePath: CHROMIUM,
        headless: true,
        args: CHROMIUM_ARGS,
        viewport: { width: 1440, height: 900 },
      }),
    ]);
    url = node.nodes[0]!.url;
    await waitFor('the node leads', async () => (await http('GET', `${url}/readyz`)).status === 200, 30_000);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await node?.close();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  async function open() {
    const page = await browser.newPage();
    page.setDefaultTimeout(15_000);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    // Each refused request is a console error of its own ("Failed to load resource"): expected here.
    page.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) errors.push(m.text());
    });
    const requests: { url: string; authorization: string | undefined }[] = [];
    page.on('request', (r) => {
      if (new URL(r.url()).pathname.startsWith('/v1/'))
        requests.push({ url: r.url(), authorization: r.headers().authorization });
    });
    await page.goto(`${url}/ui`);
    return { page, errors, requests };
  }

  const useToken = async (page: import('playwright-core').Page, secret: string) => {
    await page.fill('#token', secret);
    await page.click('#auth button');
  };

  it('before bootstrap: says the node must be bootstrapped', async () => {
    const { page, errors } = await open();
    await page.locator('#auth:not([hidden]) [data-testid="auth-message"]', { hasText: 'bootstrap' }).waitFor();
    expect(await page.locator('[data-testid="auth-message"]').textContent()).toMatch(/401/);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('with a pasted read token: lists, and follows live changes over the watch stream', async () => {
    const boot = await http('POST', `${url}/v1/acl/bootstrap`, {});
    expect(boot.status).toBe(201);
    admin = boot.body.secret;
    const reader = await http('POST', `${url}/v1/acl/tokens`, { name: 'page-viewer', role: 'read' }, bearer(admin));
    expect(reader.status).toBe(201);
    const secret: string = reader.body.secret;
    const put = (id: string) =>
      http(
        'PUT',
        `${url}/v1/namespaces/prod/services/orders/instances/${id}`,
        { address: '10.4.0.1', port: 80 },
        bearer(admin),
      );
    expect((await put('acl-1')).status).toBe(200);

    const { page, errors, requests } = await open();
    await page.locator('#auth:not([hidden])').waitFor();
    await useToken(page, secret);
    await page.locator('[data-instance="prod/orders/acl-1"]').waitFor();
    await page.locator('#watch.live-live').waitFor();
    await page.locator('[data-member="n1"][data-role="leader"]').waitFor();
    expect(await page.locator('#auth').isHidden()).toBe(true);
    // An unlimited token: named, and no namespace to choose.
    await page.locator('[data-testid="token-who"]', { hasText: 'page-viewer (read)' }).waitFor();
    expect(await page.locator('#namespace-pick').isHidden()).toBe(true);
    expect((await put('acl-2')).status).toBe(200);
    await page.locator('[data-instance="prod/orders/acl-2"]').waitFor();

    // Every API request after the reload carried the token, the watch stream included; the
    // token is in this tab's sessionStorage only, never in a URL or the node's logs.
    const sent = requests.filter((r) => r.authorization !== undefined);
    expect(sent.every((r) => r.authorization === `Bearer ${secret}`)).toBe(true);
    expect(sent.some((r) => new URL(r.url).pathname === '/v1/watch')).toBe(true);
    expect(sent.some((r) => new URL(r.url).pathname === '/v1/alerts/stream')).toBe(true);
    expect(requests.some((r) => r.url.includes(secret))).toBe(false);
    expect(page.url()).not.toContain(secret);
    expect(await page.evaluate<string | null>("sessionStorage.getItem('rollcall.token')")).toBe(secret);
    expect(await page.evaluate<number>('localStorage.length')).toBe(0);
    expect(logs.some((l) => l.includes(secret))).toBe(false);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('a token the node refuses: says why, and forgets it', async () => {
    const { page, errors } = await open();
    await page.locator('#auth:not([hidden])').waitFor();
    await useToken(page, 'rc_not-a-real-token');
    await page.locator('[data-testid="auth-message"]', { hasText: 'not valid' }).waitFor();
    // Sent again and again it would count against this address's failed-authentication limit.
    expect(await page.evaluate<string | null>("sessionStorage.getItem('rollcall.token')")).toBeNull();
    expect(errors).toEqual([]);
    await page.close();
  });

  it('a token limited to namespaces: names itself, offers only its namespaces, lists and follows one', async () => {
    const put = (ns: string, svc: string, id: string) =>
      http(
        'PUT',
        `${url}/v1/namespaces/${ns}/services/${svc}/instances/${id}`,
        { address: '10.4.0.9', port: 80 },
        bearer(admin),
      );
    expect((await put('dev', 'web', 'dev-1')).status).toBe(200);
    expect((await put('staging', 'web', 'stg-1')).status).toBe(200);
    const scoped = await http(
      'POST',
      `${url}/v1/acl/tokens`,
      { name: 'dev-viewer', role: 'read', namespaces: ['staging', 'dev'] },
      bearer(admin),
    );
    expect(scoped.status).toBe(201);
    const { page, errors, requests } = await open();
    await page.locator('#auth:not([hidden])').waitFor();
    await useToken(page, scoped.body.secret);
    // The node describes the token (GET /v1/acl/token/self): its name and role, and only its namespaces.
    await page.locator('[data-testid="token-who"]', { hasText: 'dev-viewer (read)' }).waitFor();
    expect(await page.locator('[data-testid="namespace"] option').allTextContents()).toEqual(['dev', 'staging']);
    expect(await page.locator('[data-testid="namespace"]').inputValue()).toBe('dev');
    await page.locator('[data-instance="dev/web/dev-1"]').waitFor();
    await page.locator('#watch.live-live').waitFor();
    // Nothing was refused: the listing, the watch and the reports name the token's namespace.
    expect(await page.locator('#auth').isHidden()).toBe(true);
    expect(await page.locator('[data-instance="prod/orders/acl-1"]').count()).toBe(0);
    expect(await page.locator('[data-instance="staging/web/stg-1"]').count()).toBe(0);
    for (const p of ['/v1/services', '/v1/watch', '/v1/health/reports'])
      expect(
        requests.some((r) => new URL(r.url).pathname === p && new URL(r.url).searchParams.get('namespace') === 'dev'),
        p,
      ).toBe(true);
    expect((await put('dev', 'web', 'dev-2')).status).toBe(200);
    await page.locator('[data-instance="dev/web/dev-2"]').waitFor();

    // Another of its namespaces: that one's instances instead.
    await page.selectOption('[data-testid="namespace"]', 'staging');
    await page.locator('[data-instance="staging/web/stg-1"]').waitFor();
    expect(await page.locator('[data-instance="dev/web/dev-1"]').count()).toBe(0);
    expect(await page.locator('#auth').isHidden()).toBe(true);
    expect(errors).toEqual([]);
    await page.close();
  });

  it('a token limited to service prefixes: 403 with the reason, its scope named', async () => {
    const scoped = await http(
      'POST',
      `${url}/v1/acl/tokens`,
      { name: 'pay-viewer', role: 'read', servicePrefixes: ['pay'] },
      bearer(admin),
    );
    expect(scoped.status).toBe(201);
    const { page, errors } = await open();
    await page.locator('#auth:not([hidden])').waitFor();
    await useToken(page, scoped.body.secret);
    await page.locator('[data-testid="auth-message"]', { hasText: '403' }).waitFor();
    await page.locator('[data-testid="token-who"]', { hasText: 'pay-viewer (read; services pay*)' }).waitFor();
    // A token that is valid but not enough here is kept: the person may still see what it allows.
    expect(await page.evaluate<string | null>("sessionStorage.getItem('rollcall.token')")).toBe(scoped.body.secret);
    expect(errors).toEqual([]);
    await page.close();
  });
});
