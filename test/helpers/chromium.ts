/**
 * Debian's Chromium driven by playwright-core, for the browser tests (test/ui-*.test.ts).
 * Where either is missing the tests skip, except in CI, which installs both
 * (.ci/install-chromium.sh) and must not pass by skipping.
 */
import { existsSync } from 'node:fs';

export const CHROMIUM = '/usr/bin/chromium';

/** Headless flags: no sandbox (containers), no GPU, nothing fetched from outside. */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

// A variable specifier: the test files still load (and skip) where playwright-core is not installed.
const PW = 'playwright-core';
export const pw = (await import(PW).catch(() => null)) as typeof import('playwright-core') | null;
export const browserReady = pw !== null && existsSync(CHROMIUM);
if (!browserReady && process.env.CI)
  throw new Error(`browser tests need playwright-core and ${CHROMIUM} (run .ci/install-chromium.sh)`);
