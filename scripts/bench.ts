/**
 * Rollcall against etcd on the same machine: a 3-node cluster of each on loopback (temp
 * dirs, default settings), the same workloads from the same load generator, interleaved
 * workload by workload, and one table of figures with ratio = Rollcall / etcd.
 *
 *   npm run build && node dist/scripts/bench.js [--quick] [--out FILE] [--svg FILE]
 *                                               [--only LIST] [--no-etcd] [--profile DIR]
 *
 *   --quick       short version (under about 3 minutes)
 *   --out FILE    JSON: {"machine": {...}, "figures": [{name, unit, rollcall, etcd, ratio, better}], ...}
 *   --svg FILE    latency-against-throughput plot of the write runs
 *   --only LIST   comma-separated subset of: floors,writes,reads,watch,watch1,failover,restart,
 *                 sessions (watch1: the watch fan-out fed by one writing connection)
 *   --no-etcd     Rollcall only (etcd columns n/a)
 *   --sessions N  sessions in the sessions workload (default 3,000 quick, 20,000 full)
 *   --wait-quiet S  first wait up to S seconds for the machine to be quiet (other work < 0.3 cores)
 *   --profile DIR instead of the comparison: run Rollcall under a 64-connection load with the
 *                 V8 CPU profiler (as `node --cpu-prof`) into DIR and print every node's hot spots
 *   --profile-workload W   writes (to the leader, default), follower-writes, lin-reads or
 *                 ser-reads (on a follower); --profile-seconds S (default 20);
 *                 --profile-connections N (default 64)
 *   --tls         instead of the full comparison: writes and reads at 64 connections on Rollcall
 *                 and etcd, each plain and over TLS (scripts/bench/tls.ts): the TLS cost of each
 *                 (TLS / plain) and Rollcall / etcd over TLS; --tls-seconds S per run (5; 1.5
 *                 with --quick), --tls-rounds N (3; 2 with --quick), --tls-server-only (no
 *                 client certificates on either system); --out as above
 *   --scale       instead of the comparison: issue 21's scale workloads (scripts/bench/scale.ts),
 *                 with --scale-instances N (1,000,000), --scale-sessions N (50,000),
 *                 --scale-seconds S (300, the sessions soak), --scale-session-ttl S (30),
 *                 --scale-watchers N (10,000),
 *                 --scale-changes N (100), --scale-behind N (12,000, the rejoin's gap),
 *                 --scale-only LIST (instances,sessions,watchers); --out and --svg as above;
 *                 --scale-replot FILE.json --svg FILE draws the plot again from a run's JSON;
 *                 --scale-profile DIR: the restarted nodes under the V8 profiler (start-up load
 *                 and listings), hot spots in DIR/summary.txt (not the benchmark's figures)
 *
 * Progress goes to stderr, the table to stdout. Every process started is killed by PID at
 * the end, on error and on Ctrl-C. etcd missing: the script says how to install it and
 * runs the Rollcall figures alone.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { ETCD_INSTALL_HINT, etcdVersion, findEtcd } from './bench/etcd.js';
import { buildReport, type Figure, makeFigure, renderTable } from './bench/format.js';
import { runLoad } from './bench/loadgen.js';
import { LoadMeter, reapAll, trackedPids } from './bench/procs.js';
import { type CpuProfile, renderProfileSummary, summarizeProfile } from './bench/profile.js';
import { plotScale, runScale, SCALE_PARTS, type ScalePart } from './bench/scale.js';
import { median } from './bench/stats.js';
import { type PlotSeries, renderPlot } from './bench/svg.js';
import { EtcdSystem, payloadOf, RollcallSystem, type System, type SystemName } from './bench/systems.js';
import { runTlsBench, TLS_WORKLOADS } from './bench/tls.js';
import {
  clusterCpu,
  failoverRun,
  fsyncFloor,
  httpFloor,
  type RunFigures,
  readRun,
  restartRun,
  sessionsRun,
  type Ticker,
  WRITE_KEYS,
  watchRun,
  writeRun,
} from './bench/workloads.js';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    out: { type: 'string' },
    svg: { type: 'string' },
    only: { type: 'string' },
    'no-etcd': { type: 'boolean', default: false },
    profile: { type: 'string' },
    'profile-seconds': { type: 'string', default: '20' },
    'profile-workload': { type: 'string', default: 'writes' },
    'profile-connections': { type: 'string', default: '64' },
    'wait-quiet': { type: 'string', default: '0' },
    sessions: { type: 'string' },
    tls: { type: 'boolean', default: false },
    'tls-seconds': { type: 'string' },
    'tls-rounds': { type: 'string' },
    'tls-server-only': { type: 'boolean', default: false },
    scale: { type: 'boolean', default: false },
    'scale-instances': { type: 'string', default: '1000000' },
    'scale-sessions': { type: 'string', default: '50000' },
    'scale-seconds': { type: 'string', default: '300' },
    'scale-session-ttl': { type: 'string', default: '30' },
    'scale-watchers': { type: 'string', default: '10000' },
    'scale-changes': { type: 'string', default: '100' },
    'scale-behind': { type: 'string', default: '12000' },
    'scale-only': { type: 'string' },
    'scale-replot': { type: 'string' },
    'scale-profile': { type: 'string' },
  },
});

const QUICK = values.quick === true;
const ALL = ['floors', 'writes', 'reads', 'watch', 'watch1', 'failover', 'restart', 'sessions'] as const;
type Workload = (typeof ALL)[number];
const only = new Set<string>(values.only ? values.only.split(',').map((s) => s.trim()) : ALL);
for (const w of only)
  if (!(ALL as readonly string[]).includes(w))
    throw new Error(`--only: unknown workload ${w} (known: ${ALL.join(', ')})`);

/** Sizes of everything, quick and full. */
const PLAN = QUICK
  ? {
      writeMs: 1500,
      writeMax: 20_000,
      readMs: 1500,
      readMax: 100_000,
      watch: [{ watchers: 1000, changes: 250 }],
      watch1: { watchers: 1000, changes: 250, idleWrites: 200 },
      failoverReps: 1,
      failoverPostMs: 10_000,
      sessions: 3000,
      sessionsMs: 8000,
      restartInstances: 10_000,
      fsyncSamples: 200,
      httpFloorMs: 2000,
    }
  : {
      writeMs: 8000,
      writeMax: 100_000,
      readMs: 8000,
      readMax: 1_000_000,
      watch: [
        { watchers: 1000, changes: 1000 },
        { watchers: 10_000, changes: 100 },
      ],
      watch1: { watchers: 1000, changes: 1000, idleWrites: 500 },
      failoverReps: 3,
      failoverPostMs: 15_000,
      sessions: 20_000,
      sessionsMs: 30_000,
      restartInstances: 100_000,
      fsyncSamples: 1000,
      httpFloorMs: 8000,
    };

if (values.sessions) PLAN.sessions = Number(values.sessions);
const PAYLOAD = payloadOf(256);
const started = performance.now();

function progress(msg: string): void {
  clearTick();
  const t = ((performance.now() - started) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[${t}s] ${msg}\n`);
}

let tickShown = false;
function clearTick(): void {
  if (tickShown && process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  tickShown = false;
}

const ticker: Ticker = (label) => (p) => {
  if (!process.stderr.isTTY) return;
  const rate = p.elapsedMs > 0 ? Math.round((p.ok * 1000) / p.elapsedMs) : 0;
  process.stderr.write(
    `\r\x1b[K        ${label}: ${(p.elapsedMs / 1000).toFixed(0)} s, ${p.ok.toLocaleString('en-US')} ok (${rate.toLocaleString('en-US')}/s), ${p.errors} errors`,
  );
  tickShown = true;
};

// ---- results ----------------------------------------------------------------------------

/** values[key][system] */
const results = new Map<string, Partial<Record<SystemName, number>>>();
const notes = new Map<string, string>();
function put(sys: SystemName, key: string, v: number): void {
  const row = results.get(key) ?? {};
  row[sys] = v;
  results.set(key, row);
}
function get(sys: SystemName, key: string): number | null {
  return results.get(key)?.[sys] ?? null;
}
const writeSeries: {
  system: SystemName;
  target: string;
  connections: number;
  throughput: number;
  p50: number;
  p99: number;
  p999: number;
}[] = [];
const loadByWorkload: Record<string, { busyCores: number; foreignCores: number; seconds: number }> = {};

// ---- machine ----------------------------------------------------------------------------

function sh(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '';
  }
}

function filesystemOf(dir: string): { mount: string; type: string; device: string } {
  try {
    const mounts = readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .map((l) => l.split(' '))
      .filter((f) => f.length > 3);
    let best = { mount: '/', type: '?', device: '?' };
    for (const [device, mount, type] of mounts as [string, string, string][]) {
      if (
        (dir === mount || dir.startsWith(mount.endsWith('/') ? mount : `${mount}/`)) &&
        mount.length >= best.mount.length
      )
        best = { mount, type, device };
    }
    return best;
  } catch {
    return { mount: '?', type: '?', device: '?' };
  }
}

function machine(etcd: string | null): Record<string, unknown> {
  const cpus = os.cpus();
  const osRelease = /PRETTY_NAME="([^"]+)"/.exec(sh('cat', ['/etc/os-release']))?.[1] ?? os.type();
  return {
    cpu: cpus[0]?.model ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    os: osRelease,
    kernel: os.release(),
    virtualization:
      sh('systemd-detect-virt', []) ||
      (readFileSync('/proc/cpuinfo', 'utf8').includes('hypervisor') ? 'vm (hypervisor flag)' : 'none'),
    node: process.version,
    etcd: etcd ? etcdVersion(etcd) : null,
    dataFilesystem: { dir: os.tmpdir(), ...filesystemOf(os.tmpdir()) },
    rollcallCommit: sh('git', ['describe', '--always', '--dirty']) || null,
    loadavgAtStart: os.loadavg().map((x) => Number(x.toFixed(2))),
    date: new Date().toISOString(),
    quick: QUICK,
  };
}

// ---- the run ------------------------------------------------------------------------------

async function phase(name: Workload, systems: System[], fn: (sys: System, i: number) => Promise<void>): Promise<void> {
  if (!only.has(name)) return;
  const meter = new LoadMeter(trackedPids);
  progress(`── ${name}`);
  // Interleaved: each workload runs on every system in turn; the order alternates so that
  // neither system always goes first (warm caches, drifting background load).
  const order = phaseCount++ % 2 === 0 ? systems : [...systems].reverse();
  for (const [i, sys] of order.entries()) {
    try {
      // Every system quiet, not only the one about to run: the other one's aftermath (etcd
      // snapshotting after the writes, a watch backlog) would otherwise land in this one's figures.
      for (const s of order) await settle(s);
      await fn(sys, i);
    } catch (err) {
      progress(`  ${sys.name}: ${name} failed: ${(err as Error).stack ?? String(err)}`);
      notes.set(`${name}:${sys.name}`, (err as Error).message);
    }
  }
  loadByWorkload[name] = meter.read();
}
let phaseCount = 0;

/**
 * Before a workload: the system has a leader and has gone quiet (its nodes together under
 * 0.3 cores for a second, at most 60 s), so one workload's aftermath (a watch backlog, an
 * election) does not land in the next one's figures. Called for every system before each turn.
 */
async function settle(sys: System): Promise<void> {
  await sys.leader(30_000);
  const deadline = performance.now() + 60_000;
  for (;;) {
    const c0 = clusterCpu(sys);
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 1000));
    const cores = (clusterCpu(sys) - c0) / ((performance.now() - t0) / 1000);
    if (cores < 0.3) return;
    if (performance.now() > deadline) {
      progress(`  ${sys.name}: still busy (${cores.toFixed(2)} cores) after 60 s; going on`);
      return;
    }
  }
}

/** Writes every one of the 10,000 keys once (64 connections): JIT warm-up, and reads find them all. */
async function warmUp(sys: System): Promise<void> {
  const leader = await sys.leader();
  const r = await runLoad({
    targets: [sys.target(leader)],
    connections: 64,
    durationMs: 120_000,
    maxRequests: WRITE_KEYS,
    timeoutMs: 15_000,
    request: (seq) => sys.write('writes', seq, PAYLOAD),
    onTick: ticker(`${sys.name} prefill`),
  });
  progress(
    `  ${sys.name}: prefilled ${r.ok.toLocaleString('en-US')} keys in ${(r.elapsedMs / 1000).toFixed(1)} s (${Math.round(r.throughput)}/s)`,
  );
  if (r.ok < WRITE_KEYS) notes.set(`prefill:${sys.name}`, `only ${r.ok} of ${WRITE_KEYS} keys written before the runs`);
}

function putRun(sys: SystemName, key: string, r: RunFigures): void {
  put(sys, `${key}:throughput`, r.throughput);
  put(sys, `${key}:p50`, r.p50);
  put(sys, `${key}:p99`, r.p99);
  put(sys, `${key}:p999`, r.p999);
  put(sys, `${key}:errors`, r.errors);
  put(sys, `${key}:cpu`, r.cpuUsPerOp);
  const bad = Object.entries(r.statuses).filter(([s]) => !(Number(s) >= 200 && Number(s) < 300));
  if (bad.length) notes.set(`${key}:${sys}`, `non-2xx: ${bad.map(([s, n]) => `${s}×${n}`).join(', ')}`);
}

function fmtRun(r: RunFigures): string {
  const cpu = Number.isFinite(r.cpuUsPerOp) ? `, ${Math.round(r.cpuUsPerOp)} µs CPU/op` : '';
  return `${Math.round(r.throughput).toLocaleString('en-US')}/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, p999 ${r.p999.toFixed(2)} ms${cpu}${r.errors ? `, ${r.errors} errors` : ''}`;
}

async function compare(): Promise<void> {
  const etcdBin = values['no-etcd'] ? null : findEtcd();
  if (!etcdBin && !values['no-etcd']) progress(ETCD_INSTALL_HINT);
  await waitQuiet(Number(values['wait-quiet']));
  const mach = machine(etcdBin);
  const systems: System[] = [];
  const overall = new LoadMeter(trackedPids);
  const onLog = (who: string) => (id: string, line: string) => {
    if (/"level":(50|60)|"level":"(error|fatal|panic)"/.test(line)) progress(`  ${who} ${id}: ${line.slice(0, 300)}`);
  };

  try {
    if (only.has('floors')) {
      progress('── floors (the machine)');
      const fs = fsyncFloor(PLAN.fsyncSamples);
      put('rollcall', 'floor:fsync:p50', fs.p50);
      put('rollcall', 'floor:fsync:p99', fs.p99);
      progress(
        `  fsync (256 B write + fdatasync): p50 ${fs.p50.toFixed(2)} ms, p99 ${fs.p99.toFixed(2)} ms over ${fs.count}`,
      );
      const hf = await httpFloor(PLAN.httpFloorMs, ticker('trivial HTTP server'));
      put('rollcall', 'floor:http:throughput', hf.throughput);
      put('rollcall', 'floor:http:p99', hf.p99);
      progress(`  trivial Node HTTP server, 64 connections: ${fmtRun(hf)}`);
    }

    progress('starting a 3-node Rollcall cluster');
    systems.push(await RollcallSystem.start({ size: 3, onLog: onLog('rollcall') }));
    if (etcdBin) {
      progress(`starting a 3-node etcd ${mach.etcd} cluster`);
      systems.push(await EtcdSystem.start({ bin: etcdBin, size: 3, onLog: onLog('etcd') }));
    }
    for (const s of systems) await warmUp(s);

    await phase('writes', systems, async (sys) => {
      for (const target of ['leader', 'follower'] as const) {
        for (const connections of [1, 16, 64]) {
          const key = `write:${target}:${connections}`;
          const r = await writeRun(sys, {
            target,
            connections,
            durationMs: PLAN.writeMs,
            maxRequests: PLAN.writeMax,
            payload: PAYLOAD,
            tick: ticker(`${sys.name} ${key}`),
          });
          putRun(sys.name, key, r);
          writeSeries.push({
            system: sys.name,
            target,
            connections,
            throughput: r.throughput,
            p50: r.p50,
            p99: r.p99,
            p999: r.p999,
          });
          progress(`  ${sys.name} write ${target} ${connections}c: ${fmtRun(r)}`);
        }
      }
    });

    await phase('reads', systems, async (sys) => {
      // Reads hit keys that exist: the prefill wrote all 10,000.
      for (const serializable of [false, true]) {
        for (const target of ['leader', 'follower'] as const) {
          const key = `read:${serializable ? 'serializable' : 'linearizable'}:${target}`;
          const r = await readRun(sys, {
            target,
            serializable,
            connections: 64,
            durationMs: PLAN.readMs,
            maxRequests: PLAN.readMax,
            keys: WRITE_KEYS,
            tick: ticker(`${sys.name} ${key}`),
          });
          putRun(sys.name, key, r);
          progress(`  ${sys.name} ${key}: ${fmtRun(r)}`);
        }
      }
    });

    // What both watch workloads record of a run: rates, latency, accounting, and a note when
    // not every change was written in time or some writes failed.
    const recordWatch = (
      name: SystemName,
      key: string,
      r: Extract<Awaited<ReturnType<typeof watchRun>>, { ok: true }>,
      changes: number,
    ): void => {
      put(name, `${key}:eps`, r.eventsPerSec);
      put(name, `${key}:p50`, r.latency.p50);
      put(name, `${key}:p99`, r.latency.p99);
      put(name, `${key}:lost`, r.lost + r.duplicates);
      put(name, `${key}:cpu`, (r.serverCpuSec * 1e6) / Math.max(1, r.delivered));
      if (r.writtenInTime < changes)
        notes.set(
          `${key}:${name}`,
          `only ${r.writtenInTime} of ${changes} changes were written within the ${r.changeBoundMs / 1000} s bound: events/s is over those ${r.changes} changes (they exist and are owed to every watcher)`,
        );
      else if (r.failedWrites > 0)
        notes.set(
          `${key}:${name}`,
          `${r.failedWrites} of ${changes} change writes failed or timed out; ${r.changes} changes exist and are owed to every watcher`,
        );
    };

    await phase('watch', systems, async (sys) => {
      for (const { watchers, changes } of PLAN.watch) {
        const r = await watchRun(sys, {
          watchers,
          changes,
          payload: PAYLOAD,
          deliverTimeoutMs: QUICK ? 15_000 : 120_000,
          progress,
        });
        const key = `watch:${watchers}`;
        if (!r.ok) {
          notes.set(`${key}:${sys.name}`, r.reason);
          progress(`  ${sys.name} watch ${watchers}: n/a (${r.reason})`);
          continue;
        }
        recordWatch(sys.name, key, r, changes);
        progress(
          `  ${sys.name} watch ${watchers} watchers × ${r.changes} changes: ${Math.round(r.eventsPerSec).toLocaleString('en-US')} events/s, p50 ${r.latency.p50.toFixed(1)} ms, p99 ${r.latency.p99.toFixed(1)} ms, delivered ${r.delivered}, lost ${r.lost}, duplicates ${r.duplicates}, failed writes ${r.failedWrites}; CPU ${r.serverCpuSec.toFixed(1)} s in the nodes, ${r.clientCpuSec.toFixed(1)} s in the client`,
        );
      }
    });

    // The same fan-out fed by ONE writing connection: every write waits for the one before
    // it, so a fan-out that holds the event loop shows up directly in the writer's latency
    // (issue 21: "the fan-out must not starve the writes feeding it").
    await phase('watch1', systems, async (sys) => {
      const { watchers, changes, idleWrites } = PLAN.watch1;
      const r = await watchRun(sys, {
        watchers,
        changes,
        payload: PAYLOAD,
        deliverTimeoutMs: QUICK ? 15_000 : 120_000,
        progress,
        writers: 1,
        idleWrites,
      });
      const key = `watch1:${watchers}`;
      if (!r.ok) {
        notes.set(`${key}:${sys.name}`, r.reason);
        progress(`  ${sys.name} watch1 ${watchers}: n/a (${r.reason})`);
        return;
      }
      recordWatch(sys.name, key, r, changes);
      put(sys.name, `${key}:writeP50`, r.write.p50);
      put(sys.name, `${key}:writeP99`, r.write.p99);
      if (r.idleWrite) put(sys.name, `${key}:idleWriteP50`, r.idleWrite.p50);
      put(sys.name, `${key}:clientLoopP99`, r.clientLoopDelay.p99);
      progress(
        `  ${sys.name} watch1 ${watchers} watchers × ${r.changes} changes from 1 connection: ${Math.round(r.eventsPerSec).toLocaleString('en-US')} events/s, p50 ${r.latency.p50.toFixed(1)} ms, p99 ${r.latency.p99.toFixed(1)} ms; writer p50 ${r.write.p50.toFixed(2)} ms (idle ${r.idleWrite ? r.idleWrite.p50.toFixed(2) : 'n/a'} ms), p99 ${r.write.p99.toFixed(2)} ms; lost ${r.lost}, duplicates ${r.duplicates}; CPU ${r.serverCpuSec.toFixed(1)} s in the nodes, ${r.clientCpuSec.toFixed(1)} s in the client; client event-loop delay p50 ${r.clientLoopDelay.p50.toFixed(1)} ms, p99 ${r.clientLoopDelay.p99.toFixed(1)} ms, max ${r.clientLoopDelay.max.toFixed(1)} ms`,
      );
    });

    await phase('failover', systems, async (sys) => {
      const outs = [];
      for (let rep = 0; rep < PLAN.failoverReps; rep++)
        outs.push(
          await failoverRun(sys, {
            preMs: QUICK ? 1500 : 2000,
            maxPostMs: PLAN.failoverPostMs,
            settleMs: QUICK ? 1000 : 2000,
            payload: PAYLOAD,
            progress,
          }),
        );
      put(sys.name, 'failover:outage', median(outs.map((o) => o.outageMs)));
      put(sys.name, 'failover:longest', Math.max(...outs.map((o) => o.longestMs)));
      put(sys.name, 'failover:longestBefore', Math.max(...outs.map((o) => o.longestBeforeKillMs)));
      put(sys.name, 'failover:failed', median(outs.map((o) => o.failed)));
      put(
        sys.name,
        'failover:pastDeadline',
        outs.reduce((a, o) => a + o.pastDeadline, 0),
      );
    });

    await phase('restart', systems, async (sys) => {
      const r = await restartRun(sys, {
        instances: PLAN.restartInstances,
        payload: PAYLOAD,
        maxLoadMs: QUICK ? 30_000 : 180_000,
        progress,
        tick: ticker(`${sys.name} loading`),
      });
      put(sys.name, 'restart:ready', r.readyMs);
      put(sys.name, 'restart:rssLoad', r.rssAfterLoadMb);
      put(sys.name, 'restart:rssRestart', r.rssAfterRestartMb);
      put(sys.name, 'restart:load', r.loadThroughput);
      put(sys.name, 'restart:instances', r.instances);
      progress(
        `  ${sys.name}: processes up after ${r.processesUpMs.toFixed(0)} ms, ready ${r.readyMs.toFixed(0)} ms after restart with ${r.instances} instances; RSS/node ${r.rssAfterLoadMb.toFixed(0)} MB after load, ${r.rssAfterRestartMb.toFixed(0)} MB after restart`,
      );
    });

    await phase('sessions', systems, async (sys) => {
      const r = await sessionsRun(sys, {
        sessions: PLAN.sessions,
        phaseMs: PLAN.sessionsMs,
        payload: PAYLOAD,
        progress,
        tick: ticker(`${sys.name} keepalives`),
      });
      put(sys.name, 'sessions:cpu', r.leaderCpuPct);
      put(sys.name, 'sessions:writeP99', r.writeP99);
      put(sys.name, 'sessions:false', r.falseExpiries);
      put(sys.name, 'sessions:kaRate', r.keepalivesPerSec);
      put(sys.name, 'sessions:kaP99', r.keepaliveP99);
      if (r.expiredSamples.length) progress(`  ${sys.name}: expired answers, e.g. ${r.expiredSamples.join(' | ')}`);
      if (r.opened < r.sessions || r.keepaliveErrors > 0) {
        notes.set(
          `sessions:${sys.name}`,
          `${r.opened}/${r.sessions} opened, ${r.keepaliveErrors} keepalive errors${r.errorSamples.length ? ` (e.g. ${r.errorSamples[0]})` : ''}`,
        );
      }
      progress(
        `  ${sys.name}: ${r.sessions} sessions, leader CPU ${r.leaderCpuPct.toFixed(0)}%, ${Math.round(r.keepalivesPerSec)} keepalives/s (p99 ${r.keepaliveP99.toFixed(1)} ms), write p99 ${r.writeP99.toFixed(1)} ms, false expiries ${r.falseExpiries}, keepalive errors ${r.keepaliveErrors}`,
      );
    });
  } finally {
    progress('stopping every process');
    for (const s of systems) await s.close().catch(() => undefined);
  }

  const figs = buildFigures(etcdBin !== null);
  const load = overall.read();
  const report = buildReport(
    {
      ...mach,
      loadavgAtEnd: os.loadavg().map((x) => Number(x.toFixed(2))),
      foreignCoresAverage: Number(load.foreignCores.toFixed(2)),
      busyCoresAverage: Number(load.busyCores.toFixed(2)),
      seconds: Math.round(load.seconds),
    },
    figs,
    { writeSeries, loadByWorkload, notes: Object.fromEntries(notes) },
  );
  process.stdout.write(`\n${renderTable(figs)}\n\n`);
  process.stdout.write(
    `machine: ${mach.cpu}, ${mach.cores} cores, ${mach.memoryGiB} GiB, ${mach.os}, Node ${mach.node}, etcd ${mach.etcd ?? 'n/a'}; ` +
      `background load (CPU not ours): ${load.foreignCores.toFixed(2)} cores on average over ${Math.round(load.seconds)} s\n`,
  );
  for (const [k, v] of notes) process.stdout.write(`note ${k}: ${v}\n`);
  if (values.out) {
    writeFileSync(values.out, `${JSON.stringify(report, null, 2)}\n`);
    progress(`wrote ${values.out}`);
  }
  if (values.svg) {
    writeFileSync(values.svg, plotWrites(mach));
    progress(`wrote ${values.svg}`);
  }
}

/** Waits (bounded) until CPU work that is not ours falls under 0.3 cores for 3 s. */
async function waitQuiet(seconds: number): Promise<void> {
  if (!(seconds > 0)) return;
  const deadline = performance.now() + seconds * 1000;
  for (;;) {
    const meter = new LoadMeter(() => []);
    await new Promise((r) => setTimeout(r, 3000));
    const { busyCores } = meter.read();
    if (busyCores < 0.3) {
      progress(`machine quiet (${busyCores.toFixed(2)} cores busy)`);
      return;
    }
    if (performance.now() > deadline) {
      progress(`machine still busy (${busyCores.toFixed(2)} cores of other work); going ahead`);
      return;
    }
    progress(`waiting for a quiet machine: ${busyCores.toFixed(2)} cores busy with other work`);
  }
}

function buildFigures(withEtcd: boolean): Figure[] {
  const figs: Figure[] = [];
  const f = (
    name: string,
    unit: string,
    better: 'higher' | 'lower',
    key: string,
    extra: { goal?: string; machine?: boolean } = {},
  ) => {
    const r = get('rollcall', key);
    const e = extra.machine ? null : get('etcd', key);
    if (r === null && e === null && !results.has(key)) {
      // Not run (--only) or failed for both: leave it out unless a note explains it.
      const why =
        notes.get(`${key.split(':').slice(0, 2).join(':')}:rollcall`) ?? notes.get(`${key.split(':')[0]}:rollcall`);
      if (!why) return;
    }
    const note = extra.machine
      ? 'machine floor (not a system figure)'
      : [
          notes.get(`${key.split(':').slice(0, 2).join(':')}:rollcall`),
          !withEtcd ? 'etcd not run' : notes.get(`${key.split(':').slice(0, 2).join(':')}:etcd`),
        ]
          .filter(Boolean)
          .join('; ') || undefined;
    figs.push(
      makeFigure(name, unit, better, r, e, { ...(extra.goal ? { goal: extra.goal } : {}), ...(note ? { note } : {}) }),
    );
  };

  f('floor: fsync latency p50 of the data disk (write path)', 'ms', 'lower', 'floor:fsync:p50', { machine: true });
  f('floor: fsync latency p99 of the data disk (write path)', 'ms', 'lower', 'floor:fsync:p99', { machine: true });
  f('floor: trivial Node HTTP server, read req/s at 64 conns', 'req/s', 'higher', 'floor:http:throughput', {
    machine: true,
  });

  for (const target of ['leader', 'follower']) {
    for (const c of [1, 16, 64]) {
      const k = `write:${target}:${c}`;
      f(`write ${target} ${c}c throughput`, 'ops/s', 'higher', `${k}:throughput`, c === 64 ? { goal: '>= 2' } : {});
      f(`write ${target} ${c}c p50`, 'ms', 'lower', `${k}:p50`);
      f(`write ${target} ${c}c p99`, 'ms', 'lower', `${k}:p99`, c === 64 ? { goal: '<= 1' } : {});
      f(`write ${target} ${c}c p999`, 'ms', 'lower', `${k}:p999`);
      if (c === 64) f(`write ${target} ${c}c CPU per write, all 3 nodes`, 'µs', 'lower', `${k}:cpu`);
    }
  }
  for (const mode of ['linearizable', 'serializable']) {
    for (const target of ['leader', 'follower']) {
      const k = `read:${mode}:${target}`;
      const goal = mode === 'serializable' ? '>= 4' : target === 'follower' ? '>= 3' : undefined;
      f(`read ${mode} ${target} 64c throughput`, 'ops/s', 'higher', `${k}:throughput`, goal ? { goal } : {});
      f(`read ${mode} ${target} 64c p99`, 'ms', 'lower', `${k}:p99`);
      f(`read ${mode} ${target} 64c CPU per read, all 3 nodes`, 'µs', 'lower', `${k}:cpu`);
    }
  }
  for (const { watchers: w, changes } of PLAN.watch) {
    const k = `watch:${w}`;
    f(
      `watch fan-out ${w.toLocaleString('en-US')} watchers × ${changes.toLocaleString('en-US')} changes events/s`,
      'events/s',
      'higher',
      `${k}:eps`,
      w === 1000 ? { goal: '>= 5' } : {},
    );
    f(`watch ${w.toLocaleString('en-US')} watchers delivery p50`, 'ms', 'lower', `${k}:p50`);
    f(
      `watch ${w.toLocaleString('en-US')} watchers delivery p99`,
      'ms',
      'lower',
      `${k}:p99`,
      w === 1000 ? { goal: '<= 100 ms' } : {},
    );
    f(`watch ${w.toLocaleString('en-US')} watchers CPU per delivered event, all nodes`, 'µs', 'lower', `${k}:cpu`);
    f(`watch ${w.toLocaleString('en-US')} watchers events lost or duplicated`, 'events', 'lower', `${k}:lost`, {
      goal: '= 0 events',
    });
  }
  {
    const { watchers: w, changes } = PLAN.watch1;
    const k = `watch1:${w}`;
    const label = `watch 1-conn writer, ${w.toLocaleString('en-US')} watchers`;
    f(
      `watch fan-out ${w.toLocaleString('en-US')} watchers × ${changes.toLocaleString('en-US')} changes, 1 writing conn, events/s`,
      'events/s',
      'higher',
      `${k}:eps`,
      { goal: '>= 5' },
    );
    f(`${label}: delivery p50`, 'ms', 'lower', `${k}:p50`);
    f(`${label}: delivery p99`, 'ms', 'lower', `${k}:p99`);
    f(`${label}: write p50 during the fan-out`, 'ms', 'lower', `${k}:writeP50`);
    f(`${label}: write p99 during the fan-out`, 'ms', 'lower', `${k}:writeP99`);
    f(`${label}: write p50 idle (no watchers)`, 'ms', 'lower', `${k}:idleWriteP50`);
    f(`${label}: CPU per delivered event, all nodes`, 'µs', 'lower', `${k}:cpu`);
    // The writer shares the bench's event loop with the 1,000 watcher sockets: this much of
    // its latency (and of delivery) is the client's, not the system's.
    f(`${label}: bench client's event-loop delay p99 during the fan-out`, 'ms', 'lower', `${k}:clientLoopP99`);
    f(`${label}: events lost or duplicated`, 'events', 'lower', `${k}:lost`, { goal: '= 0 events' });
  }
  f('failover: writes unavailable after kill -9 of the leader', 'ms', 'lower', 'failover:outage', { goal: '<= 0.34' });
  f('failover: longest write in flight at the kill or after', 'ms', 'lower', 'failover:longest');
  f('failover: longest write before the kill', 'ms', 'lower', 'failover:longestBefore');
  f('failover: writes left unanswered over 5 s', 'count', 'lower', 'failover:pastDeadline', { goal: '= 0 count' });
  f('failover: failed writes (retried by the client)', 'count', 'lower', 'failover:failed');
  const ri = get('rollcall', 'restart:instances') ?? PLAN.restartInstances;
  const n = `${Math.round(ri / 1000)}k`;
  f(`restart: bulk write throughput loading ${n} instances (64c)`, 'ops/s', 'higher', 'restart:load');
  f(`restart to ready: linearizable read on every node, ${n} instances`, 'ms', 'lower', 'restart:ready');
  f(`memory: RSS per node after ${n} instance writes`, 'MB', 'lower', 'restart:rssLoad');
  f(`memory: RSS per node after restart with ${n} (read-ready)`, 'MB', 'lower', 'restart:rssRestart');
  const s = `${PLAN.sessions.toLocaleString('en-US')}`;
  f(`sessions (${s}, keepalive every 3 s): leader CPU, keepalive + write load`, '% core', 'lower', 'sessions:cpu');
  f(`sessions (${s}): write p99 beside the keepalives (200 writes/s)`, 'ms', 'lower', 'sessions:writeP99');
  f(`sessions (${s}): keepalive writes/s achieved`, 'ops/s', 'higher', 'sessions:kaRate');
  f(`sessions (${s}): keepalive write p99`, 'ms', 'lower', 'sessions:kaP99');
  f(`sessions (${s}): false expiries during keepalive writes`, 'sessions', 'lower', 'sessions:false', {
    goal: '= 0 sessions',
  });
  return figs;
}

function plotWrites(mach: Record<string, unknown>): string {
  const colors: Record<SystemName, string> = { rollcall: '#1f6fb4', etcd: '#e07b00' };
  const series = (pick: 'p50' | 'p99'): PlotSeries[] =>
    (['rollcall', 'etcd'] as const)
      .flatMap((system) =>
        (['leader', 'follower'] as const).map((target) => ({
          label: `${system === 'rollcall' ? 'Rollcall' : 'etcd'} → ${target}`,
          color: colors[system],
          dashed: target === 'follower',
          points: writeSeries
            .filter((w) => w.system === system && w.target === target)
            .map((w) => ({ x: w.throughput, y: w[pick], label: `${w.connections}c` })),
        })),
      )
      .filter((s) => s.points.length > 0);
  return renderPlot(
    [
      { title: 'p50 latency', series: series('p50') },
      { title: 'p99 latency', series: series('p99') },
    ],
    {
      title: 'Writes: latency against throughput (1, 16, 64 connections)',
      subtitle: `3-node clusters on loopback · ${String(mach.cpu)}, ${String(mach.cores)} cores · ${QUICK ? 'quick run' : 'full run'} · ${String(mach.date).slice(0, 10)}`,
    },
  );
}

// ---- profile mode ---------------------------------------------------------------------------

async function profileRollcall(dir: string): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const abs = path.resolve(dir);
  const seconds = Number(values['profile-seconds']);
  progress(`starting a 3-node Rollcall cluster with --cpu-prof into ${abs}`);
  // Node 20 does not take --cpu-prof from NODE_OPTIONS; the preload runs the same profiler.
  const preload = pathToFileURL(
    path.join(path.dirname(fileURLToPath(import.meta.url)), 'bench', 'cpu-prof-preload.js'),
  ).href;
  const sys = await RollcallSystem.start({
    size: 3,
    env: { NODE_OPTIONS: `--import ${preload}`, ROLLCALL_CPU_PROF_DIR: abs },
  });
  const ids = sys.cluster.nodes.map((n, i) => ({ id: n.id, pid: sys.pid(i) }));
  let leaderPid: number | undefined;
  try {
    await warmUp(sys);
    const leader = await sys.leader();
    leaderPid = sys.pid(leader);
    const w = values['profile-workload'] ?? 'writes';
    const connections = Number(values['profile-connections']);
    if (!Number.isInteger(connections) || connections < 1)
      throw new Error(`--profile-connections: a whole number ≥ 1, got ${values['profile-connections']}`);
    progress(`${w} at ${connections} connections for ${seconds} s (leader ${sys.cluster.nodes[leader]!.id})`);
    const common = { connections, durationMs: seconds * 1000, tick: ticker(`profile ${w}`) };
    let r: RunFigures;
    if (w === 'writes' || w === 'follower-writes') {
      r = await writeRun(sys, {
        ...common,
        target: w === 'writes' ? 'leader' : 'follower',
        maxRequests: 10_000_000,
        payload: PAYLOAD,
      });
    } else if (w === 'lin-reads' || w === 'ser-reads') {
      r = await readRun(sys, {
        ...common,
        target: 'follower',
        serializable: w === 'ser-reads',
        maxRequests: 100_000_000,
        keys: WRITE_KEYS,
      });
    } else throw new Error(`--profile-workload: unknown ${w}`);
    progress(`  ${fmtRun(r)}`);
  } finally {
    progress('stopping the nodes gracefully so the profiles are written');
    await sys.cluster.close(true);
  }
  await new Promise((r) => setTimeout(r, 500));
  const files = readdirSync(abs).filter((f) => f.endsWith('.cpuprofile'));
  const out: string[] = [];
  for (const file of files) {
    const pid = Number(/\.(\d+)\.\d+\.\d+\.cpuprofile$/.exec(file)?.[1]);
    const who = ids.find((x) => x.pid === pid);
    const role = pid === leaderPid ? 'leader' : 'follower';
    const summary = summarizeProfile(JSON.parse(readFileSync(path.join(abs, file), 'utf8')) as CpuProfile);
    out.push(renderProfileSummary(`${who?.id ?? `pid ${pid}`} (${role}) — ${file}`, summary));
  }
  const text = out.join('\n\n');
  writeFileSync(path.join(abs, 'summary.txt'), `${text}\n`);
  process.stdout.write(`${text}\n`);
  progress(`wrote ${path.join(abs, 'summary.txt')}`);
}

// ---- scale mode -------------------------------------------------------------------------------

function positiveInt(flag: string): number {
  const v = Number(values[flag as keyof typeof values]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${flag}: a positive integer`);
  return v;
}

/** The scale plot again from a run's --out JSON (after a change to the plot, without running again). */
function replotScale(file: string): void {
  if (!values.svg) throw new Error('--scale-replot needs --svg FILE');
  const json = JSON.parse(readFileSync(file, 'utf8')) as {
    machine: Record<string, unknown>;
    scale: Record<string, unknown>;
  };
  writeFileSync(values.svg, plotScale({ figures: [], detail: json.scale, notes: {} }, scaleSubtitle(json.machine)));
  progress(`wrote ${values.svg}`);
}

function scaleSubtitle(m: Record<string, unknown>): string {
  const start = (m.loadavgAtStart as number[] | undefined)?.[0];
  const end = (m.loadavgAtEnd as number[] | undefined)?.[0];
  return `3-node Rollcall on loopback · ${String(m.cpu)}, ${String(m.cores)} cores · load average ${start}–${end} · ${String(m.date).slice(0, 10)}`;
}

async function scale(): Promise<void> {
  if (values['scale-replot']) return replotScale(values['scale-replot']);
  const parts = new Set<ScalePart>(
    values['scale-only'] ? (values['scale-only'].split(',').map((x) => x.trim()) as ScalePart[]) : SCALE_PARTS,
  );
  for (const p of parts)
    if (!SCALE_PARTS.includes(p)) throw new Error(`--scale-only: unknown part ${p} (known: ${SCALE_PARTS.join(', ')})`);
  const etcdBin = values['no-etcd'] ? null : findEtcd();
  if (!etcdBin && !values['no-etcd'] && parts.has('sessions')) progress(ETCD_INSTALL_HINT);
  const mach = machine(etcdBin);
  const overall = new LoadMeter(trackedPids);
  const instances = positiveInt('scale-instances');
  const report = await runScale({
    instances,
    behind: positiveInt('scale-behind'),
    sessions: positiveInt('scale-sessions'),
    seconds: positiveInt('scale-seconds'),
    sessionTtlSec: positiveInt('scale-session-ttl'),
    watchers: positiveInt('scale-watchers'),
    changes: positiveInt('scale-changes'),
    parts,
    etcdBin,
    progress,
    // About 25 s of start per million instances on a quiet machine, three nodes at once on 2 cores.
    startTimeoutMs: Math.max(45_000, Math.ceil(instances / 1_000_000) * 300_000),
    ...(values['scale-profile'] ? { profileDir: values['scale-profile'] } : {}),
  });
  const load = overall.read();
  const machineOut = {
    ...mach,
    loadavgAtEnd: os.loadavg().map((x) => Number(x.toFixed(2))),
    foreignCoresAverage: Number(load.foreignCores.toFixed(2)),
    busyCoresAverage: Number(load.busyCores.toFixed(2)),
    seconds: Math.round(load.seconds),
  };
  process.stdout.write(`\n${renderTable(report.figures)}\n\n`);
  process.stdout.write(
    `machine: ${mach.cpu}, ${mach.cores} cores, ${mach.memoryGiB} GiB, Node ${mach.node}, etcd ${mach.etcd ?? 'n/a'}; ` +
      `load average at start ${(mach.loadavgAtStart as number[]).join(' ')}, at end ${machineOut.loadavgAtEnd.join(' ')}; ` +
      `background load (CPU not ours): ${load.foreignCores.toFixed(2)} cores on average over ${Math.round(load.seconds)} s\n`,
  );
  for (const [k, v] of Object.entries(report.notes)) process.stdout.write(`note ${k}: ${v}\n`);
  const json = buildReport(machineOut, report.figures, { scale: report.detail, notes: report.notes });
  if (values.out) {
    writeFileSync(values.out, `${JSON.stringify(json, null, 2)}\n`);
    progress(`wrote ${values.out}`);
  }
  if (values.svg) {
    writeFileSync(values.svg, plotScale(report, scaleSubtitle(machineOut)));
    progress(`wrote ${values.svg}`);
  }
}

// ---- TLS mode ---------------------------------------------------------------------------------

async function tlsCompare(): Promise<void> {
  const seconds = Number(values['tls-seconds'] ?? (QUICK ? 1.5 : 5));
  const rounds = Number(values['tls-rounds'] ?? (QUICK ? 2 : 3));
  if (!(seconds > 0 && seconds <= 600)) throw new Error('--tls-seconds: a number of seconds up to 600');
  if (!(Number.isInteger(rounds) && rounds >= 1 && rounds <= 20)) throw new Error('--tls-rounds: an integer 1-20');
  const etcdBin = values['no-etcd'] ? null : findEtcd();
  if (!etcdBin && !values['no-etcd']) progress(ETCD_INSTALL_HINT);
  await waitQuiet(Number(values['wait-quiet']));
  const mach = machine(etcdBin);
  const uptimeAtStart = sh('uptime', []);
  const overall = new LoadMeter(trackedPids);
  const r = await runTlsBench({
    etcdBin,
    seconds,
    rounds,
    clientCerts: !values['tls-server-only'],
    progress,
    ticker,
    onLog: (who) => (id, line) => {
      if (/"level":(50|60)|"level":"(error|fatal|panic)"/.test(line)) progress(`  ${who} ${id}: ${line.slice(0, 300)}`);
    },
  });
  const load = overall.read();
  const machineOut = {
    ...mach,
    loadavgAtEnd: os.loadavg().map((x) => Number(x.toFixed(2))),
    uptimeAtStart,
    uptimeAtEnd: sh('uptime', []),
    foreignCoresAverage: Number(load.foreignCores.toFixed(2)),
    busyCoresAverage: Number(load.busyCores.toFixed(2)),
    seconds: Math.round(load.seconds),
  };
  process.stdout.write(`\n${renderTable(r.figures)}\n\n`);
  for (const wl of TLS_WORKLOADS) {
    const c = r.costPercent[wl.key];
    if (!c || (c.rollcall === undefined && c.etcd === undefined)) continue;
    const pct = (v: number | undefined) => (v === undefined ? 'n/a' : `${v.toFixed(1)} %`);
    process.stdout.write(`TLS costs ${wl.label}: Rollcall ${pct(c.rollcall)} of its throughput, etcd ${pct(c.etcd)}\n`);
  }
  process.stdout.write(
    `\nmachine: ${mach.cpu}, ${mach.cores} cores, ${mach.memoryGiB} GiB, Node ${mach.node}, etcd ${mach.etcd ?? 'n/a'}; ` +
      `${rounds} interleaved rounds of ${seconds} s runs, client certificates ${values['tls-server-only'] ? 'not required' : 'required on both'}; ` +
      `load average at start ${(mach.loadavgAtStart as number[]).join(' ')}, at end ${machineOut.loadavgAtEnd.join(' ')}; ` +
      `background load (CPU not ours): ${load.foreignCores.toFixed(2)} cores on average over ${Math.round(load.seconds)} s\n`,
  );
  for (const [k, v] of Object.entries(r.notes)) process.stdout.write(`note ${k}: ${v}\n`);
  if (values.out) {
    const json = buildReport(machineOut, r.figures, {
      tls: { rounds, seconds, clientCerts: !values['tls-server-only'], costPercent: r.costPercent, samples: r.samples },
      notes: r.notes,
    });
    writeFileSync(values.out, `${JSON.stringify(json, null, 2)}\n`);
    progress(`wrote ${values.out}`);
  }
}

const main = values.profile
  ? () => profileRollcall(values.profile!)
  : values.scale
    ? scale
    : values.tls
      ? tlsCompare
      : compare;
main().then(
  () => {
    reapAll();
    process.exit(0);
  },
  (err: unknown) => {
    progress(`failed: ${(err as Error).stack ?? String(err)}`);
    reapAll();
    process.exit(1);
  },
);
