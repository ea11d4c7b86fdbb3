/**
 * Issue 21's scale workloads (`npm run bench -- --scale`), each on a fresh 3-node cluster
 * of real processes on 127.0.0.1 with temporary data directories:
 *
 * - instances: N instances over N/100 services (one of them holds 10,000), registered one
 *   by one at 64 connections (the API has no bulk register); RSS per node while loading
 *   and after; a full listing of the 10,000-instance service; the leader's idle write
 *   p99; a follower rejoining by snapshot (the leader's write p99 meanwhile); all three
 *   nodes killed and restarted, time to a linearizable read on every node.
 * - sessions: S sessions (TTL 10 s) each kept alive every 3 s through all nodes for a
 *   configurable soak, false expiries counted, a paced write load's p99 beside them
 *   against the same load's p99 before the sessions existed; the same on etcd's leases.
 * - watchers: W watchers of one service × C changes: events/s, delivery p99, every event
 *   accounted for (the side-by-side benchmark's watch workload).
 *
 * Every long operation reports progress; every process is killed by PID at the end
 * (procs.ts). The figures come back as `Figure`s for the table plus the series of the plot.
 */
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { LocalCluster } from '../local-cluster.js';
import { type Figure, makeFigure } from './format.js';
import { buildRequest } from './http1.js';
import { type LoadResult, runLoad, targetOf } from './loadgen.js';
import { cpuSeconds, rssBytes, trackDir, trackPids } from './procs.js';
import { type CpuProfile, renderProfileSummary, summarizeProfile } from './profile.js';
import { Samples, type Summary, summarize } from './stats.js';
import { type PlotPanel, type PlotSeries, renderPlot } from './svg.js';
import { EtcdSystem, payloadOf, RollcallSystem, type System, type SystemName } from './systems.js';
import { type Progress, watchRun } from './workloads.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const NS = 'scale';
/** The service whose full listing is timed (the API's one-answer cap is 10,000 items). */
const BIG_SERVICE = 'big';
const BIG_SIZE = 10_000;

export type ScalePart = 'instances' | 'sessions' | 'watchers';
export const SCALE_PARTS: readonly ScalePart[] = ['instances', 'sessions', 'watchers'];

export interface ScaleOptions {
  readonly instances: number;
  /** Writes the killed follower misses before it rejoins (more than the 5,000-entry log tail kept). */
  readonly behind: number;
  readonly sessions: number;
  readonly seconds: number;
  /**
   * Session / lease TTL. Each session is kept alive every 3 s whatever the TTL; the TTL only
   * says how far the client may fall behind that before a session expires of its own fault.
   */
  readonly sessionTtlSec: number;
  readonly watchers: number;
  readonly changes: number;
  readonly parts: ReadonlySet<ScalePart>;
  readonly etcdBin: string | null;
  readonly progress: Progress;
  /** Per-node start timeout (a node loading a million instances takes longer than the default 45 s). */
  readonly startTimeoutMs?: number;
  /**
   * The instances part with the V8 CPU profiler on every node (as `--profile`): the nodes
   * started for restart-to-ready write their profiles (the load at start, then 50 more
   * listings on each of two nodes) at a graceful stop; a hot-spot summary lands in DIR.
   * Profiling slows the nodes: the figures of such a run are not the benchmark's.
   */
  readonly profileDir?: string;
}

export interface ScaleReport {
  readonly figures: Figure[];
  /** Raw series and per-part details for the JSON and the plot. */
  readonly detail: Record<string, unknown>;
  readonly notes: Record<string, string>;
}

// ---- where instance number k goes ----------------------------------------------------------

/**
 * Instance k of n: the first min(n, 10,000) go to the big service, the rest round-robin
 * over the other n/100 − 1 services (at least one), so there are about n/100 services of
 * about 100 instances each beside the big one. Pure, so the layout is testable.
 */
export function instancePlacement(k: number, n: number): { service: string; id: string } {
  const big = Math.min(n, BIG_SIZE);
  if (k < big) return { service: BIG_SERVICE, id: `i${k}` };
  const others = Math.max(1, Math.floor(n / 100) - 1);
  const r = k - big;
  return { service: `svc${String(r % others).padStart(5, '0')}`, id: `i${k}` };
}

/** A realistic instance body: ~100 bytes of address, port, a tag and two metadata entries. */
export function instanceBody(k: number, port = 8080): string {
  return JSON.stringify({
    address: `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`,
    port,
    tags: ['v1'],
    metadata: { zone: `zone-${k % 3}`, version: '1.4.2' },
  });
}

function registerRequest(k: number, n: number, port = 8080): Buffer {
  const { service, id } = instancePlacement(k, n);
  return buildRequest({
    method: 'PUT',
    host: '127.0.0.1',
    path: `/v1/namespaces/${NS}/services/${service}/instances/${id}`,
    body: instanceBody(k, port),
  });
}

// ---- helpers ----------------------------------------------------------------------------------

function rssMb(sys: System): number[] {
  return sys.pids().map((p) => rssBytes(p) / (1024 * 1024));
}

/** A progress line every `everyMs` (so a log file shows it, not only a terminal). */
function ticker(progress: Progress, label: string, total: number | null, everyMs = 10_000) {
  let last = 0;
  let lastOk = 0;
  return (p: { elapsedMs: number; ok: number; errors: number }) => {
    if (p.elapsedMs - last < everyMs) return;
    const rate = ((p.ok - lastOk) * 1000) / (p.elapsedMs - last);
    last = p.elapsedMs;
    lastOk = p.ok;
    progress(
      `    ${label}: ${(p.elapsedMs / 1000).toFixed(0)} s, ${fmt(p.ok)}${total ? ` of ${fmt(total)}` : ''} ok (${fmt(rate)}/s now), ${p.errors} errors`,
    );
  };
}

async function startRollcall(
  o: ScaleOptions,
  onLog?: (id: string, line: string) => void,
  profileDir?: string,
): Promise<RollcallSystem> {
  const dataRoot = await mkdtemp(path.join(tmpdir(), 'rollcall-scale-'));
  trackDir(dataRoot);
  // Node 20 does not take --cpu-prof from NODE_OPTIONS; the preload runs the same profiler.
  const preload = pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), 'cpu-prof-preload.js')).href;
  const cluster = await LocalCluster.start({
    size: 3,
    dataRoot,
    logLevel: 'info',
    ...(profileDir ? { env: { NODE_OPTIONS: `--import ${preload}`, ROLLCALL_CPU_PROF_DIR: profileDir } } : {}),
    ...(o.startTimeoutMs ? { startTimeoutMs: o.startTimeoutMs } : {}),
    onLog: (id, line) => {
      if (/"level":(50|60)/.test(line)) o.progress(`  rollcall ${id}: ${line.slice(0, 300)}`);
      onLog?.(id, line);
    },
  });
  const sys = RollcallSystem.over(cluster);
  trackPids(() => sys.pids());
  await sys.leader(30_000);
  return sys;
}

async function waitReady(url: string, timeoutMs: number): Promise<boolean> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    try {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) });
      await res.arrayBuffer();
      if (res.status === 200) return true;
    } catch {
      /* still starting, or busy installing */
    }
    await sleep(50);
  }
  return false;
}

async function linearizableRead(url: string, k: number, n: number): Promise<boolean> {
  const { service, id } = instancePlacement(k, n);
  try {
    const res = await fetch(`${url}/v1/namespaces/${NS}/services/${service}/instances/${id}`, {
      signal: AbortSignal.timeout(2000),
    });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/** Closed-loop writes to the leader at 4 connections (the rejoin's background load and its idle baseline). */
function leaderWrites(sys: System, leader: number, o: { durationMs: number; until?: () => boolean }) {
  return runLoad({
    targets: [targetOf(sys.url(leader))],
    connections: 4,
    durationMs: o.durationMs,
    timeoutMs: 20_000,
    record: true,
    request: (seq) =>
      buildRequest({
        method: 'PUT',
        host: '127.0.0.1',
        path: `/v1/namespaces/${NS}/services/probe/instances/p${seq % 1000}`,
        body: instanceBody(seq),
      }),
    ...(o.until ? { until: o.until } : {}),
  });
}

// ---- instances ----------------------------------------------------------------------------------

interface RssPoint {
  readonly instances: number;
  readonly rssMb: readonly number[];
  readonly rate: number;
}

export interface InstancesOutcome {
  readonly instances: number;
  readonly registered: number;
  readonly registerSeconds: number;
  readonly registerRate: number;
  readonly registerP99: number;
  readonly rssAfterLoadMb: readonly number[];
  readonly rssSeries: readonly RssPoint[];
  readonly listing: { readonly leaderLinearizable: Summary; readonly followerSerializable: Summary; bytes: number };
  readonly idleWrites: Summary;
  readonly rejoin: {
    readonly upMs: number;
    readonly readyMs: number;
    readonly snapshotBytes: number | null;
    /** Snapshot transfers the leader started and installs the follower finished (absent in runs before these were counted). */
    readonly snapshotsSent?: number;
    readonly snapshotsInstalled?: number;
    readonly installWriteMs: number | null;
    readonly installLoadMs: number | null;
    readonly writesDuring: Summary;
  };
  readonly restart: { readonly upMs: number; readonly readyMs: number; readonly rssAfterMb: readonly number[] };
  readonly roles: readonly string[];
}

async function registerAll(
  sys: System,
  leader: number,
  o: ScaleOptions,
  rssSeries: RssPoint[],
): Promise<{ ok: number; seconds: number; p99: number }> {
  const n = o.instances;
  /** Which registrations succeeded: a timed-out or dropped request has no answer to inspect. */
  const good = new Uint8Array(n);
  let lastSample = { t: 0, ok: 0 };
  const show = ticker(o.progress, 'registering', n);
  const t0 = performance.now();
  const first = await runLoad({
    targets: [targetOf(sys.url(leader))],
    connections: 64,
    durationMs: 3_600_000,
    maxRequests: n,
    timeoutMs: 30_000,
    request: (seq) => registerRequest(seq, n),
    inspect: (status, _body, seq) => {
      const ok = status >= 200 && status < 300;
      if (ok) good[seq] = 1;
      return ok;
    },
    onTick: (p) => {
      show(p);
      if (p.elapsedMs - lastSample.t >= 5000) {
        const rate = ((p.ok - lastSample.ok) * 1000) / (p.elapsedMs - lastSample.t);
        rssSeries.push({ instances: p.ok, rssMb: rssMb(sys), rate });
        lastSample = { t: p.elapsedMs, ok: p.ok };
      }
    },
  });
  let ok = first.ok;
  if (ok < n) {
    // A register of the same body is idempotent: send again what did not succeed, once.
    const missing: number[] = [];
    for (let k = 0; k < n; k++) if (!good[k]) missing.push(k);
    o.progress(`  retrying ${fmt(missing.length)} registrations that did not succeed (${first.timeouts} timed out)`);
    const second = await runLoad({
      targets: [targetOf(sys.url(leader))],
      connections: 64,
      durationMs: 600_000,
      maxRequests: missing.length,
      timeoutMs: 30_000,
      request: (seq) => registerRequest(missing[seq]!, n),
    });
    ok += second.ok;
  }
  return { ok, seconds: (performance.now() - t0) / 1000, p99: first.latency.p99 };
}

async function timeListing(sys: System, node: number, serializable: boolean): Promise<{ s: Summary; bytes: number }> {
  let bytes = 0;
  const r = await runLoad({
    targets: [targetOf(sys.url(node))],
    connections: 1,
    durationMs: 60_000,
    maxRequests: 50,
    timeoutMs: 30_000,
    request: () =>
      buildRequest({
        method: 'GET',
        host: '127.0.0.1',
        path: `/v1/namespaces/${NS}/services/${BIG_SERVICE}/instances${serializable ? '?consistency=serializable' : ''}`,
      }),
    inspect: (status, body) => {
      bytes = body.length;
      return status === 200;
    },
  });
  return { s: r.latency, bytes };
}

export async function instancesPart(o: ScaleOptions, rssSeries: RssPoint[]): Promise<InstancesOutcome> {
  const logs: { id: string; line: string }[] = [];
  o.progress('── instances: starting a 3-node Rollcall cluster');
  const profileDir = o.profileDir ? path.resolve(o.profileDir) : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const sys = await startRollcall(
    o,
    (id, line) => {
      if (line.includes('snapshot')) logs.push({ id, line });
    },
    profileDir,
  );
  let profiled = false;
  try {
    const leader = await sys.leader();
    const ids = sys.cluster.nodes.map((n) => n.id);
    const roles = ids.map((_, i) => (i === leader ? 'leader' : 'follower'));
    o.progress(
      `  registering ${fmt(o.instances)} instances over ${fmt(Math.max(2, Math.floor(o.instances / 100)))} services at 64 connections to the leader (${ids[leader]})`,
    );
    const reg = await registerAll(sys, leader, o, rssSeries);
    o.progress(
      `  registered ${fmt(reg.ok)} of ${fmt(o.instances)} in ${reg.seconds.toFixed(1)} s (${fmt(reg.ok / reg.seconds)}/s, first-pass p99 ${reg.p99.toFixed(1)} ms)`,
    );
    await sleep(3000);
    const rssAfterLoadMb = rssMb(sys);
    rssSeries.push({ instances: reg.ok, rssMb: rssAfterLoadMb, rate: Number.NaN });
    o.progress(`  RSS per node: ${rssAfterLoadMb.map((m, i) => `${ids[i]} ${m.toFixed(0)} MB`).join(', ')}`);

    o.progress(
      `  listing the ${fmt(Math.min(BIG_SIZE, o.instances))}-instance service 50 times (leader, then a follower)`,
    );
    const follower = (leader + 1) % 3;
    const lin = await timeListing(sys, leader, false);
    const ser = await timeListing(sys, follower, true);
    o.progress(
      `  listing: leader linearizable p50 ${lin.s.p50.toFixed(1)} ms p99 ${lin.s.p99.toFixed(1)} ms; follower serializable p50 ${ser.s.p50.toFixed(1)} ms p99 ${ser.s.p99.toFixed(1)} ms (${(lin.bytes / 1e6).toFixed(2)} MB an answer)`,
    );

    o.progress('  idle: 4 connections writing to the leader for 15 s');
    const idle = await leaderWrites(sys, leader, { durationMs: 15_000 });
    const idleWrites = summarize(idle.records.filter((r) => r.ok).map((r) => r.end - r.start));
    o.progress(
      `  idle leader writes: ${fmt(idle.throughput)}/s, p50 ${idleWrites.p50.toFixed(1)} ms, p99 ${idleWrites.p99.toFixed(1)} ms`,
    );

    const rejoin = await rejoinFollower(sys, leader, follower, o, logs);

    o.progress('  restart to ready: SIGKILL all three nodes, start them all again');
    for (let i = 0; i < 3; i++) await sys.kill(i);
    const t0 = performance.now();
    await sys.restartAll();
    const upMs = performance.now() - t0;
    o.progress(
      `    every process up (serving HTTP) after ${(upMs / 1000).toFixed(1)} s; waiting for a linearizable read on each`,
    );
    const ready = new Set<number>();
    const deadline = t0 + 600_000;
    while (ready.size < 3 && performance.now() < deadline) {
      await Promise.all(
        [0, 1, 2]
          .filter((i) => !ready.has(i))
          .map(async (i) => {
            if (await linearizableRead(sys.url(i), 0, o.instances)) ready.add(i);
          }),
      );
      if (ready.size < 3) await sleep(20);
    }
    const readyMs = ready.size === 3 ? performance.now() - t0 : Number.NaN;
    await sleep(1000);
    const rssAfterMb = rssMb(sys);
    if (profileDir) {
      o.progress('  profile: 50 more listings on the leader and on a follower, then a graceful stop');
      const at = await sys.leader();
      await timeListing(sys, at, false);
      await timeListing(sys, (at + 1) % 3, true);
      const since = Date.now();
      const who = sys.cluster.nodes.map((n, i) => ({
        pid: sys.pid(i),
        label: `${n.id} (${i === at ? 'leader' : 'follower'})`,
      }));
      await sys.cluster.close(true);
      profiled = true;
      await sleep(500);
      o.progress(`  profile: ${summarizeProfiles(profileDir, since - 600_000, who)}`);
    }
    o.progress(
      `    ready after ${(readyMs / 1000).toFixed(2)} s; RSS per node ${rssAfterMb.map((m) => m.toFixed(0)).join(' / ')} MB`,
    );
    return {
      instances: o.instances,
      registered: reg.ok,
      registerSeconds: reg.seconds,
      registerRate: reg.ok / reg.seconds,
      registerP99: reg.p99,
      rssAfterLoadMb,
      rssSeries,
      listing: { leaderLinearizable: lin.s, followerSerializable: ser.s, bytes: lin.bytes },
      idleWrites,
      rejoin,
      restart: { upMs, readyMs, rssAfterMb },
      roles,
    };
  } finally {
    o.progress('  stopping the instances cluster');
    if (!profiled) await sys.close();
  }
}

/** bench-rejoin.ts's run on the loaded cluster: the follower misses `behind` writes, then rejoins by snapshot. */
async function rejoinFollower(
  sys: RollcallSystem,
  leader: number,
  follower: number,
  o: ScaleOptions,
  logs: { id: string; line: string }[],
): Promise<InstancesOutcome['rejoin']> {
  const id = sys.cluster.nodes[follower]!.id;
  o.progress(`  rejoin: killing follower ${id}; ${fmt(o.behind)} re-registrations without it`);
  await sys.kill(follower);
  const behind = Math.min(o.behind, o.instances);
  const more = await runLoad({
    targets: [targetOf(sys.url(leader))],
    connections: 16,
    durationMs: 600_000,
    maxRequests: behind,
    timeoutMs: 30_000,
    // Updates of existing instances (another port): the registry keeps its size.
    request: (seq) => registerRequest(seq, o.instances, 9090),
    onTick: ticker(o.progress, 'writes while the follower is down', behind),
  });
  if (more.ok < behind) o.progress(`    only ${more.ok} of ${behind} succeeded`);
  o.progress('  rejoin: restarting the follower while 4 connections keep writing to the leader');
  let readyAt: number | null = null;
  const during = leaderWrites(sys, leader, { durationMs: 900_000, until: () => readyAt !== null });
  await sleep(1000);
  const t0 = performance.now();
  let upMs = Number.NaN;
  try {
    await sys.cluster.restart(id);
    upMs = performance.now() - t0;
    o.progress(`    follower process up after ${(upMs / 1000).toFixed(1)} s; waiting for its /readyz`);
    const waiting = setInterval(
      () => o.progress(`    still waiting: ${((performance.now() - t0) / 1000).toFixed(0)} s since the restart`),
      10_000,
    );
    try {
      if (await waitReady(sys.url(follower), 600_000)) readyAt = performance.now();
    } finally {
      clearInterval(waiting);
    }
  } finally {
    readyAt ??= Number.NaN;
  }
  const writes = await during;
  await sleep(500);
  const field = (line: string | undefined, name: string): number | null => {
    const m = line?.match(new RegExp(`"${name}":(\\d+)`));
    return m ? Number(m[1]) : null;
  };
  const sent = logs.find((l) => l.line.includes('sending a snapshot'))?.line;
  const installed = logs.find((l) => l.id === id && l.line.includes('installed a snapshot'))?.line;
  // More than one of either means the same follower needed the snapshot again (a transfer
  // restarted, or the log compacted past the snapshot while it installed).
  const snapshotsSent = logs.filter((l) => l.line.includes('sending a snapshot')).length;
  const snapshotsInstalled = logs.filter((l) => l.id === id && l.line.includes('installed a snapshot')).length;
  const rejoin = {
    upMs,
    readyMs: readyAt - t0,
    snapshotBytes: field(sent, 'bytes'),
    snapshotsSent,
    snapshotsInstalled,
    installWriteMs: field(installed, 'writeMs'),
    installLoadMs: field(installed, 'loadMs'),
    writesDuring: summarize(writes.records.filter((r) => r.ok).map((r) => r.end - r.start)),
  };
  o.progress(
    `    follower ready after ${(rejoin.readyMs / 1000).toFixed(1)} s (snapshot ${rejoin.snapshotBytes === null ? 'not sent' : `${(rejoin.snapshotBytes / 1e6).toFixed(1)} MB, ${snapshotsSent} transfer(s) started, ${snapshotsInstalled} installed`}, install write ${rejoin.installWriteMs} ms, reload ${rejoin.installLoadMs} ms); leader writes meanwhile p99 ${rejoin.writesDuring.p99.toFixed(1)} ms, max ${rejoin.writesDuring.max.toFixed(0)} ms`,
  );
  return rejoin;
}

/** Summarizes the .cpuprofile files written in `dir` since `sinceMs` into dir/summary.txt; returns that path. */
function summarizeProfiles(
  dir: string,
  sinceMs: number,
  who: readonly { pid: number | undefined; label: string }[],
): string {
  const files = readdirSync(dir).filter(
    (f) => f.endsWith('.cpuprofile') && statSync(path.join(dir, f)).mtimeMs >= sinceMs,
  );
  const text = files
    .map((file) =>
      renderProfileSummary(
        `${who.find((w) => w.pid === Number(/\.(\d+)\.\d+\.\d+\.cpuprofile$/.exec(file)?.[1]))?.label ?? '?'} — ${file}`,
        summarizeProfile(JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as CpuProfile),
      ),
    )
    .join('\n\n');
  const out = path.join(dir, 'summary.txt');
  writeFileSync(out, `${text}\n`);
  return `${files.length} profiles summarized in ${out}`;
}

// ---- sessions -----------------------------------------------------------------------------------

export interface SoakWindow {
  /** Seconds since the soak started (end of the window). */
  readonly t: number;
  readonly writeP99: number;
  readonly keepalivesPerSec: number;
}

export interface SoakOutcome {
  readonly system: SystemName;
  readonly sessions: number;
  readonly opened: number;
  readonly openSeconds: number;
  readonly soakSeconds: number;
  readonly idleWrites: Summary;
  readonly soakWrites: Summary;
  readonly keepalivesPerSec: number;
  readonly keepaliveP99: number;
  readonly leaderCpuPct: number;
  /** Expired answers although the session's last acknowledged keepalive was sent less than a TTL before. */
  readonly falseExpiries: number;
  /** Every session found expired (false ones and ones the client left unrenewed for a TTL). */
  readonly expired: number;
  /** Longest time between the sends of two successful keepalives of one session (the client's pacing). */
  readonly maxGapMs: number;
  readonly keepaliveErrors: number;
  readonly windows: readonly SoakWindow[];
}

/**
 * Classifies an "expired" keepalive answer. The node refreshed the deadline no earlier than
 * when the last successful keepalive was sent (`lastOkSentAt`), so it ran until at least
 * lastOkSentAt + TTL; an "expired" answer received before that is certainly false. One
 * received later may be the client's fault (it fell behind), and is counted apart.
 */
export function isFalseExpiry(lastOkSentAt: number, answeredAt: number, ttlMs: number): boolean {
  return Number.isFinite(lastOkSentAt) && answeredAt < lastOkSentAt + ttlMs;
}

/** Write latency per window of `windowMs` from per-request records (start/end relative to the run). */
export function windowedP99(
  records: readonly { start: number; end: number; ok: boolean }[],
  windowMs: number,
): { t: number; p99: number }[] {
  const buckets = new Map<number, number[]>();
  for (const r of records) {
    if (!r.ok) continue;
    const b = Math.floor(r.start / windowMs);
    const list = buckets.get(b) ?? [];
    list.push(r.end - r.start);
    buckets.set(b, list);
  }
  return [...buckets.keys()]
    .sort((a, b) => a - b)
    .map((b) => ({ t: ((b + 1) * windowMs) / 1000, p99: summarize(buckets.get(b)!).p99 }));
}

export async function sessionSoak(sys: System, o: ScaleOptions): Promise<SoakOutcome> {
  const n = o.sessions;
  const ttlMs = o.sessionTtlSec * 1000;
  const payload = payloadOf(256);
  const leader = await sys.leader();
  const all = [0, 1, 2].filter((i) => sys.pid(i) !== undefined);
  const pacedWrites = (durationMs: number, until?: () => boolean) =>
    runLoad({
      targets: [targetOf(sys.url(leader))],
      connections: 4,
      durationMs,
      ratePerSec: 200,
      timeoutMs: 15_000,
      record: true,
      request: (seq) => sys.write('soak', seq % 10_000, payload),
      ...(until ? { until } : {}),
    });
  const lat = (r: LoadResult) => summarize(r.records.filter((x) => x.ok).map((x) => x.end - x.start));

  const idleMs = Math.min(30_000, Math.max(5_000, o.seconds * 100));
  o.progress(`  ${sys.name}: idle baseline: 200 writes/s to the leader for ${(idleMs / 1000).toFixed(0)} s`);
  const idle = lat(await pacedWrites(idleMs));
  o.progress(`  ${sys.name}: idle write p50 ${idle.p50.toFixed(1)} ms, p99 ${idle.p99.toFixed(1)} ms`);

  const openedIds: number[] = [];
  /** Per session: when its last successful keepalive (or its open) was sent; and the longest gap. */
  const lastOkSent = new Float64Array(n).fill(Number.NaN);
  let maxGapMs = 0;
  const expired = new Set<number>();
  let falseExpiries = 0;
  let keepaliveErrors = 0;
  let soakStart = Number.POSITIVE_INFINITY;
  let soakEnd = Number.POSITIVE_INFINITY;
  let soakOk = 0;
  const kaLat = new Samples(1 << 20);
  const windows: SoakWindow[] = [];

  o.progress(
    `  ${sys.name}: opening ${fmt(n)} sessions (TTL ${o.sessionTtlSec} s) at 64 connections, each kept alive every 3 s from its opening on`,
  );
  const openT0 = performance.now();
  const opening = runLoad({
    targets: [targetOf(sys.url(leader))],
    connections: 64,
    durationMs: 300_000,
    maxRequests: n,
    timeoutMs: 15_000,
    request: (seq) => sys.openSession(seq, o.sessionTtlSec),
    inspect: (status, _body, seq, startedAt) => {
      const good = status >= 200 && status < 300;
      if (good) {
        openedIds.push(seq);
        lastOkSent[seq] = startedAt;
      }
      return good;
    },
    onTick: ticker(o.progress, `${sys.name} opening sessions`, n),
  });
  while (openedIds.length === 0 && performance.now() - openT0 < 30_000) await sleep(5);
  const target = new Map<number, number>();
  let cursor = 0;
  let kaWindowOk = 0;
  const keepalives = runLoad({
    targets: all.map((i) => targetOf(sys.url(i))),
    connections: 96,
    durationMs: 3_600_000,
    ratePerSec: n / 3,
    timeoutMs: 15_000,
    until: () => performance.now() >= soakEnd,
    onTick: ticker(o.progress, `${sys.name} keepalives (ok = alive)`, null),
    // Round-robin over the sessions open so far: one pass is at most 3 s.
    request: (seq) => {
      // Expired sessions are skipped: a client would open a new one, not keep a dead one alive.
      let s = 0;
      const live = expired.size < openedIds.length;
      for (let tries = 0; tries <= openedIds.length; tries++) {
        if (cursor >= openedIds.length) cursor = 0;
        s = openedIds[cursor++] ?? 0;
        if (!live || !expired.has(s)) break;
      }
      target.set(seq, s);
      return sys.keepalive(s);
    },
    inspect: (status, body, seq, startedAt) => {
      const s = target.get(seq) ?? -1;
      target.delete(seq);
      if (s < 0) return false;
      const outcome = sys.keepaliveOutcome(status, body);
      const now = performance.now();
      if (outcome === 'alive') {
        const prev = lastOkSent[s]!;
        if (Number.isFinite(prev) && startedAt > prev) maxGapMs = Math.max(maxGapMs, startedAt - prev);
        if (!(startedAt < prev)) lastOkSent[s] = startedAt;
        if (now >= soakStart) {
          soakOk++;
          kaWindowOk++;
          kaLat.push(now - startedAt);
        }
        return true;
      }
      if (outcome === 'expired') {
        if (!expired.has(s)) {
          expired.add(s);
          if (isFalseExpiry(lastOkSent[s]!, now, ttlMs)) falseExpiries++;
        }
      } else keepaliveErrors++;
      return false;
    },
  });
  const opened = await opening;
  const openSeconds = (performance.now() - openT0) / 1000;
  o.progress(
    `  ${sys.name}: opened ${fmt(opened.ok)} of ${fmt(n)} in ${openSeconds.toFixed(1)} s; soaking for ${o.seconds} s with 200 writes/s beside the keepalives`,
  );
  const pid = sys.pid(leader);
  const cpu0 = cpuSeconds(pid);
  soakStart = performance.now();
  soakEnd = soakStart + o.seconds * 1000;
  let lastWindow = soakStart;
  const windowTimer = setInterval(() => {
    const now = performance.now();
    const rate = (kaWindowOk * 1000) / (now - lastWindow);
    kaWindowOk = 0;
    lastWindow = now;
    windows.push({ t: (now - soakStart) / 1000, writeP99: Number.NaN, keepalivesPerSec: rate });
    o.progress(
      `    ${sys.name} soak: ${((now - soakStart) / 1000).toFixed(0)} of ${o.seconds} s, ${fmt(rate)} keepalives/s, expired ${expired.size} (false ${falseExpiries}), longest keepalive gap ${(maxGapMs / 1000).toFixed(1)} s, ${keepaliveErrors} errors`,
    );
  }, 10_000);
  let soakRun: LoadResult;
  try {
    soakRun = await pacedWrites(o.seconds * 1000);
  } finally {
    clearInterval(windowTimer);
  }
  const soakSeconds = (performance.now() - soakStart) / 1000;
  const cpu1 = cpuSeconds(pid);
  soakEnd = performance.now();
  await keepalives;
  // The paced writes' p99 per 10-s window, for the plot.
  const p99s = windowedP99(soakRun.records, 10_000);
  const merged = windows.map((w, i) => ({ ...w, writeP99: p99s[i]?.p99 ?? Number.NaN }));
  const ka = kaLat.summary();
  return {
    system: sys.name,
    sessions: n,
    opened: opened.ok,
    openSeconds,
    soakSeconds,
    idleWrites: idle,
    soakWrites: lat(soakRun),
    keepalivesPerSec: soakOk / soakSeconds,
    keepaliveP99: ka.p99,
    leaderCpuPct: ((cpu1 - cpu0) / soakSeconds) * 100,
    falseExpiries,
    expired: expired.size,
    maxGapMs,
    keepaliveErrors,
    windows: merged,
  };
}

// ---- the whole run -----------------------------------------------------------------------------

export async function runScale(o: ScaleOptions): Promise<ScaleReport> {
  const notes: Record<string, string> = {};
  const detail: Record<string, unknown> = {};
  const figs: Figure[] = [];
  const loadavg: Record<string, number[]> = {};
  const la = (when: string) => {
    loadavg[when] = os.loadavg().map((x) => Number(x.toFixed(2)));
  };
  const rOnly = (name: string, unit: string, better: 'higher' | 'lower', v: number, goal?: string) =>
    figs.push(
      makeFigure(name, unit, better, v, null, goal ? { goal, note: 'Rollcall only' } : { note: 'Rollcall only' }),
    );
  const rssSeries: RssPoint[] = [];
  const soaks: SoakOutcome[] = [];

  if (o.parts.has('instances')) {
    la('instances:start');
    try {
      const r = await instancesPart(o, rssSeries);
      detail.instances = r;
      const n = `${fmt(o.instances)}`;
      const million = o.instances >= 1_000_000;
      const rssGoal = million ? '<= 1536 MB' : o.instances <= 100_000 ? '<= 250 MB' : undefined;
      rOnly(`scale: register ${n} instances, 64c (one by one)`, 's', 'lower', r.registerSeconds);
      rOnly(`scale: register throughput`, 'ops/s', 'higher', r.registerRate);
      if (r.registered < o.instances) notes['instances:registered'] = `${r.registered} of ${o.instances} registered`;
      rOnly(
        `scale: RSS per node after registering ${n} (max of 3)`,
        'MB',
        'lower',
        Math.max(...r.rssAfterLoadMb),
        rssGoal,
      );
      rOnly(
        `scale: RSS per node after restart with ${n} (max of 3)`,
        'MB',
        'lower',
        Math.max(...r.restart.rssAfterMb),
        rssGoal,
      );
      rOnly(
        `scale: full listing of the ${fmt(Math.min(BIG_SIZE, o.instances))}-instance service, leader linearizable p50`,
        'ms',
        'lower',
        r.listing.leaderLinearizable.p50,
      );
      rOnly(
        `scale: full listing, leader linearizable p99`,
        'ms',
        'lower',
        r.listing.leaderLinearizable.p99,
        '<= 50 ms',
      );
      rOnly(
        `scale: full listing, follower serializable p99`,
        'ms',
        'lower',
        r.listing.followerSerializable.p99,
        '<= 50 ms',
      );
      rOnly(
        `scale: restart to ready with ${n} (linearizable read on every node)`,
        'ms',
        'lower',
        r.restart.readyMs,
        million ? '<= 10000 ms' : undefined,
      );
      rOnly(
        `scale: follower rejoin by snapshot, restart to /readyz`,
        'ms',
        'lower',
        r.rejoin.readyMs,
        million ? '<= 30000 ms' : undefined,
      );
      rOnly(`scale: rejoin snapshot size`, 'MB', 'lower', (r.rejoin.snapshotBytes ?? Number.NaN) / 1e6);
      rOnly(
        `scale: rejoin snapshot transfers started by the leader`,
        'count',
        'lower',
        r.rejoin.snapshotsSent ?? Number.NaN,
      );
      rOnly(
        `scale: rejoin snapshots installed by the follower`,
        'count',
        'lower',
        r.rejoin.snapshotsInstalled ?? Number.NaN,
      );
      rOnly(`scale: leader write p99, idle (4c)`, 'ms', 'lower', r.idleWrites.p99);
      rOnly(`scale: leader write p99 during the rejoin (4c)`, 'ms', 'lower', r.rejoin.writesDuring.p99);
      rOnly(
        `scale: leader write p99 during the rejoin ÷ idle`,
        '×',
        'lower',
        r.rejoin.writesDuring.p99 / r.idleWrites.p99,
        '<= 2 × idle',
      );
    } catch (err) {
      notes.instances = (err as Error).message;
      o.progress(`  instances failed: ${(err as Error).stack ?? String(err)}`);
    }
    la('instances:end');
  }

  if (o.parts.has('sessions')) {
    la('sessions:start');
    const systems: (() => Promise<System>)[] = [async () => startRollcall(o)];
    if (o.etcdBin) {
      const bin = o.etcdBin;
      systems.push(async () => EtcdSystem.start({ bin, size: 3 }));
    }
    for (const start of systems) {
      let sys: System | null = null;
      try {
        sys = await start();
        o.progress(`── sessions: ${fmt(o.sessions)} on ${sys.name}`);
        soaks.push(await sessionSoak(sys, o));
      } catch (err) {
        notes[`sessions:${sys?.name ?? 'start'}`] = (err as Error).message;
        o.progress(`  sessions failed: ${(err as Error).stack ?? String(err)}`);
      } finally {
        await sys?.close().catch(() => undefined);
      }
    }
    detail.sessions = soaks;
    const by = (s: SystemName) => soaks.find((x) => x.system === s);
    const r = by('rollcall');
    const e = by('etcd');
    const pair = (
      name: string,
      unit: string,
      better: 'higher' | 'lower',
      pick: (x: SoakOutcome) => number,
      goal?: string,
    ) =>
      figs.push(
        makeFigure(name, unit, better, r ? pick(r) : null, e ? pick(e) : null, {
          ...(goal ? { goal } : {}),
          ...(o.etcdBin ? {} : { note: 'etcd not installed' }),
        }),
      );
    const s = fmt(o.sessions);
    pair(
      `scale: ${s} sessions over ${o.seconds} s: false expiries`,
      'sessions',
      'lower',
      (x) => x.falseExpiries,
      '= 0 sessions',
    );
    pair(`scale: ${s} sessions: all expiries (incl. client fell behind a TTL)`, 'sessions', 'lower', (x) => x.expired);
    pair(
      `scale: ${s} sessions: keepalives/s achieved (asked ${fmt(o.sessions / 3)})`,
      'ops/s',
      'higher',
      (x) => x.keepalivesPerSec,
    );
    pair(`scale: ${s} sessions: keepalive p99`, 'ms', 'lower', (x) => x.keepaliveP99);
    pair(`scale: ${s} sessions: longest gap between a session's keepalives`, 'ms', 'lower', (x) => x.maxGapMs);
    pair(`scale: ${s} sessions: leader CPU`, '% core', 'lower', (x) => x.leaderCpuPct);
    pair(`scale: write p99 idle (200/s)`, 'ms', 'lower', (x) => x.idleWrites.p99);
    pair(`scale: write p99 beside ${s} sessions (200/s)`, 'ms', 'lower', (x) => x.soakWrites.p99);
    figs.push(
      makeFigure(
        `scale: write p99 beside ${s} sessions ÷ idle`,
        '×',
        'lower',
        r ? r.soakWrites.p99 / r.idleWrites.p99 : null,
        e ? e.soakWrites.p99 / e.idleWrites.p99 : null,
        { goal: '<= 1.2 × idle' },
      ),
    );
    la('sessions:end');
  }

  if (o.parts.has('watchers')) {
    la('watchers:start');
    let sys: RollcallSystem | null = null;
    try {
      sys = await startRollcall(o);
      o.progress(`── watchers: ${fmt(o.watchers)} watchers × ${fmt(o.changes)} changes on Rollcall`);
      const w = await watchRun(sys, {
        watchers: o.watchers,
        changes: o.changes,
        payload: payloadOf(256),
        deliverTimeoutMs: 300_000,
        progress: o.progress,
      });
      detail.watchers = w;
      if (!w.ok) notes.watchers = w.reason;
      else {
        o.progress(
          `  ${fmt(w.eventsPerSec)} events/s, p50 ${w.latency.p50.toFixed(1)} ms, p99 ${w.latency.p99.toFixed(1)} ms, delivered ${fmt(w.delivered)}, lost ${w.lost}, duplicates ${w.duplicates}`,
        );
        const k = `${fmt(o.watchers)} watchers × ${fmt(w.changes)} changes`;
        rOnly(`scale: watch ${k}: events/s`, 'events/s', 'higher', w.eventsPerSec);
        rOnly(`scale: watch ${k}: delivery p50`, 'ms', 'lower', w.latency.p50);
        rOnly(`scale: watch ${k}: delivery p99`, 'ms', 'lower', w.latency.p99, '<= 250 ms');
        rOnly(`scale: watch ${k}: events lost or duplicated`, 'events', 'lower', w.lost + w.duplicates, '= 0 events');
        rOnly(
          `scale: watch ${k}: node CPU per delivered event`,
          'µs',
          'lower',
          (w.serverCpuSec * 1e6) / Math.max(1, w.delivered),
        );
      }
    } catch (err) {
      notes.watchers = (err as Error).message;
      o.progress(`  watchers failed: ${(err as Error).stack ?? String(err)}`);
    } finally {
      await sys?.close().catch(() => undefined);
    }
    la('watchers:end');
  }

  detail.loadavg = loadavg;
  detail.rssSeries = rssSeries;
  return { figures: figs, detail, notes };
}

// ---- the plot ---------------------------------------------------------------------------------

const NODE_COLORS = ['#1f6fb4', '#2ca02c', '#9467bd'];

/** The scale plot: RSS per node and registration rate against instances registered; the soak's write p99 over time. */
export function plotScale(report: ScaleReport, subtitle: string): string {
  const panels: PlotPanel[] = [];
  const inst = report.detail.instances as InstancesOutcome | undefined;
  const series = (report.detail.rssSeries as RssPoint[] | undefined) ?? [];
  if (series.length > 0) {
    const roles = inst?.roles ?? ['node 1', 'node 2', 'node 3'];
    const rss: PlotSeries[] = [0, 1, 2].map((i) => ({
      label: `node ${i + 1} (${roles[i] ?? '?'})`,
      color: NODE_COLORS[i]!,
      points: series.map((p) => ({ x: p.instances, y: p.rssMb[i] ?? Number.NaN })).filter((p) => Number.isFinite(p.y)),
    }));
    const maxN = Math.max(...series.map((p) => p.instances));
    const goal = [
      { x: 100_000, y: 250, label: 'goal 250 MB' },
      { x: 1_000_000, y: 1536, label: 'goal 1.5 GB' },
    ].filter((p) => p.x <= maxN * 1.05);
    if (goal.length) rss.push({ label: 'RSS goal', color: '#d62728', dashed: true, points: goal });
    panels.push({
      title: 'RSS per node while registering',
      series: rss,
      xLabel: 'instances registered',
      yLabel: 'RSS (MB)',
      yScale: 'linear',
    });
    panels.push({
      title: 'Registration rate (64 connections)',
      series: [
        {
          label: 'writes/s over 5 s',
          color: '#555555',
          points: series.filter((p) => Number.isFinite(p.rate)).map((p) => ({ x: p.instances, y: p.rate })),
        },
      ],
      xLabel: 'instances registered',
      yLabel: 'registrations per second',
      yScale: 'linear',
    });
  }
  const soaks = (report.detail.sessions as SoakOutcome[] | undefined) ?? [];
  if (soaks.length > 0) {
    const color = (s: SystemName) => (s === 'rollcall' ? '#1f6fb4' : '#e07b00');
    const soakSeries: PlotSeries[] = [];
    for (const s of soaks) {
      const name = s.system === 'rollcall' ? 'Rollcall' : 'etcd';
      soakSeries.push({
        label: `${name}: write p99 beside the sessions`,
        color: color(s.system),
        points: s.windows.filter((w) => Number.isFinite(w.writeP99)).map((w) => ({ x: w.t, y: w.writeP99 })),
      });
      const last = s.windows[s.windows.length - 1]?.t ?? s.soakSeconds;
      soakSeries.push({
        label: `${name}: idle write p99`,
        color: color(s.system),
        dashed: true,
        points: [
          { x: Math.min(10, last), y: s.idleWrites.p99 },
          { x: last, y: s.idleWrites.p99 },
        ],
      });
    }
    panels.push({
      title: `${fmt(soaks[0]!.sessions)} sessions: write p99 per 10 s (200 writes/s)`,
      series: soakSeries,
      xLabel: 'seconds into the soak',
      yLabel: 'write p99 (ms, log scale)',
      yScale: 'log',
    });
  }
  const what = [
    inst ? `${fmt(inst.instances)} instances` : null,
    soaks[0] ? `${fmt(soaks[0].sessions)} sessions` : null,
  ].filter(Boolean);
  return renderPlot(panels, { title: `Scale: ${what.join(', ')}`, subtitle, sharedAxes: false });
}
