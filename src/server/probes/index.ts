/**
 * The probe listener (`--probe-listen HOST:PORT`): GET /healthz and GET /readyz on a port
 * of their own, served by a worker thread, as etcd serves /health on `--listen-metrics-urls`.
 * On one thread a probe that arrives while the event loop works through hundreds of
 * readable sockets waits behind them, however early the routes put it; on its own thread it
 * does not. The worker answers from what the main thread publishes (state.ts, publisher.ts)
 * and never asks it per request:
 *
 * - /healthz 200 while the main loop's heartbeat is at most `stallLimitMs` old (a busy loop
 *   beats late, a hung one never), else 503 STALLED with the stall: an orchestrator still
 *   restarts a hung node but not a busy one.
 * - /readyz the main port's check, run every READINESS_EVERY_MS on the main thread; a value
 *   older than READINESS_STALE_MS is 503 NOT_READY.
 *
 * With `tls` (an https:// --probe-listen) the worker serves HTTPS with the HTTP API's
 * certificate, key and client CA, and `setTls` hands it each reloaded set (SIGHUP).
 *
 * The worker's log records come to the main thread's pino logger as messages. If the worker
 * dies (an uncaught error), the error is logged and a new worker takes the same port a
 * second later; close() stops it and the timers for good.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../log/index.js';
import type { HandshakeRefusals } from '../../security/handshake-refusals.js';
import type { TlsMaterial } from '../../security/tls-files.js';
import { ProbePublisher } from './publisher.js';
import {
  DEFAULT_STALL_LIMIT_MS,
  type FromProbeWorker,
  HEARTBEAT_EVERY_MS,
  HeartbeatCell,
  monotonicMs,
  type ProbeAnswer,
  type ProbeTls,
  type ProbeWorkerData,
  READINESS_EVERY_MS,
  READINESS_STALE_MS,
  type ToProbeWorker,
} from './state.js';

export type { ProbeAnswer } from './state.js';
export { DEFAULT_STALL_LIMIT_MS, READINESS_STALE_MS } from './state.js';

const WORKER_URL = new URL('./worker.js', import.meta.url);
/** A worker that died is replaced after this long (again and again, each time logged). */
const RESTART_DELAY_MS = 1000;
/** close() waits this long for the worker to close its server, then terminates it. */
const CLOSE_GRACE_MS = 2000;

export interface ProbeListenerOptions {
  readonly host: string;
  readonly port: number;
  readonly nodeId: string;
  /** The /readyz check (app.readiness()). */
  readonly readiness: () => Promise<ProbeAnswer>;
  readonly logger: Logger;
  /** /healthz answers 503 once the main loop has not run for longer than this (default DEFAULT_STALL_LIMIT_MS). */
  readonly stallLimitMs?: number;
  /** Serve HTTPS with this material (the HTTP API's); absent or null: plain HTTP. */
  readonly tls?: TlsMaterial | null;
  /** With `tls`: where refused handshakes are logged and counted. */
  readonly tlsRefusals?: HandshakeRefusals;
}

function probeTls(m: TlsMaterial): ProbeTls {
  return { cert: m.cert, key: m.key, ca: m.ca };
}

export class ProbeListener {
  private worker: Worker | null = null;
  private restartTimer: NodeJS.Timeout | null = null;
  private closing = false;
  private boundPort: number;
  private readonly heartbeat = new HeartbeatCell(new SharedArrayBuffer(HeartbeatCell.BYTES));
  private readonly publisher: ProbePublisher;
  private readonly log: Logger;
  private evaluateFailing = false;
  /** The TLS in force: what a restarted worker starts with. */
  private tls: ProbeTls | null;

  private constructor(private readonly o: ProbeListenerOptions) {
    this.boundPort = o.port;
    this.tls = o.tls == null ? null : probeTls(o.tls);
    this.log = o.logger.child({ part: 'probes' });
    this.publisher = new ProbePublisher({
      heartbeat: this.heartbeat,
      clock: monotonicMs,
      evaluate: async () => {
        const answer = await o.readiness();
        if (this.evaluateFailing) this.log.info('the readiness check works again');
        this.evaluateFailing = false;
        return answer;
      },
      publish: (readiness) => this.send({ kind: 'readiness', readiness }),
      onEvaluateError: (err) => {
        // Once per run of failures: the check runs every few hundred ms.
        if (!this.evaluateFailing)
          this.log.error(
            { err },
            'the readiness check failed; the probe listener will answer /readyz 503 once its last value is stale',
          );
        this.evaluateFailing = true;
      },
      heartbeatMs: HEARTBEAT_EVERY_MS,
      readinessEveryMs: READINESS_EVERY_MS,
    });
  }

  /** Starts the timers and the worker; resolves once it listens, rejects (having stopped everything) if it cannot. */
  static async start(options: ProbeListenerOptions): Promise<ProbeListener> {
    const listener = new ProbeListener(options);
    listener.publisher.start();
    try {
      listener.boundPort = await listener.spawn();
    } catch (err) {
      await listener.close();
      throw err;
    }
    listener.log.info(
      { probes: listener.url, stallLimitMs: listener.stallLimitMs },
      'serving /healthz and /readyz on the probe listener',
    );
    return listener;
  }

  /** The port the listener is bound to (the one asked for, or the one picked for port 0). */
  get port(): number {
    return this.boundPort;
  }

  /** Where it listens, with its scheme. */
  get url(): string {
    return `${this.tls === null ? 'http' : 'https'}://${this.o.host}:${this.boundPort}`;
  }

  /**
   * Serves new connections with reloaded TLS material (SIGHUP); established ones keep
   * theirs. Only for a listener started with `tls`: a plain one stays plain.
   */
  setTls(material: TlsMaterial): void {
    if (this.tls === null) throw new Error('the probe listener serves plain HTTP; it cannot take TLS on a reload');
    this.tls = probeTls(material);
    this.send({ kind: 'tls', tls: this.tls });
  }

  private get stallLimitMs(): number {
    return this.o.stallLimitMs ?? DEFAULT_STALL_LIMIT_MS;
  }

  private send(m: ToProbeWorker): void {
    this.worker?.postMessage(m);
  }

  /** Starts a worker on `boundPort`; resolves with the port it listens on. */
  private spawn(): Promise<number> {
    const data: ProbeWorkerData = {
      host: this.o.host,
      port: this.boundPort,
      nodeId: this.o.nodeId,
      heartbeat: this.heartbeat.buffer,
      stallLimitMs: this.stallLimitMs,
      readinessStaleMs: READINESS_STALE_MS,
      readiness: this.publisher.latest,
      tls: this.tls,
    };
    const worker = new Worker(WORKER_URL, { workerData: data, name: `rollcall-probes-${this.o.nodeId}` });
    this.worker = worker;
    return new Promise<number>((resolve, reject) => {
      let settled = false;
      let listened = false;
      const where = `${this.o.host}:${this.boundPort}`;
      worker.on('message', (m: FromProbeWorker) => {
        switch (m.kind) {
          case 'listening':
            settled = listened = true;
            resolve(m.port);
            return;
          case 'listen-failed':
            settled = true;
            reject(
              Object.assign(new Error(`the probe listener cannot listen on ${where}: ${m.message}`), { code: m.code }),
            );
            return;
          case 'log':
            this.log[m.level](m.fields, m.msg);
            return;
          case 'tls-refused':
            if (this.o.tlsRefusals === undefined)
              this.log.debug({ ...m.refusal }, 'probe listener: TLS handshake refused');
            else this.o.tlsRefusals.record(m.refusal);
            return;
        }
      });
      worker.on('error', (err) => {
        // An uncaught error in the worker: it ends, and 'exit' follows.
        this.log.error({ err }, 'the probe listener thread failed');
        if (!settled) {
          settled = true;
          reject(err);
        }
      });
      worker.on('exit', (code) => {
        if (this.worker === worker) this.worker = null;
        if (!listened) {
          // Start-up failed: the caller hears of it (and start() or the restart loop acts).
          if (!settled)
            reject(new Error(`the probe listener thread exited (code ${code}) before it listened on ${where}`));
          settled = true;
          return;
        }
        if (this.closing) return;
        this.log.error({ code, restartInMs: RESTART_DELAY_MS }, 'the probe listener thread stopped; starting another');
        this.scheduleRestart();
      });
    });
  }

  private scheduleRestart(): void {
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.closing) return;
      this.spawn().then(
        () => this.log.info({ probes: this.url }, 'the probe listener serves again'),
        (err: unknown) => {
          this.log.error(
            { err, restartInMs: RESTART_DELAY_MS },
            'the probe listener could not start again; trying again',
          );
          if (!this.closing) this.scheduleRestart();
        },
      );
    }, RESTART_DELAY_MS);
  }

  /** Stops the timers, closes the listener (its connections too) and ends the thread. */
  async close(): Promise<void> {
    this.closing = true;
    this.publisher.stop();
    if (this.restartTimer !== null) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const worker = this.worker;
    if (worker === null) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    this.send({ kind: 'close' });
    const force = setTimeout(() => {
      this.log.warn({ waitedMs: CLOSE_GRACE_MS }, 'the probe listener did not close in time; terminating its thread');
      void worker.terminate();
    }, CLOSE_GRACE_MS);
    try {
      await exited;
    } finally {
      clearTimeout(force);
    }
  }
}
