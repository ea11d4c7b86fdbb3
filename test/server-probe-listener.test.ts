/**
 * The probe listener's thread and its owner (src/server/probes/index.ts), in this process,
 * loaded from the build (a worker thread runs compiled JavaScript): a thread that dies is
 * logged and replaced on the same port, a failing readiness check is logged once, and
 * close() frees the port and ends the thread. Real sockets, real worker thread.
 */
import path from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../src/log/index.js';
import type { ProbeAnswer, ProbeListener } from '../src/server/probes/index.js';
import { waitFor } from './helpers/wait.js';

const BUILT = pathToFileURL(path.resolve('dist/src/server/probes/index.js')).href;

/** A pino logger whose records land in `records`. */
function capturingLogger() {
  const records: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line.trim() !== '') records.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger({ level: 'debug', name: 'n1', destination }), records };
}

const READY: ProbeAnswer = {
  status: 200,
  body: {
    ready: true,
    node: 'n1',
    leader: 'n1',
    role: 'leader',
    term: 1,
    commitIndex: 1,
    appliedIndex: 1,
    lag: 0,
    reasons: [],
  },
};

describe('the probe listener thread', () => {
  let listener: ProbeListener | null = null;

  afterEach(async () => {
    await listener?.close();
    listener = null;
  });

  async function start(readiness: () => Promise<ProbeAnswer>) {
    const { ProbeListener: Built } = (await import(BUILT)) as typeof import('../src/server/probes/index.js');
    const { logger, records } = capturingLogger();
    listener = await Built.start({ host: '127.0.0.1', port: 0, nodeId: 'n1', readiness, logger, stallLimitMs: 5000 });
    return { url: `http://127.0.0.1:${listener.port}`, records, port: listener.port };
  }

  const get = (url: string) =>
    fetch(url, { signal: AbortSignal.timeout(5000) }).then(async (r) => ({
      status: r.status,
      body: (await r.json()) as Record<string, unknown>,
    }));

  it('serves the published readiness, and a thread that dies is logged and replaced on the same port', async () => {
    const { url, records, port } = await start(async () => READY);
    expect(await get(`${url}/healthz`)).toEqual({ status: 200, body: { ok: true, node: 'n1' } });
    await waitFor('the first readiness to be published', async () => (await get(`${url}/readyz`)).status === 200);

    // The thread ends as an uncaught error would end it.
    await (listener as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
    await waitFor('the replacement to serve', () => records.some((r) => r.msg === 'the probe listener serves again'));
    expect(
      records.some(
        (r) => r.msg === 'the probe listener thread stopped; starting another' && r.level === 50 && r.part === 'probes',
      ),
    ).toBe(true);
    expect(listener!.port).toBe(port);
    // It starts from the readiness published before: ready at once.
    expect(await get(`${url}/readyz`)).toEqual({ status: 200, body: READY.body });

    await listener!.close();
    listener = null;
    await expect(fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) })).rejects.toThrow();
    expect(records.some((r) => String(r.msg).includes('did not close in time'))).toBe(false);
  });

  it('logs a readiness check that throws once per run of failures, and answers /readyz 503 meanwhile', async () => {
    let calls = 0;
    const { url, records } = await start(async () => {
      calls++;
      throw new Error('the check is broken');
    });
    await waitFor('a few failed checks', () => calls >= 3);
    const failures = records.filter((r) => String(r.msg).startsWith('the readiness check failed'));
    expect(failures).toHaveLength(1);
    expect((failures[0]!.err as { message: string }).message).toBe('the check is broken');
    const ready = await get(`${url}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ error: { code: 'NOT_READY' }, ready: false });
  });
});
