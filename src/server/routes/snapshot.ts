/**
 * GET /v1/snapshot: a backup of the registry at one revision, from any node, followers
 * included. Linearizable by default (a read barrier first, so it holds every write
 * acknowledged before the request), then one LevelDB snapshot of this node's applied
 * state streamed in the backup file format (src/ops/backup-format.ts) with backpressure:
 * writes go on meanwhile. Admin only: the file holds every record of the registry.
 */
import { Readable } from 'node:stream';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import type { OpenBackup } from '../../ops/backup-stream.js';
import type { ServerContext } from '../context.js';
import { sendError, sendNodeError } from '../errors.js';
import { Consistency } from '../schemas.js';

const snapshotQuery = Type.Object(
  {
    consistency: Type.Optional(
      Consistency(
        "linearizable (default): first confirm with the leader that this node has applied every acknowledged write; serializable: this node's applied state at once (works without a leader).",
      ),
    ),
  },
  { additionalProperties: false },
);

export const SNAPSHOT_CONTENT_TYPE = 'application/vnd.rollcall.snapshot';

export function snapshotRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const { node, logger } = ctx;

  app.withTypeProvider<TypeBoxTypeProvider>().get(
    '/v1/snapshot',
    {
      schema: { querystring: snapshotQuery },
      config: {
        access: 'admin',
        docs: {
          operationId: 'getSnapshot',
          tag: 'operations',
          summary: 'Stream a backup of the registry at one revision (admin)',
          description:
            'Any node, followers included, streams its applied state as of one revision: the snapshot file of docs/operations.md (magic, a header with the cluster id, revision, applied index and term and the counts, the records, and a SHA-256 trailer). ' +
            'Writes go on while it streams. `rollcall snapshot save FILE` calls it, verifies the file and renames it into place. The header fields are also sent as `x-rollcall-snapshot-*` response headers.',
          responses: {
            200: {
              description: 'The snapshot file (binary).',
              contentType: SNAPSHOT_CONTENT_TYPE,
              schema: { type: 'string', format: 'binary' },
              headers: {
                'x-rollcall-revision': 'the revision the snapshot holds',
                'x-rollcall-snapshot-index': 'the Raft index (and `-term`) the state reflects',
                'x-rollcall-snapshot-pairs': 'state-machine records in the file',
              },
            },
          },
          errors: ['INVALID_ARGUMENT', 'NO_LEADER', 'SHUTTING_DOWN', 'TIMEOUT'],
        },
      },
    },
    async (req, reply) => {
      if (node.openBackup === undefined) return sendError(reply, 'INTERNAL', 'this node cannot take snapshots');
      if (req.query.consistency !== 'serializable') {
        try {
          await node.readBarrier(ctx.limits.timeoutMs);
        } catch (err) {
          return sendNodeError(reply, err);
        }
      }
      let backup: OpenBackup;
      try {
        backup = await node.openBackup();
      } catch (err) {
        return sendNodeError(reply, err);
      }
      const { header } = backup;
      const log = logger.child({ route: 'snapshot', revision: header.revision, index: header.applied.index });
      log.info({ pairs: header.counts.pairs }, 'streaming a snapshot');
      // The body releases the LevelDB snapshot when it ends or is destroyed (a client that
      // goes away); this covers a response that ends before the body was ever pulled.
      reply.raw.once(
        'close',
        () => void backup.close().catch((err: unknown) => log.warn({ err }, 'releasing the snapshot failed')),
      );
      reply
        .header('content-type', SNAPSHOT_CONTENT_TYPE)
        .header('content-disposition', `attachment; filename="rollcall-${header.revision}.snap"`)
        .header('x-rollcall-revision', String(header.revision))
        .header('x-rollcall-snapshot-index', String(header.applied.index))
        .header('x-rollcall-snapshot-term', String(header.applied.term))
        .header('x-rollcall-snapshot-pairs', String(header.counts.pairs));
      return reply.send(Readable.from(logged(backup.body, log)));
    },
  );
}

/** Passes the pieces on; a read failure halfway is logged (the client sees a truncated file and refuses it). */
async function* logged(body: AsyncGenerator<Buffer>, log: ServerContext['logger']): AsyncGenerator<Buffer> {
  let bytes = 0;
  try {
    for await (const piece of body) {
      bytes += piece.byteLength;
      yield piece;
    }
    log.info({ bytes }, 'snapshot sent');
  } catch (err) {
    log.error({ err, bytes }, 'reading the snapshot failed halfway; the client gets a truncated file');
    throw err;
  }
}
