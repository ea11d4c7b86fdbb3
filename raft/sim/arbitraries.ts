/** fast-check generators of fault schedules for the simulator. */
import fc from 'fast-check';
import type { SimAction } from './index.js';

const node = fc.integer({ min: 0, max: 4 });

export const actionArb: fc.Arbitrary<SimAction> = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 1, max: 1500 }).map((ms) => ({ type: 'wait', ms }) as const) },
  { weight: 8, arbitrary: fc.integer({ min: 1, max: 20 }).map((count) => ({ type: 'propose', count }) as const) },
  { weight: 2, arbitrary: node.map((n) => ({ type: 'proposeOn', node: n }) as const) },
  { weight: 8, arbitrary: node.map((n) => ({ type: 'read', node: n }) as const) },
  { weight: 2, arbitrary: node.map((n) => ({ type: 'crash', node: n }) as const) },
  { weight: 2, arbitrary: fc.constant({ type: 'crashLeader' } as const) },
  { weight: 3, arbitrary: node.map((n) => ({ type: 'restart', node: n }) as const) },
  { weight: 1, arbitrary: node.map((n) => ({ type: 'pause', node: n }) as const) },
  { weight: 2, arbitrary: node.map((n) => ({ type: 'resume', node: n }) as const) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 3 }).map((split) => ({ type: 'partition', split }) as const) },
  { weight: 2, arbitrary: node.map((n) => ({ type: 'isolate', node: n }) as const) },
  {
    weight: 1,
    arbitrary: fc.record({ from: node, to: node }).map(({ from, to }) => ({ type: 'cutOneWay', from, to }) as const),
  },
  {
    weight: 2,
    arbitrary: fc
      .record({
        loss: fc.double({ min: 0, max: 0.3, noNaN: true }),
        duplicate: fc.double({ min: 0, max: 0.2, noNaN: true }),
        maxDelay: fc.integer({ min: 1, max: 40 }),
      })
      .map((r) => ({ type: 'unreliable', ...r }) as const),
  },
  { weight: 3, arbitrary: fc.constant({ type: 'heal' } as const) },
  { weight: 1, arbitrary: node.map((n) => ({ type: 'transfer', node: n }) as const) },
  { weight: 1, arbitrary: node.map((n) => ({ type: 'addLearner', node: n }) as const) },
  { weight: 1, arbitrary: node.map((n) => ({ type: 'promote', node: n }) as const) },
  { weight: 1, arbitrary: node.map((n) => ({ type: 'remove', node: n }) as const) },
  { weight: 2, arbitrary: fc.integer({ min: 5, max: 60 }).map((rounds) => ({ type: 'figure8', rounds }) as const) },
);

export const scheduleArb = fc.record({
  simSeed: fc.integer({ min: 1, max: 0x7fffffff }),
  voters: fc.constantFrom(3, 5),
  compactEvery: fc.constantFrom(0, 10, 40),
  // 1 byte = one entry per append, which exposes commit-rule bugs that batching hides.
  maxMessageBytes: fc.constantFrom(1, 300, 4096),
  actions: fc.array(actionArb, { minLength: 5, maxLength: 100 }),
});
