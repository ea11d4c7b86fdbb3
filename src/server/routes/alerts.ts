/**
 * GET /v1/alerts (active alerts and recent events, as JSON) and GET /v1/alerts/stream
 * (Server-Sent Events: a `snapshot` of the active alerts on connect, then one `alert`
 * event per fired or resolved alert, `id:` = its sequence number). Served by every node
 * from its own view.
 */

import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import type { AlertMonitor } from '../../health/index.js';

/** A subscriber whose socket holds more than this unsent is cut (alerts are rare; it is not reading). */
const MAX_BUFFERED = 1 << 20;
const KEEPALIVE_MS = 15_000;

const ALERT_SCHEMA = {
  type: 'object',
  properties: {
    id: { type: 'string', description: '`<kind>:<subject>`, stable across fire and resolve.' },
    kind: {
      type: 'string',
      enum: [
        'service-min-healthy',
        'service-subhealthy',
        'expiry-protection',
        'node-lagging',
        'node-unreachable',
        'no-leader',
        'node-corrupt',
      ],
    },
    severity: { type: 'string', enum: ['warning', 'critical'] },
    subject: { type: 'string' },
    message: { type: 'string' },
    value: { type: 'number' },
    threshold: { type: 'number' },
    since: { type: 'integer', description: 'When it fired (ms since epoch).' },
  },
} as const;

export function alertRoutes(app: FastifyInstance, monitor: AlertMonitor): void {
  const streams = new Set<ServerResponse>();
  app.addHook('preClose', async () => {
    for (const res of streams) res.end();
    streams.clear();
  });

  app.get(
    '/v1/alerts',
    {
      config: {
        access: 'read',
        docs: {
          operationId: 'listAlerts',
          tag: 'operations',
          summary: 'Active alerts and recent alert events, as this node sees them',
          responses: {
            200: {
              description: 'Alerts.',
              schema: {
                type: 'object',
                properties: {
                  node: { type: 'string' },
                  seq: { type: 'integer' },
                  active: { type: 'array', items: ALERT_SCHEMA },
                  recent: { type: 'array', items: { type: 'object' } },
                },
              },
            },
          },
          errors: [],
        },
      },
    },
    async () => ({ seq: monitor.engine.seq, active: monitor.engine.active(), recent: monitor.engine.recent() }),
  );

  app.get(
    '/v1/alerts/stream',
    {
      config: {
        access: 'read',
        docs: {
          operationId: 'streamAlerts',
          tag: 'watch',
          summary: 'Fired and resolved alerts (Server-Sent Events)',
          description:
            'On connect: `event: snapshot` with `{"seq", "alerts": [...]}` (the active alerts). Then `event: alert` with `{"seq", "type": "fired" | "resolved", "at", "alert"}` and `id:` = seq. ' +
            'A reconnecting client gets a fresh snapshot, so nothing needs replaying.',
          responses: {
            200: { description: 'An event stream.', contentType: 'text/event-stream', schema: ALERT_SCHEMA },
          },
          errors: [],
        },
      },
    },
    async (req, reply) => {
      if (req.method === 'HEAD')
        return reply.code(200).header('content-type', 'text/event-stream; charset=utf-8').send();
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        'x-accel-buffering': 'no',
        connection: 'close',
      });
      res.write(
        `retry: 2000\n\nevent: snapshot\ndata: ${JSON.stringify({ seq: monitor.engine.seq, alerts: monitor.engine.active() })}\n\n`,
      );
      streams.add(res);
      const unsubscribe = monitor.subscribe((e) => {
        if (res.writableLength > MAX_BUFFERED) {
          res.destroy();
          return;
        }
        res.write(`event: alert\nid: ${e.seq}\ndata: ${JSON.stringify(e)}\n\n`);
      });
      const keepalive = setInterval(() => res.write(': keepalive\n\n'), KEEPALIVE_MS);
      keepalive.unref();
      res.on('close', () => {
        clearInterval(keepalive);
        unsubscribe();
        streams.delete(res);
      });
      return reply;
    },
  );
}
