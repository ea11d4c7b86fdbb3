/**
 * What the instance routes share: the error lists and reply shapes they document, and how
 * an instance is answered (body and ETag).
 */
import type { FastifyReply } from 'fastify';
import type { CommandResult, Instance } from '../../../registry/index.js';
import { present } from '../../present.js';

export const WRITE_ERRORS = [
  'NO_LEADER',
  'PROPOSAL_DROPPED',
  'TRANSFER_IN_PROGRESS',
  'SHUTTING_DOWN',
  'TIMEOUT',
  'STALE_REQUEST',
  'INVALID_COMMAND',
] as const;
export const READ_ERRORS = ['INVALID_ARGUMENT', 'NO_LEADER', 'SHUTTING_DOWN', 'TIMEOUT'] as const;
export const PAGE_ERRORS = ['LIMIT_EXCEEDED', 'COMPACTED'] as const;

export const INSTANCE_REPLY = { $ref: '#/components/schemas/InstanceReply' };
export const ETAG = { etag: 'The instance version, quoted: use it as If-Match.' };

/**
 * A write's answer: the instance exactly as this write left it (captured at apply time).
 * A retried write answered from the deduplication table after the instance changed again
 * cannot show that state: it answers `instance: null` with `replayed: true` and the
 * version the write produced.
 */
export function writeReply(
  reply: FastifyReply,
  r: CommandResult & { ok: true },
  at: Instance | null | undefined,
  current: Instance | undefined,
): unknown {
  // Without a captured state, the current one is this write's only if the version says so.
  if (at === undefined && current !== undefined && current.version === r.version)
    return instanceReply(reply, r.revision, current);
  if (at === undefined) {
    if (r.version !== undefined) reply.header('etag', `"${r.version}"`);
    return { revision: r.revision, version: r.version ?? null, instance: null, replayed: true };
  }
  return instanceReply(reply, r.revision, at ?? undefined);
}

export function instanceReply(reply: FastifyReply, revision: number, instance: Instance | undefined): unknown {
  if (instance) reply.header('etag', `"${instance.version}"`);
  return { revision, instance: instance ? present(instance) : null };
}
