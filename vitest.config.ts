import { defineConfig } from 'vitest/config';
import { ProcessesFirstSequencer } from './test/helpers/sequencer.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Cluster tests start real processes; two cores cannot run many at once.
    maxWorkers: 2,
    // Without cached durations (a fresh clone), the cluster tests first: test/helpers/sequencer.ts.
    sequence: { sequencer: ProcessesFirstSequencer },
  },
});
