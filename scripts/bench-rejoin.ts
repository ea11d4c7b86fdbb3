/**
 * A follower rejoining a large registry after the log moved past it: how long until it is
 * ready, what the snapshot costs on each side, and how writes to the leader fare meanwhile.
 * Rollcall only (etcd keeps 100,000 entries before it snapshots, so the same gap never
 * makes it send one).
 *
 *   npm run build && node dist/scripts/bench-rejoin.js [--instances 100000] [--behind 12000]
 *       [--data-cache DIR] [--cpu-prof DIR] [--gc] [--out FILE] [--timeline FILE]
 *       [--compact-every N]
 *
 * 1. a 3-node cluster on loopback (temporary directories), `--instances` registered at 64
 *    connections through the leader; with `--data-cache DIR` the registered cluster's data
 *    is kept in DIR (stopped gracefully) and later runs start from a copy of it instead of
 *    registering again;
 * 2. 10 s of writes at 4 connections to the leader: the idle p99;
 * 3. a follower is killed (SIGKILL) and `--behind` more writes go through the leader, more
 *    than the log tail it keeps (5,000), so the follower can only catch up by snapshot;
 * 4. the same 4 connections keep writing to the leader while the follower restarts; the
 *    script waits for the follower's /readyz, and reads the leader's /metrics every second
 *    for the longest event-loop delay and the most CPU in one 10-ms timer interval.
 *
 * Prints: time to process up and to ready, the snapshot's size and how many times the
 * leader sent one, the follower's install (LevelDB + WAL, registry reload, from its log),
 * the writes' p50/p99/max meanwhile against idle, and the leader's longest loop delay.
 * `--cpu-prof DIR` runs every node under the V8 profiler (cpu-prof-preload.ts) and stops
 * them gracefully so the profiles are written. `--gc` logs every node's garbage collections
 * (gc-log-preload.ts) and adds the leader's from the restart to ready: total time, the
 * longest pause, and the full (mark-compact) ones. `--timeline FILE` writes every node's
 * log line as it arrives, after the seconds since the script started, and a `restartWall`
 * line at the follower's restart (written as the run goes, so a run that fails keeps it).
 * `--compact-every N` starts the nodes with that flag (a shorter log tail: a leader
 * compacting past a snapshot while its follower installs it shows sooner). Progress goes
 * to stderr; every process started is stopped at the end.
 */
import { createWriteStream, existsSync } from 'node:fs';
import { cp, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { runLoad, targetOf } from './bench/loadgen.js';
import { summarize } from './bench/stats.js';
import { payloadOf, RollcallSystem } from './bench/systems.js';
import { LocalCluster } from './local-cluster.js';

const { values } = parseArgs({
  options: {
    instances: { type: 'string', default: '100000' },
    behind: { type: 'string', default: '12000' },
    'data-cache': { type: 'string' },
    'cpu-prof': { type: 'string' },
    gc: { type: 'boolean', default: false },
    out: { type: 'string' },
    timeline: { type: 'string' },
    'compact-every': { type: 'string' },
  },
});
const instances = Number(values.instances);
const behind = Number(values.behind);
if (!Number.isInteger(instances) || instances < 1) throw new Error('--instances: a positive integer');
if (!Number.isInteger(behind) || behind < 1) throw new Error('--behind: a positive integer');
const dataCache = values['data-cache'] === undefined ? undefined : path.resolve(values['data-cache']);
const cpuProfDir = values['cpu-prof'] === undefined ? undefined : path.resolve(values['cpu-prof']);
const IDLE_MS = 10_000;

const t0 = performance.now();
const progress = (line: string) =>
  process.stderr.write(`[${((performance.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${line}\n`);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
const PAYLOAD = payloadOf(256);
/** A progress line every 5 s of a long load. */
const every5s = (of: number) => (p: { elapsedMs: number; ok: number }) => {
  if (Math.floor(p.elapsedMs / 1000) % 5 === 0)
    progress(`  ${p.ok.toLocaleString('en-US')} of ${of.toLocaleString('en-US')}`);
};

interface Logged {
  readonly id: string;
  readonly line: string;
  readonly at: number;
}
const logs: Logged[] = [];
/** `--timeline FILE`: every node's log line as it arrives, after its time in seconds from the start (kept if the run fails). */
const timeline = values.timeline === undefined ? undefined : createWriteStream(values.timeline);
const preload = (file: string) =>
  `--import ${pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), 'bench', file)).href}`;
const gcLogDir = values.gc ? await mkdtemp(path.join(tmpdir(), 'rollcall-rejoin-gc-')) : undefined;
const profileEnv: NodeJS.ProcessEnv = {
  ...(cpuProfDir === undefined ? {} : { ROLLCALL_CPU_PROF_DIR: cpuProfDir }),
  ...(gcLogDir === undefined ? {} : { ROLLCALL_GC_LOG_DIR: gcLogDir }),
};
const preloads = [
  ...(cpuProfDir === undefined ? [] : [preload('cpu-prof-preload.js')]),
  ...(gcLogDir === undefined ? [] : [preload('gc-log-preload.js')]),
];
if (preloads.length > 0) profileEnv.NODE_OPTIONS = preloads.join(' ');

/** `id`'s garbage collections between two `Date.now()` times, from gc-log-preload.ts's files. */
async function gcFigures(dir: string, id: string, from: number, to: number) {
  let totalMs = 0;
  let maxPauseMs = 0;
  let full = 0;
  let fullMs = 0;
  for (const name of await readdir(dir)) {
    if (!name.startsWith(`gc-${id}-`)) continue;
    for (const line of (await readFile(path.join(dir, name), 'utf8')).split('\n')) {
      const [at, kind, ms] = line.split(' ').map(Number);
      if (at === undefined || kind === undefined || ms === undefined || !(at >= from && at <= to)) continue;
      totalMs += ms;
      maxPauseMs = Math.max(maxPauseMs, ms);
      if (kind === 4) {
        full++;
        fullMs += ms;
      }
    }
  }
  return { totalMs: Math.round(totalMs), maxPauseMs: Math.round(maxPauseMs), full, fullMs: Math.round(fullMs) };
}
const startCluster = (dataRoot?: string) =>
  LocalCluster.start({
    size: 3,
    logLevel: 'info',
    env: profileEnv,
    startTimeoutMs: 600_000,
    ...(values['compact-every'] === undefined ? {} : { extraArgs: ['--compact-every', values['compact-every']] }),
    onLog: (id, line) => {
      const at = performance.now();
      logs.push({ id, line, at });
      timeline?.write(`${((at - t0) / 1000).toFixed(3)} ${id} ${line}\n`);
    },
    ...(dataRoot === undefined ? {} : { dataRoot }),
  });

/** The registered cluster: from a copy of the cache, or registered now (and cached if asked). */
async function registeredCluster(): Promise<{ cluster: LocalCluster; dataRoot: string | undefined }> {
  const dataRoot = dataCache === undefined ? undefined : await mkdtemp(path.join(tmpdir(), 'rollcall-rejoin-'));
  if (dataCache !== undefined && dataRoot !== undefined && existsSync(path.join(dataCache, 'n1'))) {
    progress(`starting a 3-node cluster from a copy of ${dataCache}`);
    await cp(dataCache, dataRoot, { recursive: true });
    return { cluster: await startCluster(dataRoot), dataRoot };
  }
  progress('starting a 3-node cluster');
  const cluster = await startCluster(dataRoot);
  const sys = RollcallSystem.over(cluster);
  const leader = await sys.leader(20_000);
  progress(
    `registering ${instances.toLocaleString('en-US')} instances through the leader (${cluster.nodes[leader]!.id})`,
  );
  await writeAll(sys, leader, 'rejoin', instances, 64);
  if (dataCache === undefined || dataRoot === undefined) return { cluster, dataRoot };
  progress(`stopping the cluster gracefully to keep its data in ${dataCache}`);
  await cluster.close(true);
  await rm(dataCache, { recursive: true, force: true });
  await cp(dataRoot, dataCache, { recursive: true });
  progress('starting it again');
  return { cluster: await startCluster(dataRoot), dataRoot };
}

/** `count` registrations in `space` through the leader; every one must succeed. */
async function writeAll(sys: RollcallSystem, leader: number, space: string, count: number, connections: number) {
  const res = await runLoad({
    targets: [targetOf(sys.url(leader))],
    connections,
    durationMs: 1_200_000,
    maxRequests: count,
    timeoutMs: 20_000,
    onTick: every5s(count),
    request: (seq) => sys.write(space, seq, PAYLOAD),
    inspect: (status) => status === 200,
  });
  if (res.ok < count) throw new Error(`${space}: only ${res.ok} of ${count} writes succeeded`);
}

/** The leader's longest event-loop delay and most CPU per 10-ms interval over the last 10-20 s (seconds). */
async function loopFigures(url: string): Promise<{ delayMax: number; turnCpuMax: number } | null> {
  try {
    const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(30_000) })).text();
    const gauge = (name: string) => Number(text.match(new RegExp(`^${name} ([0-9.e+-]+)$`, 'm'))?.[1] ?? Number.NaN);
    return {
      delayMax: gauge('rollcall_event_loop_delay_max_seconds'),
      turnCpuMax: gauge('rollcall_event_loop_turn_cpu_max_seconds'),
    };
  } catch {
    return null;
  }
}

const { cluster, dataRoot } = await registeredCluster();
const sys = RollcallSystem.over(cluster);
/** Set to end the background writes early (an error while they run). */
let stopWriting = false;
let during: ReturnType<typeof runLoad> | undefined;
try {
  const leader = await sys.leader(60_000);
  const follower = (leader + 1) % sys.size;
  const leaderId = cluster.nodes[leader]!.id;
  const followerId = cluster.nodes[follower]!.id;
  const leaderTarget = [targetOf(sys.url(leader))];
  // Every node caught up before the idle figure (a restart from the cache replays a little).
  for (let i = 0; i < sys.size; i++) await waitReady(sys.url(i), 120_000);

  progress(`idle: ${IDLE_MS / 1000} s of writes at 4 connections to the leader (${leaderId})`);
  const idle = await runLoad({
    targets: leaderTarget,
    connections: 4,
    durationMs: IDLE_MS,
    timeoutMs: 20_000,
    request: (seq) => sys.write('rejoin-during', seq % 1000, PAYLOAD),
    inspect: (status) => status === 200,
  });

  progress(`killing follower ${followerId}; ${behind.toLocaleString('en-US')} more writes without it`);
  await sys.kill(follower);
  await writeAll(sys, leader, 'rejoin-more', behind, 16);

  progress('restarting the follower while 4 connections keep writing to the leader');
  let ready: number | null = null;
  during = runLoad({
    targets: leaderTarget,
    connections: 4,
    durationMs: 600_000,
    timeoutMs: 20_000,
    record: true,
    request: (seq) => sys.write('rejoin-during', seq % 1000, PAYLOAD),
    inspect: (status) => status === 200,
    until: () => ready !== null || stopWriting,
  });
  await sleep(1000);
  const logsFrom = logs.length;
  const restartAt = performance.now();
  const restartWall = Date.now();
  timeline?.write(`restartWall ${restartWall} (the follower's restart, ms since the epoch)\n`);
  let leaderLoop = { delayMax: 0, turnCpuMax: 0 };
  const sampling = (async () => {
    // One more read after ready: the gauges cover the last 10-20 s.
    for (let last = false; !last; ) {
      last = ready !== null || stopWriting;
      const f = await loopFigures(sys.url(leader));
      if (f !== null)
        leaderLoop = {
          delayMax: Math.max(leaderLoop.delayMax, f.delayMax),
          turnCpuMax: Math.max(leaderLoop.turnCpuMax, f.turnCpuMax),
        };
      if (!last) await sleep(1000);
    }
  })();
  await cluster.restart(followerId);
  const upMs = performance.now() - restartAt;
  progress(`follower process up after ${(upMs / 1000).toFixed(1)} s; waiting for its /readyz`);
  ready = (await waitReady(sys.url(follower), 600_000)) - restartAt;
  const writes = await during;
  await sampling;
  const readyWall = Date.now();
  // Log lines come through a pipe, GC logs are flushed every second: give the last ones a moment.
  await sleep(gcLogDir === undefined ? 500 : 1500);

  const field = (line: string, name: string): number | undefined => {
    const m = line.match(new RegExp(`"${name}":(\\d+)`));
    return m ? Number(m[1]) : undefined;
  };
  const after = logs.slice(logsFrom);
  const sends = after.filter((l) => l.id === leaderId && l.line.includes('sending a snapshot'));
  const installed = after.find((l) => l.id === followerId && l.line.includes('installed a snapshot'));
  const stalls = after
    .filter((l) => l.line.includes('disk stalled'))
    .map((l) => `${l.id}: ${field(l.line, 'waitedMs')} ms`);
  const latency = summarize(writes.records.filter((r) => r.ok).map((r) => r.end - r.start));
  const result = {
    instances,
    behind,
    upMs: Math.round(upMs),
    readyMs: Math.round(ready),
    snapshotBytes: sends[0] ? (field(sends[0].line, 'bytes') ?? null) : null,
    snapshotsSent: sends.length,
    installWriteMs: installed ? (field(installed.line, 'writeMs') ?? null) : null,
    installLoadMs: installed ? (field(installed.line, 'loadMs') ?? null) : null,
    /** The install's steps (NodeStorage.lastInstallTimes), from the same log line. */
    installSteps: installed
      ? Object.fromEntries(
          ['decodeMs', 'diffMs', 'ops', 'batchMs', 'walMs'].map((name) => [name, field(installed.line, name) ?? null]),
        )
      : null,
    idle: idle.latency,
    during: { ok: writes.ok, errors: writes.errors, ...latency },
    leaderLoopDelayMaxMs: Math.round(leaderLoop.delayMax * 1000),
    leaderTurnCpuMaxMs: Math.round(leaderLoop.turnCpuMax * 1000),
    leaderGc: gcLogDir === undefined ? null : await gcFigures(gcLogDir, leaderId, restartWall, readyWall),
    diskStalls: stalls,
    loadavg: (await import('node:os')).loadavg(),
  };
  const row = (what: string, value: string) => `| ${what} | ${value} |`;
  process.stdout.write(
    [
      `rejoin: ${instances.toLocaleString('en-US')} instances, follower ${behind.toLocaleString('en-US')} writes behind`,
      '',
      '| figure | value |',
      '|---|---:|',
      row('follower process up after restart', `${result.upMs} ms`),
      row('follower ready (/readyz 200) after restart', `${result.readyMs} ms`),
      row(
        'snapshot size, times sent',
        result.snapshotBytes === null
          ? 'none sent (caught up from the log)'
          : `${(result.snapshotBytes / 1e6).toFixed(1)} MB, ${result.snapshotsSent}`,
      ),
      row('follower install: LevelDB batch and WAL', `${result.installWriteMs ?? 'n/a'} ms`),
      row(
        '… decode / diff / batch (ops) / WAL',
        result.installSteps === null
          ? 'n/a'
          : `${result.installSteps.decodeMs} / ${result.installSteps.diffMs} / ${result.installSteps.batchMs} (${result.installSteps.ops}) / ${result.installSteps.walMs} ms`,
      ),
      row('follower install: registry reload', `${result.installLoadMs ?? 'n/a'} ms`),
      row(
        'leader write p50 / p99, idle (4 connections)',
        `${idle.latency.p50.toFixed(1)} / ${idle.latency.p99.toFixed(1)} ms`,
      ),
      row('writes to the leader meanwhile', `${writes.ok} (${writes.errors} failed)`),
      row(
        'their latency p50 / p99 / max',
        `${latency.p50.toFixed(1)} / ${latency.p99.toFixed(1)} / ${latency.max.toFixed(0)} ms`,
      ),
      row('p99 meanwhile ÷ idle p99', `${(latency.p99 / idle.latency.p99).toFixed(2)}×`),
      row(
        'leader: longest event-loop delay / most CPU in a 10-ms interval',
        `${result.leaderLoopDelayMaxMs} / ${result.leaderTurnCpuMaxMs} ms`,
      ),
      ...(result.leaderGc === null
        ? []
        : [
            row(
              'leader GC restart to ready: total / longest pause / full GCs (their time)',
              `${result.leaderGc.totalMs} / ${result.leaderGc.maxPauseMs} ms / ${result.leaderGc.full} (${result.leaderGc.fullMs} ms)`,
            ),
          ]),
      row('disk-stall reports', stalls.length === 0 ? 'none' : stalls.join(', ')),
      '',
    ].join('\n'),
  );
  if (values.out !== undefined) await writeFile(values.out, `${JSON.stringify(result, null, 2)}\n`);
} finally {
  stopWriting = true;
  await during?.catch(() => undefined);
  progress('stopping every process');
  // Profiles are written when a node exits cleanly.
  await cluster.close(cpuProfDir !== undefined);
  if (dataRoot !== undefined) await rm(dataRoot, { recursive: true, force: true });
  if (gcLogDir !== undefined) await rm(gcLogDir, { recursive: true, force: true });
  timeline?.end();
}

/** Resolves with the time (performance.now()) node `url` first answered /readyz 200. */
async function waitReady(url: string, timeoutMs: number): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (performance.now() > deadline) throw new Error(`${url} was not ready within ${timeoutMs} ms`);
    try {
      const res = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(5000) });
      if (res.status === 200) return performance.now();
    } catch {
      /* still starting or busy installing */
    }
    await sleep(50);
  }
}
