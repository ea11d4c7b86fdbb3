import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests of work not yet wired in (see the notes on the open issues); they run again once it lands.
    exclude: ['test/pending/**', 'node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Cluster tests start real processes; two cores cannot run many at once.
    maxWorkers: 2,
  },
});
