/**
 * The HTTP API of one node (fastify). Every node serves every route: writes are
 * forwarded to the leader, reads are linearizable by default (ReadIndex, then wait for
 * apply) or served locally with `?consistency=serializable`.
 *
 * Every response carries `x-rollcall-revision` (the revision the answer reflects),
 * `x-rollcall-node` (who answered) and `x-rollcall-leader` (who leads, if known).
 */
import Fastify from 'fastify';
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../log/index.js';
import type { RollcallNode } from '../node/index.js';
import { NodeError } from '../node/index.js';
import type { ClientCommand, ClientRef, CommandResult, Instance } from '../registry/index.js';
import { parseCommand } from '../registry/index.js';
import { errorBody, sendCommandError, sendNodeError } from './errors.js';
import { instanceParams, readQuery, registerBody, serviceParams, sessionBody, sessionParams } from './schemas.js';

export interface AppOptions {
  readonly node: RollcallNode;
  readonly logger: Logger;
  /** Deadline for a write or a linearizable read, in ms. */
  readonly requestTimeoutMs?: number;
  readonly bodyLimit?: number;
}

type ServiceParams = { ns: string; svc: string };
type InstanceParams = ServiceParams & { id: string };
type ReadQuery = { consistency?: 'linearizable' | 'serializable'; cluster?: string };

export function buildApp(options: AppOptions): FastifyInstance {
  const { node } = options;
  const timeoutMs = options.requestTimeoutMs ?? 5000;
  const app = Fastify({
    loggerInstance: options.logger.child({ part: 'http' }) as unknown as FastifyBaseLogger,
    // Requests are logged at debug: a busy registry must not flood the on-call log.
    disableRequestLogging: true,
    bodyLimit: options.bodyLimit ?? 256 * 1024,
    ajv: { customOptions: { allErrors: false, coerceTypes: 'array', removeAdditional: false } },
  });

  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('x-rollcall-node', node.id);
    if (node.leader) reply.header('x-rollcall-leader', node.leader);
    if (!reply.hasHeader('x-rollcall-revision')) reply.header('x-rollcall-revision', String(node.registry.revision));
    return payload;
  });

  app.setErrorHandler((err: FastifyError, _req, reply) => {
    if (err.validation) {
      const v = err.validation[0];
      const field = validationField(err.validationContext ?? 'body', v);
      return reply.code(400).send(errorBody('INVALID_ARGUMENT', `${field}: ${v?.message ?? 'is invalid'}`, { field }));
    }
    if (err instanceof NodeError) return sendNodeError(reply, err);
    if (err.statusCode === 413) return reply.code(413).send(errorBody('BODY_TOO_LARGE', err.message));
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.code(err.statusCode).send(errorBody(err.code ?? 'BAD_REQUEST', err.message));
    }
    options.logger.error({ err }, 'unexpected error serving a request');
    return reply.code(500).send(errorBody('INTERNAL', 'internal error'));
  });

  app.setNotFoundHandler((req, reply) => reply.code(404).send(errorBody('ROUTE_NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`)));

  /** Validates like the state machine will, proposes, and answers with the applied result. */
  async function write(req: FastifyRequest, reply: FastifyReply, command: ClientCommand, ok: (r: CommandResult & { ok: true }) => unknown): Promise<unknown> {
    const client = clientRef(req);
    if (client && 'error' in client) return reply.code(400).send(errorBody('INVALID_ARGUMENT', client.error, { field: client.field }));
    const full = (client ? { ...command, client } : command) as ClientCommand;
    const checked = parseCommand(full);
    if (!checked.ok) return sendCommandError(reply, checked);
    try {
      const { result } = await node.submit(full, timeoutMs);
      if (!result.ok) return sendCommandError(reply, result);
      reply.header('x-rollcall-revision', String(result.revision));
      return ok(result);
    } catch (err) {
      return sendNodeError(reply, err);
    }
  }

  /** Waits for a linearizable read point unless the client asked for serializable. */
  async function readPoint(q: ReadQuery, reply: FastifyReply): Promise<boolean> {
    if (q.consistency === 'serializable') return true;
    try {
      await node.readBarrier(timeoutMs);
      return true;
    } catch (err) {
      sendNodeError(reply, err);
      return false;
    }
  }

  // ---- sessions ---------------------------------------------------------------------

  app.post<{ Body: { ttlMs: number } }>('/v1/sessions', { schema: { body: sessionBody } }, async (req, reply) => {
    const sessionId = (req.headers['x-rollcall-session-id'] as string | undefined) ?? newId();
    const command: ClientCommand = { type: 'openSession', sessionId, ttlMs: req.body.ttlMs, now: Date.now() };
    return write(req, reply, command, () => reply.code(201).send({ id: sessionId, ttlMs: req.body.ttlMs }));
  });

  app.put<{ Params: { id: string } }>('/v1/sessions/:id/keepalive', { schema: { params: sessionParams } }, async (req, reply) => {
    try {
      const outcome = await node.keepalive(req.params.id, timeoutMs);
      if (outcome === 'unknown') return reply.code(404).send(errorBody('SESSION_NOT_FOUND', `session ${req.params.id} does not exist (expired or closed)`));
      return { id: req.params.id, ok: true, expiring: outcome === 'expiring' };
    } catch (err) {
      return sendNodeError(reply, err);
    }
  });

  app.delete<{ Params: { id: string } }>('/v1/sessions/:id', { schema: { params: sessionParams } }, async (req, reply) =>
    write(req, reply, { type: 'closeSession', sessionId: req.params.id }, (r) => ({ revision: r.revision, deleted: r.count ?? 0 })),
  );

  // ---- instances --------------------------------------------------------------------

  app.put<{ Params: InstanceParams; Body: Record<string, unknown> }>(
    '/v1/namespaces/:ns/services/:svc/instances/:id',
    { schema: { params: instanceParams, body: registerBody } },
    async (req, reply) => {
      const { ns, svc, id } = req.params;
      const command = { type: 'register', namespace: ns, service: svc, id, ...req.body } as ClientCommand;
      return write(req, reply, command, (r) => {
        const instance = node.registry.getInstance(ns, svc, id);
        return { revision: r.revision, instance: instance ? present(instance) : null };
      });
    },
  );

  app.delete<{ Params: InstanceParams }>('/v1/namespaces/:ns/services/:svc/instances/:id', { schema: { params: instanceParams } }, async (req, reply) => {
    const { ns, svc, id } = req.params;
    return write(req, reply, { type: 'unregister', namespace: ns, service: svc, id }, (r) => ({ revision: r.revision, deleted: r.changed }));
  });

  app.get<{ Params: ServiceParams; Querystring: ReadQuery }>(
    '/v1/namespaces/:ns/services/:svc/instances',
    { schema: { params: serviceParams, querystring: readQuery } },
    async (req, reply) => {
      if (!(await readPoint(req.query, reply))) return reply;
      const list = node.registry.listInstances(req.params.ns, req.params.svc, req.query.cluster ? { cluster: req.query.cluster } : {});
      reply.header('x-rollcall-revision', String(list.revision));
      reply.header('x-rollcall-index', String(list.serviceRevision));
      return { revision: list.revision, serviceRevision: list.serviceRevision, instances: list.instances.map(present) };
    },
  );

  app.get<{ Params: InstanceParams; Querystring: ReadQuery }>(
    '/v1/namespaces/:ns/services/:svc/instances/:id',
    { schema: { params: instanceParams, querystring: readQuery } },
    async (req, reply) => {
      if (!(await readPoint(req.query, reply))) return reply;
      const { ns, svc, id } = req.params;
      const revision = node.registry.revision;
      const instance = node.registry.getInstance(ns, svc, id);
      reply.header('x-rollcall-revision', String(revision));
      if (!instance) return reply.code(404).send(errorBody('INSTANCE_NOT_FOUND', `no instance ${id} in ${ns}/${svc}`));
      return { revision, instance: present(instance) };
    },
  );

  // ---- cluster ----------------------------------------------------------------------

  app.get('/v1/cluster', async () => {
    const st = node.status();
    const now = Date.now();
    return {
      leader: st.leader,
      term: st.term,
      revision: st.revision,
      protection: st.protection,
      members: st.members.map((m) => {
        const r = m.reported;
        const isSelf = m.id === st.id;
        return {
          id: m.id,
          role: isSelf ? st.role : r ? r.role : 'unknown',
          voter: !m.isLearner,
          term: isSelf ? st.term : (r?.term ?? null),
          commitIndex: isSelf ? st.commitIndex : (r?.commitIndex ?? null),
          appliedIndex: isSelf ? st.appliedIndex : (r?.appliedIndex ?? null),
          lag: r || isSelf ? Math.max(0, st.commitIndex - (isSelf ? st.appliedIndex : r!.appliedIndex)) : null,
          match: m.match,
          http: isSelf ? (r?.http ?? null) : (r?.http ?? null),
          connected: m.connected,
          lastContactMs: m.lastContact === null ? null : Math.max(0, now - m.lastContact),
        };
      }),
    };
  });

  app.get('/healthz', async () => ({ ok: true, node: node.id }));

  return app;
}

/** What clients see of an instance. */
function present(i: Instance): Record<string, unknown> {
  return {
    id: i.id,
    namespace: i.namespace,
    service: i.service,
    cluster: i.cluster,
    address: i.address,
    port: i.port,
    weight: i.weight,
    tags: i.tags,
    metadata: i.metadata,
    health: i.health,
    enabled: i.enabled,
    ephemeral: i.sessionId !== null,
    ...(i.sessionId !== null ? { sessionId: i.sessionId } : {}),
    createRevision: i.createRevision,
    modRevision: i.modRevision,
    version: i.version,
  };
}

/** Exactly-once: `x-rollcall-client-id` and `x-rollcall-seq` make a retry apply once. */
function clientRef(req: FastifyRequest): ClientRef | { error: string; field: string } | null {
  const id = req.headers['x-rollcall-client-id'];
  const seq = req.headers['x-rollcall-seq'];
  if (id === undefined && seq === undefined) return null;
  if (typeof id !== 'string' || id.length === 0 || id.length > 128) return { error: 'x-rollcall-client-id must be 1-128 characters', field: 'x-rollcall-client-id' };
  const n = Number(seq);
  if (typeof seq !== 'string' || !Number.isSafeInteger(n) || n < 1) return { error: 'x-rollcall-seq must be a positive integer', field: 'x-rollcall-seq' };
  return { id, seq: n };
}

function validationField(context: string, v: { instancePath?: string; params?: Record<string, unknown> } | undefined): string {
  const path = (v?.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
  const missing = v?.params?.missingProperty as string | undefined;
  const extra = v?.params?.additionalProperty as string | undefined;
  const leaf = missing ?? extra;
  const full = [path, leaf].filter(Boolean).join('.');
  return full || context;
}

function newId(): string {
  // 16 random bytes, URL-safe.
  return Buffer.from(crypto.getRandomValues(new Uint8Array(12))).toString('hex');
}
