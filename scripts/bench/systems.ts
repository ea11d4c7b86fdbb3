/**
 * The two systems under test behind one interface: how to start them, find the leader,
 * kill and restart nodes, and the exact HTTP requests of every workload (prebuilt bytes
 * for the load generator). Rollcall speaks its REST API; etcd its v3 JSON gateway
 * (grpc-gateway: keys and values base64, int64 as strings).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LocalCluster } from '../local-cluster.js';
import type { ClusterTls } from '../tls-certs.js';
import { EtcdCluster, type EtcdTls } from './etcd.js';
import { clientTlsOf, requestJson } from './http-json.js';
import { buildRequest } from './http1.js';
import { type ClientTls, type Target, targetOf } from './loadgen.js';
import { trackDir, trackPids } from './procs.js';

export type SystemName = 'rollcall' | 'etcd';

/** What a watcher found in one record of its stream. */
export interface WatchRecordInfo {
  /** Change numbers of the events in the record. */
  readonly changes: number[];
  /** The server confirmed the watch is registered (etcd's `created`). */
  readonly created: boolean;
}

export interface System {
  readonly name: SystemName;
  readonly size: number;
  url(i: number): string;
  /** Node i as a load-generator target (with the client TLS options when it serves HTTPS). */
  target(i: number): Target;
  /** What a client trusts and presents when the system serves HTTPS; undefined over plain HTTP. */
  readonly clientTls: ClientTls | undefined;
  pid(i: number): number | undefined;
  pids(): (number | undefined)[];
  /** Index of the current leader, waiting up to timeoutMs for one. */
  leader(timeoutMs?: number): Promise<number>;
  /** The registry's / store's current revision (read from node i). */
  revision(i: number): Promise<number>;
  kill(i: number): Promise<void>;
  /**
   * Starts node i again and resolves once it is back in the cluster: it knows the leader and
   * (Rollcall's /readyz) has applied what was committed while it was down.
   */
  restart(i: number): Promise<void>;
  /** Starts every stopped node at once (for restart-to-ready). */
  restartAll(): Promise<void>;
  close(): Promise<void>;

  /** A write of change/key number `k` in keyspace `space` with the given payload. */
  write(space: string, k: number, payload: string): Buffer;
  read(space: string, k: number, serializable: boolean): Buffer;
  /** One linearizable read through node i; resolves true on success. */
  probeRead(i: number, space: string, k: number): Promise<boolean>;
  /** How many keys/instances keyspace `space` holds (linearizable, through node i). */
  countKeys(i: number, space: string): Promise<number>;

  openSession(n: number, ttlSec: number): Buffer;
  keepalive(n: number): Buffer;
  /** What a keepalive answer says: the session/lease is alive, is gone (expired), or the call failed. */
  keepaliveOutcome(status: number, body: Buffer): 'alive' | 'expired' | 'error';

  /** The streaming request of one watcher of keyspace `space`, from revision `after` on. */
  watchRequest(space: string, after: number): Buffer;
  /** Record delimiter of the watch stream. */
  readonly watchDelimiter: string;
  parseWatchRecord(space: string, record: string): WatchRecordInfo;
}

export function keyName(k: number): string {
  return `k${String(k).padStart(7, '0')}`;
}

/** A deterministic printable payload of `bytes` ASCII characters. */
export function payloadOf(bytes: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let s = '';
  for (let i = 0; i < bytes; i++) s += alphabet[(i * 7 + 3) % alphabet.length];
  return s;
}

const HOST = '127.0.0.1';

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

// ---- Rollcall -------------------------------------------------------------------------

const NS = 'bench';

export class RollcallSystem implements System {
  readonly name = 'rollcall' as const;
  readonly watchDelimiter = '\n\n';

  private constructor(
    readonly cluster: LocalCluster,
    readonly clientTls: ClientTls | undefined = undefined,
  ) {}

  /**
   * With `tls`, every node serves HTTPS with its certificate and speaks mutual TLS to its
   * peers (LocalCluster's `tls`); `requireClientCerts` adds `--tls-client-ca`, and the
   * benchmark's clients then present the cluster's client certificate.
   */
  static async start(options: {
    size: number;
    env?: NodeJS.ProcessEnv;
    onLog?: (id: string, line: string) => void;
    tls?: ClusterTls & { readonly requireClientCerts?: boolean };
  }): Promise<RollcallSystem> {
    const dataRoot = await mkdtemp(path.join(tmpdir(), 'rollcall-bench-'));
    trackDir(dataRoot);
    const cluster = await LocalCluster.start({
      size: options.size,
      logLevel: 'warn',
      dataRoot,
      ...(options.env ? { env: options.env } : {}),
      ...(options.onLog ? { onLog: options.onLog } : {}),
      ...(options.tls ? { tls: options.tls } : {}),
    });
    const tls = options.tls;
    const sys = new RollcallSystem(
      cluster,
      tls ? clientTlsOf(tls.requireClientCerts ? { ca: tls.ca, ...tls.client } : { ca: tls.ca }) : undefined,
    );
    trackPids(() => sys.pids());
    await sys.leader(20_000);
    return sys;
  }

  /** A system over a cluster started elsewhere (e.g. from another build's `dist/`, for bench-ab). */
  static over(cluster: LocalCluster): RollcallSystem {
    return new RollcallSystem(cluster);
  }

  get size(): number {
    return this.cluster.nodes.length;
  }

  url(i: number): string {
    return this.cluster.nodes[i]!.url;
  }

  target(i: number): Target {
    return targetOf(this.url(i), this.clientTls);
  }

  private json<T>(
    url: string,
    init: { method?: string; body?: string } = {},
    timeoutMs = 2000,
  ): Promise<{ status: number; body: T | null }> {
    return requestJson<T>(url, init, timeoutMs, this.clientTls);
  }

  pid(i: number): number | undefined {
    return this.cluster.nodes[i]?.proc?.pid;
  }

  pids(): (number | undefined)[] {
    return this.cluster.nodes.map((n) => n.proc?.pid);
  }

  async leader(timeoutMs = 15_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = 0; i < this.size; i++) {
        if (!this.pid(i)) continue;
        try {
          const { body } = await this.json<{ leader: string | null; members: { id: string; role: string }[] }>(
            `${this.url(i)}/v1/cluster`,
          );
          const id = body?.leader;
          const idx = id ? this.cluster.nodes.findIndex((n) => n.id === id) : -1;
          // Trust the leader's own word: it says role "leader" for itself.
          if (idx >= 0 && this.pid(idx) && body?.members.find((m) => m.id === id)?.role === 'leader') return idx;
        } catch {
          /* node busy or down */
        }
      }
      if (Date.now() > deadline) throw new Error('rollcall: no leader');
      await sleep(50);
    }
  }

  async revision(i: number): Promise<number> {
    const { body } = await this.json<{ revision: number }>(`${this.url(i)}/v1/cluster`);
    return body?.revision ?? 0;
  }

  async kill(i: number): Promise<void> {
    await this.cluster.kill(this.cluster.nodes[i]!.id);
  }

  /** Starts node i and waits until its /readyz says it knows a leader and has caught up. */
  async restart(i: number, timeoutMs = 30_000): Promise<void> {
    await this.cluster.restart(this.cluster.nodes[i]!.id);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        if ((await this.json(`${this.url(i)}/readyz`)).status === 200) return;
      } catch {
        /* busy catching up */
      }
      if (Date.now() > deadline) throw new Error(`rollcall: node ${i} not ready ${timeoutMs} ms after its restart`);
      await sleep(20);
    }
  }

  async restartAll(): Promise<void> {
    await Promise.all(this.cluster.nodes.filter((n) => !n.proc).map((n) => this.cluster.restart(n.id)));
  }

  async close(): Promise<void> {
    await this.cluster.close();
  }

  private static instanceBody(payload: string): string {
    return JSON.stringify({ address: '10.0.0.1', port: 8080, metadata: { p: payload } });
  }

  write(space: string, k: number, payload: string): Buffer {
    return buildRequest({
      method: 'PUT',
      host: HOST,
      path: `/v1/namespaces/${NS}/services/${space}/instances/${keyName(k)}`,
      body: RollcallSystem.instanceBody(payload),
    });
  }

  read(space: string, k: number, serializable: boolean): Buffer {
    const q = serializable ? '?consistency=serializable' : '';
    return buildRequest({
      method: 'GET',
      host: HOST,
      path: `/v1/namespaces/${NS}/services/${space}/instances/${keyName(k)}${q}`,
    });
  }

  async probeRead(i: number, space: string, k: number): Promise<boolean> {
    try {
      const { status } = await this.json(
        `${this.url(i)}/v1/namespaces/${NS}/services/${space}/instances/${keyName(k)}`,
        {},
        1000,
      );
      return status === 200;
    } catch {
      return false;
    }
  }

  async countKeys(i: number, space: string): Promise<number> {
    const { status, body } = await this.json<{ instances?: unknown[] }>(
      `${this.url(i)}/v1/namespaces/${NS}/services/${space}/instances`,
      {},
      30_000,
    );
    if (status !== 200) throw new Error(`listing ${space}: HTTP ${status}`);
    return body?.instances?.length ?? 0;
  }

  openSession(n: number, ttlSec: number): Buffer {
    return buildRequest({
      method: 'POST',
      host: HOST,
      path: '/v1/sessions',
      headers: { 'x-rollcall-session-id': `s${n}` },
      body: JSON.stringify({ ttlMs: ttlSec * 1000 }),
    });
  }

  keepalive(n: number): Buffer {
    return buildRequest({
      method: 'PUT',
      host: HOST,
      path: `/v1/sessions/s${n}/keepalive`,
      headers: { 'Content-Length': '0' },
    });
  }

  keepaliveOutcome(status: number): 'alive' | 'expired' | 'error' {
    return status === 200 ? 'alive' : status === 404 ? 'expired' : 'error';
  }

  watchRequest(space: string, after: number): Buffer {
    return buildRequest({
      method: 'GET',
      host: HOST,
      path: `/v1/watch?namespace=${NS}&service=${space}`,
      headers: { Accept: 'text/event-stream', 'Last-Event-ID': String(after) },
    });
  }

  parseWatchRecord(_space: string, record: string): WatchRecordInfo {
    return parseRollcallWatchRecord(record);
  }
}

/** One SSE message of Rollcall's watch carries one event; its instance id is `k0000123`. */
export function parseRollcallWatchRecord(record: string): WatchRecordInfo {
  const changes: number[] = [];
  if (!record.startsWith('event:')) {
    const at = record.indexOf('"id":"k');
    if (at >= 0) changes.push(Number(record.slice(at + 7, at + 14)));
  }
  return { changes, created: false };
}

// ---- etcd -----------------------------------------------------------------------------

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

function prefixEnd(prefix: string): string {
  const b = Buffer.from(prefix, 'utf8');
  b[b.length - 1]! += 1;
  return b.toString('utf8');
}

export class EtcdSystem implements System {
  readonly name = 'etcd' as const;
  readonly watchDelimiter = '\n';
  /** Stopped nodes, to bring back in restartAll. */
  private readonly stopped = new Set<number>();

  private constructor(
    readonly cluster: EtcdCluster,
    readonly clientTls: ClientTls | undefined,
  ) {}

  /** With `tls`: HTTPS for clients and mutual TLS between members (EtcdCluster's `tls`). */
  static async start(options: {
    bin: string;
    size: number;
    onLog?: (name: string, line: string) => void;
    tls?: EtcdTls;
  }): Promise<EtcdSystem> {
    const cluster = await EtcdCluster.start(options);
    const sys = new EtcdSystem(cluster, cluster.clientTls);
    trackPids(() => sys.pids());
    await sys.leader(20_000);
    return sys;
  }

  get size(): number {
    return this.cluster.nodes.length;
  }

  url(i: number): string {
    return this.cluster.nodes[i]!.url;
  }

  target(i: number): Target {
    return targetOf(this.url(i), this.clientTls);
  }

  private json<T>(
    url: string,
    init: { method?: string; body?: string } = {},
    timeoutMs = 2000,
  ): Promise<{ status: number; body: T | null }> {
    return requestJson<T>(url, init, timeoutMs, this.clientTls);
  }

  pid(i: number): number | undefined {
    return this.cluster.nodes[i]?.proc?.pid;
  }

  pids(): (number | undefined)[] {
    return this.cluster.pids();
  }

  async leader(timeoutMs = 15_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = 0; i < this.size; i++) {
        if (!this.pid(i)) continue;
        try {
          const { body } = await this.json<{ leader?: string; header?: { member_id?: string } }>(
            `${this.url(i)}/v3/maintenance/status`,
            { method: 'POST', body: '{}' },
          );
          if (body?.leader && body.header?.member_id === body.leader) return i;
        } catch {
          /* down or busy */
        }
      }
      if (Date.now() > deadline) throw new Error('etcd: no leader');
      await sleep(50);
    }
  }

  async revision(i: number): Promise<number> {
    const { body } = await this.json<{ header?: { revision?: string } }>(`${this.url(i)}/v3/kv/range`, {
      method: 'POST',
      body: JSON.stringify({ key: b64('\0'), serializable: false }),
    });
    return Number(body?.header?.revision ?? 0);
  }

  async kill(i: number): Promise<void> {
    await this.cluster.kill(this.cluster.nodes[i]!.name);
    this.stopped.add(i);
  }

  async restart(i: number): Promise<void> {
    const n = this.cluster.nodes[i]!;
    this.cluster.restart(n.name);
    this.stopped.delete(i);
    await this.cluster.waitHealthy(n, 30_000);
  }

  async restartAll(): Promise<void> {
    const idx = [...this.stopped];
    for (const i of idx) {
      this.cluster.restart(this.cluster.nodes[i]!.name);
      this.stopped.delete(i);
    }
    await Promise.all(idx.map((i) => this.cluster.waitHealthy(this.cluster.nodes[i]!, 60_000)));
  }

  async close(): Promise<void> {
    await this.cluster.close();
  }

  private static key(space: string, k: number): string {
    return `${NS}/${space}/${keyName(k)}`;
  }

  write(space: string, k: number, payload: string): Buffer {
    return buildRequest({
      method: 'POST',
      host: HOST,
      path: '/v3/kv/put',
      body: JSON.stringify({ key: b64(EtcdSystem.key(space, k)), value: b64(payload) }),
    });
  }

  read(space: string, k: number, serializable: boolean): Buffer {
    const body = serializable
      ? { key: b64(EtcdSystem.key(space, k)), serializable: true }
      : { key: b64(EtcdSystem.key(space, k)) };
    return buildRequest({ method: 'POST', host: HOST, path: '/v3/kv/range', body: JSON.stringify(body) });
  }

  async probeRead(i: number, space: string, k: number): Promise<boolean> {
    try {
      const { status, body } = await this.json<{ kvs?: unknown[] }>(
        `${this.url(i)}/v3/kv/range`,
        { method: 'POST', body: JSON.stringify({ key: b64(EtcdSystem.key(space, k)) }) },
        1000,
      );
      return status === 200 && (body?.kvs?.length ?? 0) === 1;
    } catch {
      return false;
    }
  }

  async countKeys(i: number, space: string): Promise<number> {
    const prefix = `${NS}/${space}/`;
    const { status, body } = await this.json<{ count?: string }>(
      `${this.url(i)}/v3/kv/range`,
      {
        method: 'POST',
        body: JSON.stringify({ key: b64(prefix), range_end: b64(prefixEnd(prefix)), count_only: true }),
      },
      30_000,
    );
    if (status !== 200) throw new Error(`counting ${space}: HTTP ${status}`);
    return Number(body?.count ?? 0);
  }

  /** Lease ids are chosen by the client (1,000,000 + n) so keepalives need no lookup. */
  openSession(n: number, ttlSec: number): Buffer {
    return buildRequest({
      method: 'POST',
      host: HOST,
      path: '/v3/lease/grant',
      body: JSON.stringify({ TTL: ttlSec, ID: String(1_000_000 + n) }),
    });
  }

  keepalive(n: number): Buffer {
    return buildRequest({
      method: 'POST',
      host: HOST,
      path: '/v3/lease/keepalive',
      body: JSON.stringify({ ID: String(1_000_000 + n) }),
    });
  }

  /**
   * The gateway streams the keepalive answer with HTTP 200 even when the call fails
   * (`{"error": ...}` in the body); an expired lease answers a result with TTL 0, which
   * the gateway leaves out of the JSON.
   */
  keepaliveOutcome(status: number, body: Buffer): 'alive' | 'expired' | 'error' {
    if (status !== 200) return 'error';
    return etcdKeepaliveOutcome(body.toString('utf8'));
  }

  watchRequest(space: string, after: number): Buffer {
    const prefix = `${NS}/${space}/`;
    return buildRequest({
      method: 'POST',
      host: HOST,
      path: '/v3/watch',
      body: JSON.stringify({
        create_request: { key: b64(prefix), range_end: b64(prefixEnd(prefix)), start_revision: String(after + 1) },
      }),
    });
  }

  parseWatchRecord(space: string, record: string): WatchRecordInfo {
    return parseEtcdWatchRecord(`${NS}/${space}/k`, record);
  }
}

export function etcdKeepaliveOutcome(text: string): 'alive' | 'expired' | 'error' {
  if (!text.includes('"result"')) return 'error';
  const m = /"TTL":"?(\d+)/.exec(text);
  return m !== null && Number(m[1]) > 0 ? 'alive' : 'expired';
}

/** One line of etcd's gateway watch stream: `{"result":{..., "events":[{"kv":{"key":"<base64>", ...}}]}}`. */
export function parseEtcdWatchRecord(keyPrefix: string, record: string): WatchRecordInfo {
  const changes: number[] = [];
  let from = 0;
  for (;;) {
    const at = record.indexOf('"key":"', from);
    if (at < 0) break;
    const end = record.indexOf('"', at + 7);
    const key = Buffer.from(record.slice(at + 7, end), 'base64').toString('utf8');
    if (key.startsWith(keyPrefix)) changes.push(Number(key.slice(keyPrefix.length)));
    from = end + 1;
  }
  return { changes, created: record.includes('"created":true') };
}
