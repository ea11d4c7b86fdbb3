/**
 * The probe listener (`--probe-listen`, src/server/probes) on a real node process: it
 * answers /healthz and /readyz like the main port, keeps answering /healthz 200 while the
 * main event loop is held for less than the stall limit (when the main port answers
 * nothing), answers 503 STALLED once it is held for longer, and closes with the node. The
 * main loop is held with the test fault `blockEventLoopMs`. No timing assertions beyond
 * "the probe port answered before the main port did".
 */
import { connect, createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, LocalCluster } from '../scripts/local-cluster.js';
import { http, waitFor } from './helpers/http.js';

const STALL_LIMIT_MS = 4000;
/** Held for less than the stall limit: a busy node. */
const SHORT_BLOCK_MS = 2000;
/** Held for longer: a hung node. */
const LONG_BLOCK_MS = 8000;

/** A request to the main port that is answered only once the block ends; `answered` says whether it was yet. */
function pendingMain(url: string) {
  const state = { answered: false, status: 0 };
  const done = http('GET', `${url}/healthz`, undefined, {}, 60_000).then((r) => {
    state.answered = true;
    state.status = r.status;
  });
  return { state, done };
}

describe('the probe listener on a real node', () => {
  let cluster: LocalCluster;
  let url: string;
  let probes: string;
  const logs: string[] = [];

  beforeAll(async () => {
    const probePort = await freePort();
    probes = `http://127.0.0.1:${probePort}`;
    cluster = await LocalCluster.start({
      size: 1,
      logLevel: 'info',
      env: {
        ROLLCALL_TEST_FAULTS: '1',
        ROLLCALL_PROBE_LISTEN: `127.0.0.1:${probePort}`,
        ROLLCALL_PROBE_STALL_LIMIT_MS: String(STALL_LIMIT_MS),
      },
      onLog: (_id, line) => logs.push(line),
    });
    url = cluster.nodes[0]!.url;
  });

  afterAll(async () => {
    await cluster?.close();
  });

  const block = async (ms: number) => {
    const r = await http('PUT', `${url}/v1/test/faults`, { blockEventLoopMs: ms });
    expect(r.status).toBe(200);
  };

  it('answers /healthz and /readyz with the main port statuses and bodies, and nothing else', async () => {
    const [main, probe] = await Promise.all([http('GET', `${url}/healthz`), http('GET', `${probes}/healthz`)]);
    expect(probe.status).toBe(200);
    expect(probe.body).toEqual(main.body);
    expect(probe.body).toEqual({ ok: true, node: 'n1' });
    expect(probe.headers.get('x-rollcall-node')).toBe('n1');

    // Ready once the node leads itself and its check has been published.
    const ready = await waitFor('the probe port to say ready', async () => {
      const r = await http('GET', `${probes}/readyz`);
      return r.status === 200 ? r : undefined;
    });
    const mainReady = await http('GET', `${url}/readyz`);
    expect(mainReady.status).toBe(200);
    expect(Object.keys(ready.body).sort()).toEqual(Object.keys(mainReady.body).sort());
    expect(ready.body).toMatchObject({ ready: true, node: 'n1', leader: 'n1', role: 'leader', reasons: [] });

    const other = await http('GET', `${probes}/metrics`);
    expect(other.status).toBe(404);
    expect(other.body.error.code).toBe('ROUTE_NOT_FOUND');

    // What the HTTP parser refuses is answered in the catalogue shape too.
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(new URL(probes).port), '127.0.0.1', () => socket.end('NOT HTTP AT ALL\r\n\r\n'));
      let text = '';
      socket.on('data', (b: Buffer) => (text += b.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)).error.code).toBe('MALFORMED_REQUEST');
  });

  it('answers /healthz 200 while the main loop is held for less than the stall limit, before the main port answers at all', async () => {
    await block(SHORT_BLOCK_MS);
    const main = pendingMain(url);
    const probe = await http('GET', `${probes}/healthz`);
    const mainAnsweredFirst = main.state.answered;
    expect(probe.status).toBe(200);
    expect(probe.body).toEqual({ ok: true, node: 'n1' });
    expect(mainAnsweredFirst).toBe(false);
    await main.done;
    expect(main.state.status).toBe(200);
  });

  it('answers /healthz 503 STALLED (and /readyz 503) while the main loop is held for longer than the stall limit, then 200 again', async () => {
    await block(LONG_BLOCK_MS);
    const main = pendingMain(url);
    const stalled = await waitFor(
      'the probe port to report the stall',
      async () => {
        const r = await http('GET', `${probes}/healthz`);
        return r.status === 503 ? { r, mainAnswered: main.state.answered } : undefined;
      },
      30_000,
      100,
    );
    expect(stalled.mainAnswered).toBe(false);
    expect(stalled.r.body).toMatchObject({
      error: { code: 'STALLED', stallLimitMs: STALL_LIMIT_MS },
      ok: false,
      node: 'n1',
    });
    expect(stalled.r.body.error.stalledMs).toBeGreaterThan(STALL_LIMIT_MS);
    // The published readiness (older than 3 s by now) no longer counts.
    const notReady = await http('GET', `${probes}/readyz`);
    expect(main.state.answered).toBe(false);
    expect(notReady.status).toBe(503);
    expect(notReady.body).toMatchObject({ error: { code: 'NOT_READY' }, ready: false, node: 'n1' });

    await main.done;
    expect(main.state.status).toBe(200);
    await waitFor(
      'the probe port to say healthy again',
      async () => (await http('GET', `${probes}/healthz`)).status === 200,
    );
    await waitFor(
      'the probe port to say ready again',
      async () => (await http('GET', `${probes}/readyz`)).status === 200,
    );
  });

  it('closes with the node: the port is freed and the thread ended without being terminated', async () => {
    expect(await cluster.stop('n1')).toBe(0);
    await expect(fetch(`${probes}/healthz`, { signal: AbortSignal.timeout(5000) })).rejects.toThrow();
    expect(logs.some((l) => l.includes('did not close in time'))).toBe(false);
    expect(logs.some((l) => l.includes('serving /healthz and /readyz on the probe listener'))).toBe(true);
  });
});

describe('a probe port that cannot be bound', () => {
  it('stops the node with a log line that names the flag', async () => {
    const taken = createServer();
    const port = await new Promise<number>((resolve) =>
      taken.listen(0, '127.0.0.1', () => resolve((taken.address() as { port: number }).port)),
    );
    const logs: string[] = [];
    try {
      await expect(
        LocalCluster.start({
          size: 1,
          logLevel: 'info',
          env: { ROLLCALL_PROBE_LISTEN: `127.0.0.1:${port}` },
          onLog: (_id, line) => logs.push(line),
        }),
      ).rejects.toThrow(/exited before it was ready \(code 1/);
      expect(logs.some((l) => l.includes('cannot serve the probes (--probe-listen)') && l.includes('EADDRINUSE'))).toBe(
        true,
      );
    } finally {
      await new Promise((r) => taken.close(r));
    }
  });
});
