/**
 * The monitoring page's scripts are the TypeScript of src/ui/browser/ compiled for the browser:
 * what /ui/assets serves is exactly what tsc emits from today's source, the built module finds
 * the files beside itself whatever the cwd (as an installed package runs), and the page boots
 * in headless Chromium, loading every script, with no error.
 *
 * Needs `npm run build` first (npm test does it). The browser part is skipped without
 * playwright-core or /usr/bin/chromium, except under CI, where it fails.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log/index.js';
import { buildApp } from '../src/server/app.js';
import { ASSETS } from '../src/ui/assets/index.js';
import { browserReady, CHROMIUM, CHROMIUM_ARGS, pw } from './helpers/chromium.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BUILT = path.join(ROOT, 'dist/src/ui/browser');

/** The files the browser build emits, with the options it emits them with. */
function browserBuild(): { files: string[]; options: ts.CompilerOptions } {
  const host = {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: (d: ts.Diagnostic) =>
      expect.fail(ts.flattenDiagnosticMessageText(d.messageText, '\n')),
  };
  const parsed = ts.getParsedCommandLineOfConfigFile(path.join(ROOT, 'src/ui/browser/tsconfig.build.json'), {}, host);
  if (!parsed) throw new Error('src/ui/browser/tsconfig.build.json did not parse');
  return { files: parsed.fileNames, options: parsed.options };
}

describe('the page scripts', () => {
  it('are served as tsc compiles the current src/ui/browser/, one per module', () => {
    const { files, options } = browserBuild();
    const served = [...ASSETS.keys()].filter((n) => n.endsWith('.js')).sort();
    expect(files.map((f) => `${path.basename(f, '.ts')}.js`).sort()).toEqual(served);
    for (const file of files) {
      const name = `${path.basename(file, '.ts')}.js`;
      const compiled = ts.transpileModule(readFileSync(file, 'utf8'), {
        compilerOptions: options,
        fileName: file,
      }).outputText;
      // Unequal: the source changed since the last build (npm run build:ui), or the server serves something else.
      expect(ASSETS.get(name)!.body.toString('utf8'), name).toBe(compiled);
    }
  });

  it('are found by the built server beside its own module, from any working directory', () => {
    const elsewhere = mkdtempSync(path.join(tmpdir(), 'rollcall-cwd-'));
    try {
      const module = path.join(ROOT, 'dist/src/ui/assets/index.js');
      const script = `const { ASSETS } = await import(${JSON.stringify(module)}); for (const [n, a] of ASSETS) if (n.endsWith('.js')) console.log(n, a.body.length);`;
      const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {
        cwd: elsewhere,
        encoding: 'utf8',
      });
      const lines = out.trim().split('\n').sort();
      expect(lines).toEqual(
        [...ASSETS.keys()]
          .filter((n) => n.endsWith('.js'))
          .sort()
          .map((n) => `${n} ${readFileSync(path.join(BUILT, n)).length}`),
      );
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!browserReady)('the page in Chromium', () => {
  it('boots with every script loaded and no error, and fills each section', async () => {
    const app = buildApp({ node: await InMemoryNodeApi.create(), logger: silentLogger() });
    const profile = mkdtempSync(path.join(tmpdir(), 'rollcall-chromium-'));
    const browser = await pw!.chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    try {
      const url = await app.listen({ host: '127.0.0.1', port: 0 });
      const page = await browser.newPage();
      page.setDefaultTimeout(15_000);
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') errors.push(m.text());
      });
      const scripts = new Map<string, number>();
      page.on('response', (r) => {
        const name = new URL(r.url()).pathname.match(/^\/ui\/assets\/(.+\.js)$/)?.[1];
        if (name) scripts.set(name, r.status());
      });
      await page.goto(`${url}/ui`);
      // One mark per module: the watch (app, api, store), the cluster table (view-cluster, dom),
      // the services list (view-services), alerts and the policy table (view-side).
      await page.locator('#watch.live-live').waitFor();
      await page.locator('[data-member="fake1"][data-role="leader"]').waitFor();
      await page.locator('#services .empty', { hasText: 'No services registered yet.' }).waitFor();
      await page.locator('#alerts .empty', { hasText: 'No active alerts.' }).waitFor();
      await page.locator('#policy [data-policy="defaults"]').waitFor();
      expect(Object.fromEntries(scripts)).toEqual(
        Object.fromEntries([...ASSETS.keys()].filter((n) => n.endsWith('.js')).map((n) => [n, 200])),
      );
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
      await app.close();
      rmSync(profile, { recursive: true, force: true });
    }
  });
});
