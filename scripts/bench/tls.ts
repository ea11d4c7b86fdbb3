/**
 * `npm run bench -- --tls` (issue 19, "Speed"): writes and reads at 64 connections on
 * Rollcall and etcd 3.4, each once over plain HTTP and once over TLS, so the table says
 * both what TLS costs each system (TLS / plain) and how the two compare over TLS.
 *
 * Four 3-node clusters run for the whole benchmark: Rollcall plain, Rollcall over TLS
 * (HTTPS API, mutual-TLS peers), etcd plain, etcd over TLS (`--cert-file`/`--key-file`,
 * mutual-TLS members with `--peer-client-cert-auth`). By default clients must present a
 * certificate on both (`--tls-client-ca`, etcd's `--client-cert-auth`), so both do the
 * same TLS work; `clientCerts: false` makes it server-only TLS on both. All certificates
 * come from one throwaway CA (scripts/tls-certs.ts) in a temporary directory.
 *
 * Rounds: every round runs each workload on the four clusters one after the other, in an
 * order that rotates from one workload to the next, so a drift of the machine's load
 * hits all four; the figures are medians over rounds, and TLS / plain is the median of
 * each round's pair (plain and TLS of one system run minutes apart at most). Before each
 * run every cluster must be quiet (< 0.3 cores for 1 s, at most 60 s).
 *
 * The load generator keeps its 64 connections open for the whole run (keep-alive, one
 * request in flight each), as a real client's pool does, and opens them before the clock
 * and the CPU count start: a TLS run measures encrypted requests, not its 64 handshakes.
 * The connections each run opened are reported (64 unless one was dropped).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClusterTlsWithServers } from '../tls-certs.js';
import { type Figure, makeFigure } from './format.js';
import { clientTlsOf } from './http-json.js';
import { runLoad } from './loadgen.js';
import { trackDir } from './procs.js';
import { median } from './stats.js';
import { EtcdSystem, payloadOf, RollcallSystem, type System, type SystemName } from './systems.js';
import {
  clusterCpu,
  httpFloor,
  type Progress,
  type RunFigures,
  readRun,
  type Ticker,
  WRITE_KEYS,
  writeRun,
} from './workloads.js';

export type Variant = 'plain' | 'tls';

export interface TlsWorkload {
  readonly key: string;
  readonly label: string;
  readonly kind: 'write' | 'read';
  readonly target: 'leader' | 'follower';
  readonly serializable?: boolean;
  /** Issue 19's goal on the Rollcall/etcd ratio over TLS (the same as without TLS). */
  readonly goal?: string;
}

/** The workloads, all at 64 connections. */
export const TLS_WORKLOADS: readonly TlsWorkload[] = [
  { key: 'write-leader', label: 'write leader 64c', kind: 'write', target: 'leader', goal: '>= 2' },
  { key: 'write-follower', label: 'write follower 64c', kind: 'write', target: 'follower', goal: '>= 2' },
  {
    key: 'read-lin-follower',
    label: 'read linearizable follower 64c',
    kind: 'read',
    target: 'follower',
    serializable: false,
    goal: '>= 3',
  },
  {
    key: 'read-ser-follower',
    label: 'read serializable follower 64c',
    kind: 'read',
    target: 'follower',
    serializable: true,
  },
];

/** One measured run. */
export interface TlsSample {
  readonly system: SystemName | 'floor';
  readonly variant: Variant;
  /** A TLS_WORKLOADS key, or 'floor' for the trivial Node server. */
  readonly workload: string;
  readonly round: number;
  readonly throughput: number;
  readonly p50: number;
  readonly p99: number;
  /** CPU of the system's three nodes per request (µs); NaN for the floor. */
  readonly cpuUsPerOp: number;
  readonly ok: number;
  readonly errors: number;
  readonly connectionsOpened: number;
}

export interface TlsBenchOptions {
  readonly etcdBin: string | null;
  /** Seconds per run. */
  readonly seconds: number;
  readonly rounds: number;
  /** Clients present certificates (mutual TLS on the API) on both systems. */
  readonly clientCerts: boolean;
  readonly progress: Progress;
  readonly ticker: Ticker;
  readonly onLog?: (who: string) => (id: string, line: string) => void;
}

export interface TlsBenchResult {
  readonly figures: Figure[];
  readonly samples: readonly TlsSample[];
  readonly notes: Record<string, string>;
  /** Per system and workload: the throughput TLS costs, in percent of plain (median of the rounds' pairs). */
  readonly costPercent: Record<string, Partial<Record<SystemName, number>>>;
}

const PAYLOAD = payloadOf(256);

interface Config {
  readonly system: System;
  readonly variant: Variant;
}

/**
 * The order of the configurations for the k-th (round, workload) slot: rotated by k and
 * reversed every other slot, so no configuration always runs first or right after another.
 */
export function slotOrder<T>(configs: readonly T[], k: number): T[] {
  const n = configs.length;
  const rotated = configs.map((_, i) => configs[(i + k) % n]!);
  return k % 2 === 1 ? rotated.reverse() : rotated;
}

export async function runTlsBench(o: TlsBenchOptions): Promise<TlsBenchResult> {
  const { progress } = o;
  const notes: Record<string, string> = {};
  const samples: TlsSample[] = [];
  const dir = await mkdtemp(path.join(tmpdir(), 'rollcall-bench-tls-'));
  trackDir(dir);
  const etcdNames = ['e1', 'e2', 'e3'];
  const certs = await createClusterTlsWithServers(dir, ['n1', 'n2', 'n3'], [...etcdNames, 'floor']);
  progress(
    `throwaway CA and certificates in ${dir} (client certificates ${o.clientCerts ? 'required' : 'not required'})`,
  );

  const configs: Config[] = [];
  try {
    progress('starting Rollcall: plain, then over TLS (HTTPS API, mutual-TLS peers)');
    configs.push({ system: await RollcallSystem.start({ size: 3, ...log(o, 'rollcall') }), variant: 'plain' });
    configs.push({
      system: await RollcallSystem.start({
        size: 3,
        ...log(o, 'rollcall-tls'),
        tls: { ...certs.tls, requireClientCerts: o.clientCerts },
      }),
      variant: 'tls',
    });
    if (o.etcdBin) {
      progress('starting etcd: plain, then over TLS (--cert-file, mutual-TLS peers)');
      configs.push({
        system: await EtcdSystem.start({ bin: o.etcdBin, size: 3, ...log(o, 'etcd') }),
        variant: 'plain',
      });
      const members = Object.fromEntries(etcdNames.map((n) => [n, certs.servers[n]!]));
      configs.push({
        system: await EtcdSystem.start({
          bin: o.etcdBin,
          size: 3,
          ...log(o, 'etcd-tls'),
          tls: { ca: certs.tls.ca, members, client: certs.tls.client, clientCertAuth: o.clientCerts },
        }),
        variant: 'tls',
      });
    }
    for (const c of configs) await prefill(c, o);

    const floorServer = certs.servers.floor!;
    const floorClient = clientTlsOf({ ca: certs.tls.ca });
    for (let round = 0; round < o.rounds; round++) {
      progress(`── round ${round + 1} of ${o.rounds}`);
      // The machine's own TLS cost: a trivial Node server, plain and over node:https.
      for (const variant of round % 2 === 0 ? (['plain', 'tls'] as const) : (['tls', 'plain'] as const)) {
        await settleAll(configs, progress);
        const r = await httpFloor(
          o.seconds * 1000,
          o.ticker(`floor ${variant}`),
          variant === 'tls' ? { ...floorServer, client: floorClient } : undefined,
        );
        samples.push(sampleOf('floor', variant, 'floor', round, r));
        progress(`  trivial Node server ${variant}: ${fmt(r)}`);
      }
      for (const [w, wl] of TLS_WORKLOADS.entries()) {
        for (const c of slotOrder(configs, round * TLS_WORKLOADS.length + w)) {
          await settleAll(configs, progress);
          const label = `${c.system.name} ${c.variant} ${wl.label}`;
          try {
            const r = await measure(c.system, wl, o, o.ticker(label));
            samples.push(sampleOf(c.system.name, c.variant, wl.key, round, r));
            progress(`  ${label}: ${fmt(r)}`);
            const bad = Object.entries(r.statuses).filter(([s]) => !(Number(s) >= 200 && Number(s) < 300));
            if (bad.length)
              notes[`${wl.key}:${c.system.name}:${c.variant}`] =
                `round ${round + 1}: non-2xx ${bad.map(([s, n]) => `${s}×${n}`).join(', ')}`;
          } catch (err) {
            progress(`  ${label} failed: ${(err as Error).stack ?? String(err)}`);
            notes[`${wl.key}:${c.system.name}:${c.variant}`] = (err as Error).message;
          }
        }
      }
    }
  } finally {
    progress('stopping every cluster');
    for (const c of configs) await c.system.close().catch(() => undefined);
  }
  if (!o.etcdBin) notes.etcd = 'etcd not run (not installed, or --no-etcd): etcd columns n/a';
  const tlsRuns = samples.filter((s) => s.variant === 'tls' && s.system !== 'floor');
  if (tlsRuns.length > 0) {
    const opened = tlsRuns.reduce((a, s) => a + s.connectionsOpened, 0);
    const requests = tlsRuns.reduce((a, s) => a + s.ok + s.errors, 0);
    notes.keepalive =
      `the load generator opens its 64 connections before the clock starts and keeps them open through each run (keep-alive, as a real client's pool does): ` +
      `${opened.toLocaleString('en-US')} TLS handshakes for ${requests.toLocaleString('en-US')} requests over TLS, so the figures measure encrypted requests, not handshakes`;
  }
  return { figures: tlsFigures(samples), samples, notes, costPercent: costPercentOf(samples) };
}

function log(o: TlsBenchOptions, who: string): { onLog?: (id: string, line: string) => void } {
  return o.onLog ? { onLog: o.onLog(who) } : {};
}

async function measure(
  sys: System,
  wl: TlsWorkload,
  o: TlsBenchOptions,
  tick: ReturnType<Ticker>,
): Promise<RunFigures> {
  // Plain and TLS alike: the 64 connections are up before the clock starts, so a TLS run
  // measures encrypted requests on warm connections, not its 64 handshakes.
  const common = { target: wl.target, connections: 64, durationMs: o.seconds * 1000, tick, connectFirst: true };
  return wl.kind === 'write'
    ? writeRun(sys, { ...common, maxRequests: 10_000_000, payload: PAYLOAD })
    : readRun(sys, { ...common, serializable: wl.serializable === true, maxRequests: 100_000_000, keys: WRITE_KEYS });
}

/** Writes each of the 10,000 keys once at 64 connections (JIT and TLS warm, reads find every key). */
async function prefill(c: Config, o: TlsBenchOptions): Promise<void> {
  const sys = c.system;
  const leader = await sys.leader();
  const r = await runLoad({
    targets: [sys.target(leader)],
    connections: 64,
    durationMs: 120_000,
    maxRequests: WRITE_KEYS,
    timeoutMs: 15_000,
    request: (seq) => sys.write('writes', seq, PAYLOAD),
    onTick: o.ticker(`${sys.name} ${c.variant} prefill`),
  });
  o.progress(
    `  ${sys.name} ${c.variant}: prefilled ${r.ok.toLocaleString('en-US')} keys in ${(r.elapsedMs / 1000).toFixed(1)} s`,
  );
  if (r.ok < WRITE_KEYS) throw new Error(`${sys.name} ${c.variant}: only ${r.ok} of ${WRITE_KEYS} keys prefilled`);
}

/** Every cluster has a leader and all of them are quiet (< 0.3 cores each over one second, at most 60 s). */
async function settleAll(configs: readonly Config[], progress: Progress): Promise<void> {
  for (const c of configs) await c.system.leader(30_000);
  const deadline = performance.now() + 60_000;
  for (;;) {
    const c0 = configs.map((c) => clusterCpu(c.system));
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 1000));
    const secs = (performance.now() - t0) / 1000;
    const cores = configs.map((c, i) => (clusterCpu(c.system) - c0[i]!) / secs);
    if (cores.every((x) => x < 0.3)) return;
    if (performance.now() > deadline) {
      progress(`  clusters still busy after 60 s (${cores.map((x) => x.toFixed(2)).join(', ')} cores); going on`);
      return;
    }
  }
}

function sampleOf(
  system: SystemName | 'floor',
  variant: Variant,
  workload: string,
  round: number,
  r: RunFigures,
): TlsSample {
  return {
    system,
    variant,
    workload,
    round,
    throughput: r.throughput,
    p50: r.p50,
    p99: r.p99,
    cpuUsPerOp: r.cpuUsPerOp,
    ok: r.ok,
    errors: r.errors,
    connectionsOpened: r.connectionsOpened,
  };
}

function fmt(r: RunFigures): string {
  const cpu = Number.isFinite(r.cpuUsPerOp) ? `, ${Math.round(r.cpuUsPerOp)} µs CPU/op` : '';
  return `${Math.round(r.throughput).toLocaleString('en-US')}/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms${cpu}, ${r.connectionsOpened} connections${r.errors ? `, ${r.errors} errors` : ''}`;
}

// ---- figures (pure) -----------------------------------------------------------------------

function medianOf(xs: readonly number[]): number | null {
  const finite = xs.filter((x) => Number.isFinite(x));
  return finite.length > 0 ? median(finite) : null;
}

function pick(samples: readonly TlsSample[], system: TlsSample['system'], variant: Variant, workload: string) {
  return samples.filter((s) => s.system === system && s.variant === variant && s.workload === workload);
}

/** Median over rounds of one metric. */
function med(
  samples: readonly TlsSample[],
  system: TlsSample['system'],
  variant: Variant,
  workload: string,
  metric: 'throughput' | 'p99' | 'cpuUsPerOp',
): number | null {
  return medianOf(pick(samples, system, variant, workload).map((s) => s[metric]));
}

/** Per round with both runs: f(tls, plain); the median of those. */
function paired(
  samples: readonly TlsSample[],
  system: TlsSample['system'],
  workload: string,
  f: (tls: TlsSample, plain: TlsSample) => number,
): number | null {
  const plain = pick(samples, system, 'plain', workload);
  const out: number[] = [];
  for (const t of pick(samples, system, 'tls', workload)) {
    const p = plain.find((x) => x.round === t.round);
    if (p) out.push(f(t, p));
  }
  return medianOf(out);
}

/** TLS throughput / plain throughput, median of the rounds' pairs: the share of its throughput a system keeps over TLS. */
export function keptShare(samples: readonly TlsSample[], system: TlsSample['system'], workload: string): number | null {
  return paired(samples, system, workload, (t, p) => (p.throughput > 0 ? t.throughput / p.throughput : Number.NaN));
}

export function costPercentOf(samples: readonly TlsSample[]): Record<string, Partial<Record<SystemName, number>>> {
  const out: Record<string, Partial<Record<SystemName, number>>> = {};
  for (const wl of TLS_WORKLOADS) {
    const row: Partial<Record<SystemName, number>> = {};
    for (const sys of ['rollcall', 'etcd'] as const) {
      const k = keptShare(samples, sys, wl.key);
      if (k !== null) row[sys] = (1 - k) * 100;
    }
    out[wl.key] = row;
  }
  return out;
}

/**
 * The table: per workload, throughput plain and over TLS (ratio = Rollcall / etcd, the
 * issue's goal on the TLS one), the share of throughput each keeps over TLS (goal >= 1:
 * TLS costs Rollcall no more, in percent, than it costs etcd), p99 over TLS, and the CPU
 * per request plain, over TLS and what TLS adds; then the trivial Node server's floor.
 */
export function tlsFigures(samples: readonly TlsSample[]): Figure[] {
  const figs: Figure[] = [];
  for (const wl of TLS_WORKLOADS) {
    const k = wl.key;
    const both = (variant: Variant, metric: 'throughput' | 'p99' | 'cpuUsPerOp') =>
      [med(samples, 'rollcall', variant, k, metric), med(samples, 'etcd', variant, k, metric)] as const;
    if (both('plain', 'throughput').every((v) => v === null) && both('tls', 'throughput').every((v) => v === null))
      continue;
    const unit = wl.kind === 'write' ? 'write' : 'read';
    figs.push(makeFigure(`${wl.label} throughput, plain`, 'ops/s', 'higher', ...both('plain', 'throughput')));
    figs.push(
      makeFigure(
        `${wl.label} throughput, TLS`,
        'ops/s',
        'higher',
        ...both('tls', 'throughput'),
        wl.goal ? { goal: wl.goal } : {},
      ),
    );
    figs.push(
      makeFigure(
        `${wl.label} throughput kept over TLS (TLS / plain)`,
        '×',
        'higher',
        keptShare(samples, 'rollcall', k),
        keptShare(samples, 'etcd', k),
        { goal: '>= 1' },
      ),
    );
    figs.push(makeFigure(`${wl.label} p99, TLS`, 'ms', 'lower', ...both('tls', 'p99')));
    figs.push(
      makeFigure(`${wl.label} CPU per ${unit}, all 3 nodes, plain`, 'µs', 'lower', ...both('plain', 'cpuUsPerOp')),
    );
    figs.push(makeFigure(`${wl.label} CPU per ${unit}, all 3 nodes, TLS`, 'µs', 'lower', ...both('tls', 'cpuUsPerOp')));
    figs.push(
      makeFigure(
        `${wl.label} CPU per ${unit} TLS adds, all 3 nodes`,
        'µs',
        'lower',
        paired(samples, 'rollcall', k, (t, p) => t.cpuUsPerOp - p.cpuUsPerOp),
        paired(samples, 'etcd', k, (t, p) => t.cpuUsPerOp - p.cpuUsPerOp),
      ),
    );
  }
  const floorNote = { note: 'machine floor (not a system figure)' };
  const floorPlain = med(samples, 'floor', 'plain', 'floor', 'throughput');
  const floorTls = med(samples, 'floor', 'tls', 'floor', 'throughput');
  if (floorPlain !== null || floorTls !== null) {
    figs.push(
      makeFigure('floor: trivial Node server 64c req/s, plain', 'req/s', 'higher', floorPlain, null, floorNote),
    );
    figs.push(makeFigure('floor: trivial Node server 64c req/s, TLS', 'req/s', 'higher', floorTls, null, floorNote));
    figs.push(
      makeFigure(
        'floor: trivial Node server kept over TLS (TLS / plain)',
        '×',
        'higher',
        keptShare(samples, 'floor', 'floor'),
        null,
        floorNote,
      ),
    );
  }
  return figs;
}
