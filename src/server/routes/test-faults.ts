/**
 * Fault injection for the fault and linearizability tests, served only when the node
 * runs with ROLLCALL_TEST_FAULTS=1: isolate this node from some peers (both directions,
 * or one way, every message or only some kinds), slow its log compaction, hold its main
 * event loop once (blockEventLoopMs), and heal.
 * Admin when auth is on; left out of the API description (it has no `docs`).
 */
import type { FastifyInstance } from 'fastify';
import type { RollcallNode } from '../../node/index.js';

const faultsBody = {
  type: 'object',
  additionalProperties: false,
  properties: {
    dropTo: { type: 'array', items: { type: 'string', maxLength: 64 }, maxItems: 16 },
    dropFrom: { type: 'array', items: { type: 'string', maxLength: 64 }, maxItems: 16 },
    // Only these message kinds: 'raft:<type>' (raft:heartbeat, raft:appendResponse, ...) or a
    // node message ('propose', 'keepalive', 'admin', 'status', and their '...Result').
    kinds: { type: 'array', items: { type: 'string', maxLength: 64 }, maxItems: 32 },
    // Each log compaction on this node takes this much longer (a slow disk).
    compactDelayMs: { type: 'integer', minimum: 0, maximum: 60_000 },
    // Each synced Raft write on this node takes this much longer (a slow fsync).
    persistDelayMs: { type: 'integer', minimum: 0, maximum: 60_000 },
    // Each write of applied entries to this node's state machine (LevelDB) takes this much
    // longer (a slow LevelDB write; answers come from memory before it ends).
    stateWriteDelayMs: { type: 'integer', minimum: 0, maximum: 60_000 },
    // Once, after the answer is sent: busy-loop this node's main thread for this long (a hung
    // event loop; the probe listener's test). Not a standing fault: not part of the answer.
    blockEventLoopMs: { type: 'integer', minimum: 0, maximum: 60_000 },
    // Once: write this record into this node's state machine behind the log's back (a
    // corrupt replica, for the corruption check's test). Not a standing fault either.
    writeStateKey: {
      type: 'object',
      additionalProperties: false,
      required: ['key', 'value'],
      properties: { key: { type: 'string', minLength: 1, maxLength: 256 }, value: { type: 'string', maxLength: 4096 } },
    },
  },
} as const;

type FaultsBody = {
  dropTo?: string[];
  dropFrom?: string[];
  kinds?: string[];
  compactDelayMs?: number;
  persistDelayMs?: number;
  stateWriteDelayMs?: number;
  blockEventLoopMs?: number;
  writeStateKey?: { key: string; value: string };
};

/** What the route needs of a node: one that was started with `faults: true`. */
export type FaultableNode = Pick<RollcallNode, 'id' | 'setFaults'> & Partial<Pick<RollcallNode, 'corruptStateForTest'>>;

export function testFaultRoutes(app: FastifyInstance, node: FaultableNode): void {
  app.put<{ Body: FaultsBody }>(
    '/v1/test/faults',
    { schema: { body: faultsBody }, config: { access: 'admin' } },
    async (req, reply) => {
      const faults = {
        dropTo: req.body.dropTo ?? [],
        dropFrom: req.body.dropFrom ?? [],
        kinds: req.body.kinds ?? [],
        compactDelayMs: req.body.compactDelayMs ?? 0,
        persistDelayMs: req.body.persistDelayMs ?? 0,
        stateWriteDelayMs: req.body.stateWriteDelayMs ?? 0,
      };
      node.setFaults(faults);
      if (req.body.writeStateKey !== undefined) {
        if (node.corruptStateForTest === undefined) throw new Error('this node cannot write into its state machine');
        req.log.warn(
          { key: req.body.writeStateKey.key },
          'test fault: writing a record into the state machine outside the log',
        );
        await node.corruptStateForTest(req.body.writeStateKey.key, req.body.writeStateKey.value);
      }
      const blockMs = req.body.blockEventLoopMs ?? 0;
      if (blockMs > 0) {
        req.log.warn({ blockEventLoopMs: blockMs }, 'test fault: blocking the main event loop');
        reply.raw.once('finish', () => setImmediate(() => blockEventLoop(blockMs)));
      }
      return { node: node.id, ...faults };
    },
  );
}

/** Holds the thread: no timer, socket or promise of this thread runs meanwhile. */
function blockEventLoop(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // busy: that is the fault
  }
}
