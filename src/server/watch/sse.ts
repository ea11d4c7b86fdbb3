/**
 * Server-Sent Events framing (https://html.spec.whatwg.org/multipage/server-sent-events.html).
 * JSON never contains a raw newline, so every payload fits one `data:` line.
 *
 * Frames are built once and the same Buffer is written to every watcher that wants it.
 */
import type { RegistryEvent } from '../../registry/index.js';
import { present } from '../present.js';

/** A change: `id:` is the revision, so an EventSource resumes with `Last-Event-ID` by itself. */
export function changeFrame(revision: number, payload: unknown): Buffer {
  return Buffer.from(`id: ${revision}\ndata: ${JSON.stringify(payload)}\n\n`, 'utf8');
}

/** A named control event (`progress`, `compacted`, `overflow`); `id` only where resuming after it is safe. */
export function namedFrame(event: string, payload: unknown, id?: number): Buffer {
  return Buffer.from(
    `event: ${event}\n${id === undefined ? '' : `id: ${id}\n`}data: ${JSON.stringify(payload)}\n\n`,
    'utf8',
  );
}

/** A comment line; clients ignore it. */
export function commentFrame(text: string): Buffer {
  return Buffer.from(`: ${text.replace(/[\r\n]/g, ' ')}\n\n`, 'utf8');
}

/** The JSON a watcher sees for a registry event. */
export function eventPayload(e: RegistryEvent): Record<string, unknown> {
  const out: Record<string, unknown> = { revision: e.revision, type: e.type, instance: present(e.instance) };
  if (e.type === 'put' && e.previous !== undefined) out.previous = present(e.previous);
  out.cause = e.cause;
  return out;
}
