/**
 * Issue 22, item 4, over real HTTP: a watcher that opens far back (`fromRevision=1`) on a
 * registry with many events and then stops reading is cut like a live one (same byte
 * budget, same `overflow` event naming where to resume) instead of staying in catch-up for
 * ever; what the node holds for it stays bounded meanwhile, and a client that reads again
 * gets every change up to the cut, then the `overflow` event, then the end of the stream.
 */
import type { AddressInfo } from 'node:net';
import { connect, type Socket } from 'node:net';
import { getDefaultHighWaterMark } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { Command } from '../src/registry/index.js';
import { type TestApp, testApp } from './api-helpers.js';
import { HttpWatcher, parseSse, type SseEvent } from './api-sse.js';
import { waitFor } from './helpers/wait.js';

const BUDGET = 64 * 1024;
/** ~4 KB per event: 2,000 of them (8 MB) are more than loopback's kernel buffers take from a client that does not read. */
const BLOB = { blob: 'x'.repeat(4000) };
const reg = (id: string): Command =>
  ({
    type: 'register',
    namespace: 'prod',
    service: 'big',
    id,
    address: '10.0.0.1',
    port: 80,
    metadata: BLOB,
  }) as Command;

const apps: TestApp[] = [];
const sockets: Socket[] = [];
const watchers: HttpWatcher[] = [];
afterEach(async () => {
  for (const w of watchers.splice(0)) w.close();
  for (const s of sockets.splice(0)) s.destroy();
  for (const a of apps.splice(0)) await a.close();
});

async function metrics(t: TestApp): Promise<Record<string, number>> {
  const text = (await t.req({ method: 'GET', url: '/metrics' })).text;
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^(rollcall_watch\S*) (\S+)$/.exec(line);
    if (m) out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** Sends a watch request on a raw socket and does not read a byte until `readToEnd`. */
async function stalledWatch(
  port: number,
  path: string,
): Promise<{ readToEnd(): Promise<{ events: SseEvent[]; complete: boolean }> }> {
  const socket = connect(port, '127.0.0.1');
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  socket.pause();
  socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
  return {
    readToEnd: () =>
      new Promise((resolve) => {
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.once('error', () => undefined);
        socket.once('close', () => {
          const raw = Buffer.concat(chunks);
          const head = raw.indexOf('\r\n\r\n');
          const { body, complete } = dechunk(raw.subarray(head + 4));
          resolve({ events: parseSse(body).events, complete });
        });
        socket.resume();
      }),
  };
}

/** An event's bytes on the wire: its SSE frame in one HTTP chunk (hex size, CRLF, frame, CRLF). */
function chunkBytes(e: SseEvent): number {
  const frame = Buffer.byteLength(
    `${e.id === undefined ? '' : `id: ${e.id}\n`}${e.event === 'message' ? '' : `event: ${e.event}\n`}data: ${JSON.stringify(e.data)}\n\n`,
  );
  return frame.toString(16).length + 2 + frame + 2;
}

/** Decodes a chunked body; `complete` = it ended with the last (empty) chunk, not a cut connection. */
function dechunk(buf: Buffer): { body: string; complete: boolean } {
  const out: Buffer[] = [];
  let i = 0;
  for (;;) {
    const eol = buf.indexOf('\r\n', i);
    if (eol < 0) return { body: Buffer.concat(out).toString('utf8'), complete: false };
    const size = parseInt(buf.subarray(i, eol).toString('latin1'), 16);
    if (size === 0) return { body: Buffer.concat(out).toString('utf8'), complete: true };
    if (!(size > 0) || eol + 2 + size > buf.length)
      return { body: Buffer.concat(out).toString('utf8'), complete: false };
    out.push(buf.subarray(eol + 2, eol + 2 + size));
    i = eol + 2 + size + 2;
  }
}

describe('a watcher that stalls during catch-up', () => {
  it('is cut with an overflow event and its resume point, holding no more than the byte budget meanwhile', async () => {
    // Each change fanned out on its own as it is applied (see the live case below): the cut
    // comes at the change that passes the budget, not at a fan-out some changes later.
    const t = await testApp({ watch: { maxBufferedBytes: BUDGET, progressMinMs: 60_000, fanOut: 'immediate' } });
    apps.push(t);
    for (let i = 0; i < 2000; i++) t.node.apply(reg(`old-${i}`));
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const port = (t.app.server.address() as AddressInfo).port;

    const stalled = await stalledWatch(port, '/v1/watch?namespace=prod&fromRevision=1');
    // Catch-up writes until the kernel's buffers are full and the socket pushes back.
    let quiet = 0;
    await waitFor(
      'the catch-up to stall on the unread socket',
      async () => {
        const m = await metrics(t);
        quiet = m['rollcall_watch_buffered_bytes']! > 0 ? quiet + 1 : 0;
        return quiet >= 5;
      },
      20_000,
      20,
    );
    const before = await metrics(t);
    expect(before['rollcall_watch_overflows_total']).toBe(0);
    // What its socket holds unflushed counts against the budget, as for a live watcher.
    const held = before['rollcall_watch_buffered_bytes']!;

    // The registry keeps changing; the stalled watcher must not wait for ever.
    let maxHeld = 0;
    let applied = 0;
    for (; applied < 400 && (await metrics(t))['rollcall_watch_overflows_total'] === 0; applied++) {
      t.node.apply(reg(`new-${applied}`));
      await new Promise((r) => setImmediate(r));
      maxHeld = Math.max(maxHeld, (await metrics(t))['rollcall_watch_buffered_bytes']!);
    }
    const m = await metrics(t);
    expect(m['rollcall_watch_overflows_total'], `not cut after ${applied} more changes (~${applied * 4} KB)`).toBe(1);
    // Cut once what it holds and the changes it missed pass the budget, like a live watcher
    // (each change is one ~4.2 KB event)...
    expect(held + applied * 4400).toBeGreaterThan(BUDGET);
    expect(held + (applied - 3) * 4000).toBeLessThan(BUDGET);
    // ...and what the node held for it never passed the budget plus one change.
    expect(maxHeld).toBeLessThan(BUDGET + 8 * 1024);

    // The client reads again: every change up to the cut in order, then overflow, then the end.
    const { events, complete } = await stalled.readToEnd();
    expect(complete).toBe(true);
    const changes = events.filter((e) => e.event === 'message');
    const last = events.at(-1)!;
    expect(last.event).toBe('overflow');
    expect(changes.length).toBeGreaterThan(0);
    expect(changes.map((e) => Number(e.id))).toEqual(changes.map((_, i) => i + 1));
    expect(last.data.fromRevision).toBe(changes.length + 1);
    expect(last.id).toBe(String(changes.length));
    await waitFor('the cut stream to be gone', async () => (await metrics(t))['rollcall_watch_buffered_bytes'] === 0);

    // Resuming where it says loses nothing.
    const resumed = await HttpWatcher.open(
      `http://127.0.0.1:${port}/v1/watch?namespace=prod&fromRevision=${last.data.fromRevision}`,
    );
    watchers.push(resumed);
    const total = t.node.registry.revision;
    await resumed.until('the rest', (w) => w.changes().length >= total - changes.length);
    expect(resumed.changes().map((e) => Number(e.id))).toEqual(
      Array.from({ length: total - changes.length }, (_, i) => changes.length + 1 + i),
    );
  });
});

describe('a live watcher that is cut', () => {
  it('holds only what its socket took, and its client gets the overflow event when it reads again', async () => {
    const budget = 1024 * 1024;
    // Each change is fanned out on its own (not coalesced with whatever else was applied
    // before the next fan-out, which depends on how busy the machine is), so one write to
    // the socket is one change, and the bound below does not depend on timing.
    const t = await testApp({
      watch: { maxBufferedBytes: budget, closeGraceMs: 30_000, progressMinMs: 60_000, fanOut: 'immediate' },
    });
    apps.push(t);
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const port = (t.app.server.address() as AddressInfo).port;
    const stalled = await stalledWatch(port, '/v1/watch?namespace=prod');
    await waitFor('the watcher to be live', async () => (await metrics(t))['rollcall_watch_opened_total'] === 1);
    let maxHeld = 0;
    // Ten changes a turn, so the kernel's buffers fill, then the node's, then the bound trips.
    for (let i = 0; i < 500 && (await metrics(t))['rollcall_watch_overflows_total'] === 0; i++) {
      for (let j = 0; j < 10; j++) t.node.apply(reg(`n${i}-${j}`));
      await new Promise((r) => setTimeout(r, 1));
      maxHeld = Math.max(maxHeld, (await metrics(t))['rollcall_watch_buffered_bytes']!);
    }
    expect((await metrics(t))['rollcall_watch_overflows_total']).toBe(1);
    expect(maxHeld).toBeGreaterThan(budget - 64 * 1024);
    expect(maxHeld).toBeLessThan(budget + 64 * 1024);
    // Cut: what was queued for it is dropped at once; the node holds only what its socket
    // took and the overflow event behind it, not a budget of unread changes. Read after the
    // cut, this can only have shrunk since (the kernel may take more, nothing is added).
    const afterCut = (await metrics(t))['rollcall_watch_buffered_bytes']!;
    // The client comes back a while later (within the grace period) and reads everything.
    await new Promise((r) => setTimeout(r, 1000));
    const { events, complete } = await stalled.readToEnd();
    expect(complete).toBe(true);
    const changes = events.filter((e) => e.event === 'message');
    expect(changes.map((e) => Number(e.id))).toEqual(changes.map((_, i) => i + 1));
    const overflow = events.at(-1)!;
    expect(overflow).toMatchObject({
      event: 'overflow',
      id: String(changes.length),
      data: { fromRevision: changes.length + 1 },
    });
    // Why this bound: a socket takes a write while it holds less than its high-water mark,
    // and after a drain the hub gives it queued changes only until it pushes back. So it
    // never holds more than its high-water mark plus one write (here one change), and the
    // cut adds the overflow event and the last chunk.
    const largestChange = Math.max(...changes.map(chunkBytes));
    expect(afterCut).toBeLessThan(getDefaultHighWaterMark(false) + largestChange + chunkBytes(overflow) + 5);
  });
});
