/**
 * The workloads of the side-by-side benchmark, each written once against `System` so
 * Rollcall and etcd get byte-for-byte the same treatment from the same load generator.
 * Every workload is bounded in time and count and talks only to 127.0.0.1.
 */
import { spawn } from 'node:child_process';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { StringDecoder } from 'node:string_decoder';
import { RecordSplitter } from './http1.js';
import { type ClientTls, type LoadResult, openStream, runLoad, type StreamHandle, type Target } from './loadgen.js';
import { cpuSeconds, rssBytes, trackPids } from './procs.js';
import { median, Samples, type Summary, summarize } from './stats.js';
import type { System } from './systems.js';

export type Progress = (msg: string) => void;
export type Ticker = (label: string) => (p: { elapsedMs: number; ok: number; errors: number }) => void;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function others(sys: System, leader: number): number[] {
  return Array.from({ length: sys.size }, (_, i) => i).filter((i) => i !== leader && sys.pid(i) !== undefined);
}

// ---- writes and reads -----------------------------------------------------------------

export interface RunFigures {
  readonly throughput: number;
  readonly p50: number;
  readonly p99: number;
  readonly p999: number;
  readonly ok: number;
  readonly errors: number;
  readonly statuses: Readonly<Record<string, number>>;
  /** CPU time of all the system's nodes per successful request (µs), when measured. */
  readonly cpuUsPerOp: number;
  /** Connections the load generator opened (its TLS handshakes, over TLS), reconnects included. */
  readonly connectionsOpened: number;
}

function figuresOf(r: LoadResult, cpuSeconds = Number.NaN): RunFigures {
  return {
    throughput: r.throughput,
    p50: r.latency.p50,
    p99: r.latency.p99,
    p999: r.latency.p999,
    ok: r.ok,
    errors: r.errors + r.timeouts,
    statuses: r.statuses,
    cpuUsPerOp: r.ok > 0 ? (cpuSeconds * 1e6) / r.ok : Number.NaN,
    connectionsOpened: r.connectionsOpened,
  };
}

/** CPU seconds used so far by every running node of the system. */
export function clusterCpu(sys: System): number {
  return sys.pids().reduce<number>((a, pid) => a + (pid ? cpuSeconds(pid) || 0 : 0), 0);
}

export const WRITE_KEYS = 10_000;

/** Closed-loop writes of 256-byte payloads over the 10,000-key space, to the leader or a follower. */
export async function writeRun(
  sys: System,
  o: {
    target: 'leader' | 'follower';
    connections: number;
    durationMs: number;
    maxRequests: number;
    payload: string;
    space?: string;
    keyOffset?: number;
    tick?: ReturnType<Ticker>;
    /** Connections (and their TLS handshakes) up before the clock and the CPU count start. */
    connectFirst?: boolean;
  },
): Promise<RunFigures> {
  const leader = await sys.leader();
  const node = o.target === 'leader' ? leader : others(sys, leader)[0]!;
  const space = o.space ?? 'writes';
  const offset = o.keyOffset ?? 0;
  let cpu0 = clusterCpu(sys);
  const r = await runLoad({
    targets: [sys.target(node)],
    connections: o.connections,
    durationMs: o.durationMs,
    maxRequests: o.maxRequests,
    timeoutMs: 15_000,
    ...(o.connectFirst ? { connectFirst: true, onStart: () => void (cpu0 = clusterCpu(sys)) } : {}),
    request: (seq) => sys.write(space, (offset + seq) % WRITE_KEYS, o.payload),
    ...(o.tick ? { onTick: o.tick } : {}),
  });
  return figuresOf(r, clusterCpu(sys) - cpu0);
}

export async function readRun(
  sys: System,
  o: {
    target: 'leader' | 'follower';
    serializable: boolean;
    connections: number;
    durationMs: number;
    maxRequests: number;
    keys: number;
    tick?: ReturnType<Ticker>;
    /** Connections (and their TLS handshakes) up before the clock and the CPU count start. */
    connectFirst?: boolean;
  },
): Promise<RunFigures> {
  const leader = await sys.leader();
  const node = o.target === 'leader' ? leader : others(sys, leader)[0]!;
  // Requests are prebuilt: a read's bytes depend only on its key.
  const reqs = Array.from({ length: Math.max(1, o.keys) }, (_, k) => sys.read('writes', k, o.serializable));
  let cpu0 = clusterCpu(sys);
  const r = await runLoad({
    targets: [sys.target(node)],
    connections: o.connections,
    durationMs: o.durationMs,
    maxRequests: o.maxRequests,
    timeoutMs: 15_000,
    ...(o.connectFirst ? { connectFirst: true, onStart: () => void (cpu0 = clusterCpu(sys)) } : {}),
    request: (seq) => reqs[(seq * 7919) % reqs.length]!,
    ...(o.tick ? { onTick: o.tick } : {}),
  });
  return figuresOf(r, clusterCpu(sys) - cpu0);
}

// ---- watch fan-out --------------------------------------------------------------------

export type WatchOutcome =
  | {
      readonly ok: true;
      readonly watchers: number;
      readonly changes: number;
      readonly eventsPerSec: number;
      readonly latency: Summary;
      readonly delivered: number;
      readonly lost: number;
      readonly duplicates: number;
      /** Changes whose write failed (not owed to any watcher). */
      readonly failedWrites: number;
      /** Changes sent before the bound of the change phase (`changeBoundMs`). */
      readonly writtenInTime: number;
      /** How long the change phase could last: 60 s, 180 s at one writer. */
      readonly changeBoundMs: number;
      /**
       * How late this process's event loop ran during the change/delivery phase, ms
       * (monitorEventLoopDelay). The writer and every watcher socket share this loop, so a
       * busy client adds this much to the writer's latency and to delivery, not the nodes.
       */
      readonly clientLoopDelay: { readonly p50: number; readonly p99: number; readonly max: number };
      readonly connectMs: number;
      /** The writer's latency during the fan-out (the change writes themselves), ms. */
      readonly write: Summary;
      /** The writer's latency before any watcher was open (same connections, another service), ms. */
      readonly idleWrite: Summary | null;
      /** CPU seconds during the change/delivery phase: the system's nodes, and this process (the watchers' client). */
      readonly serverCpuSec: number;
      readonly clientCpuSec: number;
    }
  | { readonly ok: false; readonly reason: string };

/**
 * `watchers` watchers of one service (spread over all nodes), then `changes` new
 * registrations of it through the leader at `writers` connections (16 unless given). Each
 * event is matched to its change by key, so every one is accounted for (lost, duplicated)
 * and its delivery latency is measured from the moment its write was sent. With
 * `idleWrites`, that many writes at the same connections to another service go first,
 * before any watcher is open: the writer's idle latency, against which the writes during
 * the fan-out are judged (does the fan-out starve the writes feeding it?). The change
 * phase ends after 60 s (180 s at one writer: a lone writer against a slow system needs
 * longer to write them all), and events/s counts what was delivered of what was written.
 */
export async function watchRun(
  sys: System,
  o: {
    watchers: number;
    changes: number;
    payload: string;
    deliverTimeoutMs: number;
    progress: Progress;
    writers?: number;
    idleWrites?: number;
  },
): Promise<WatchOutcome> {
  const leader = await sys.leader();
  const writers = o.writers ?? 16;
  const changeBoundMs = writers === 1 ? 180_000 : 60_000;
  // Another service per writer count: a run never finds the keys of an earlier one.
  const space = writers === 16 ? `watch${o.watchers}` : `watch${o.watchers}w${writers}`;
  const after = await sys.revision(leader);
  const sendAt = new Float64Array(o.changes).fill(Number.NaN);
  const lat = new Samples(Math.min(o.watchers * o.changes, 1 << 24));
  let delivered = 0;
  let duplicates = 0;
  let firstSend = Number.NaN;
  let lastEvent = Number.NaN;
  let ready = 0;
  let refused: string | null = null;
  let ended = 0;
  const handles: StreamHandle[] = [];
  const needCreated = sys.name === 'etcd';

  const open = (w: number) => {
    const seen = new Uint8Array(o.changes);
    const splitter = new RecordSplitter(sys.watchDelimiter);
    const decoder = new StringDecoder('utf8');
    let isReady = false;
    let status = 0;
    const markReady = () => {
      if (!isReady) {
        isReady = true;
        ready++;
      }
    };
    const h = openStream({
      target: sys.target(w % sys.size),
      request: sys.watchRequest(space, after),
      onHead: (s) => {
        status = s;
        if (s !== 200) refused ??= `watch request answered HTTP ${s}`;
        else if (!needCreated) markReady();
      },
      onBody: (piece) => {
        if (status !== 200) return;
        const now = performance.now();
        for (const rec of splitter.push(decoder.write(piece))) {
          const info = sys.parseWatchRecord(space, rec);
          if (info.created) markReady();
          for (const n of info.changes) {
            if (!(n >= 0 && n < o.changes)) continue;
            if (seen[n]) {
              duplicates++;
              continue;
            }
            seen[n] = 1;
            delivered++;
            lastEvent = now;
            const t = sendAt[n]!;
            if (Number.isFinite(t)) lat.push(now - t);
          }
        }
      },
      onEnd: () => {
        ended++;
      },
    });
    handles.push(h);
  };

  try {
    let idleWrite: Summary | null = null;
    if (o.idleWrites !== undefined && o.idleWrites > 0) {
      const idle = await runLoad({
        targets: [sys.target(leader)],
        connections: writers,
        durationMs: 30_000,
        maxRequests: o.idleWrites,
        timeoutMs: 15_000,
        request: (seq) => sys.write(`${space}idle`, seq, o.payload),
      });
      idleWrite = idle.latency;
    }
    const t0 = performance.now();
    const batch = 200;
    for (let w = 0; w < o.watchers; w += batch) {
      for (let j = w; j < Math.min(o.watchers, w + batch); j++) open(j);
      const deadline = performance.now() + 20_000;
      while (ready + (refused ? 1 : 0) < Math.min(o.watchers, w + batch) && performance.now() < deadline && !refused)
        await sleep(5);
      if (refused) return { ok: false, reason: refused };
    }
    if (ready < o.watchers)
      return { ok: false, reason: `only ${ready} of ${o.watchers} watchers were accepted (${ended} streams ended)` };
    const connectMs = performance.now() - t0;
    o.progress(
      `  ${sys.name}: ${o.watchers} watchers connected in ${(connectMs / 1000).toFixed(1)} s; writing ${o.changes} changes`,
    );
    await sleep(200);

    const cpu0 = clusterCpu(sys);
    const client0 = process.cpuUsage();
    const loopDelay = monitorEventLoopDelay({ resolution: 5 });
    loopDelay.enable();
    const w = await runLoad({
      targets: [sys.target(leader)],
      connections: writers,
      durationMs: changeBoundMs,
      maxRequests: o.changes,
      timeoutMs: 15_000,
      request: (seq) => {
        const now = performance.now();
        if (!Number.isFinite(firstSend)) firstSend = now;
        sendAt[seq] = now;
        return sys.write(space, seq, o.payload);
      },
    });
    // A write that timed out may still have been applied: what the watchers are owed is
    // every change that exists, read back once the writes are over.
    let applied = w.ok;
    try {
      applied = await sys.countKeys(leader, space);
    } catch {
      /* keep the acknowledged count */
    }
    const expected = o.watchers * applied;
    const deadline = performance.now() + o.deliverTimeoutMs;
    while (delivered < expected && performance.now() < deadline) await sleep(20);
    loopDelay.disable();
    // The histogram records each whole 5-ms sampling interval, in ns: the delay is what is beyond it.
    const lateMs = (ns: number) => (loopDelay.count === 0 ? 0 : Math.max(0, ns / 1e6 - 5));
    const clientLoopDelay = {
      p50: lateMs(loopDelay.percentile(50)),
      p99: lateMs(loopDelay.percentile(99)),
      max: lateMs(loopDelay.max),
    };
    const spanMs = lastEvent - firstSend;
    const client = process.cpuUsage(client0);
    return {
      serverCpuSec: clusterCpu(sys) - cpu0,
      clientCpuSec: (client.user + client.system) / 1e6,
      ok: true,
      watchers: o.watchers,
      changes: applied,
      eventsPerSec: spanMs > 0 ? (delivered * 1000) / spanMs : Number.NaN,
      latency: lat.summary(),
      delivered,
      // Only changes whose write succeeded can be owed to a watcher.
      lost: Math.max(0, expected - delivered),
      failedWrites: w.sent - w.ok,
      writtenInTime: w.sent,
      changeBoundMs,
      clientLoopDelay,
      duplicates,
      connectMs,
      write: w.latency,
      idleWrite,
    };
  } finally {
    for (const h of handles) h.close();
    await sleep(300);
  }
}

// ---- failover -------------------------------------------------------------------------

export interface FailoverOutcome {
  /** From kill -9 to the first successful write that was sent after it. */
  readonly outageMs: number;
  /** The longest any request in flight at the kill or sent after it waited for an answer (success, error or drop). */
  readonly longestMs: number;
  /** The same for requests answered before the kill (the cluster as it was, e.g. just after an earlier rep's restart). */
  readonly longestBeforeKillMs: number;
  /** Requests answered with an error or dropped. */
  readonly failed: number;
  /** Requests that stayed unanswered past the 5-second server deadline. */
  readonly pastDeadline: number;
  readonly ok: number;
}

/** Analyses the per-request records of a failover run; `killAt` is relative to the run's start. */
export function analyseFailover(
  records: readonly { start: number; end: number; ok: boolean }[],
  killAt: number,
  deadlineMs = 5000,
): FailoverOutcome {
  let first = Number.POSITIVE_INFINITY;
  let longest = 0;
  let longestBefore = 0;
  let failed = 0;
  let ok = 0;
  let pastDeadline = 0;
  for (const r of records) {
    const d = r.end - r.start;
    if (r.end < killAt) longestBefore = Math.max(longestBefore, d);
    else longest = Math.max(longest, d);
    if (d > deadlineMs + 250) pastDeadline++;
    if (r.ok) {
      ok++;
      if (r.start >= killAt && r.end < first) first = r.end;
    } else failed++;
  }
  return {
    outageMs: Number.isFinite(first) ? first - killAt : Number.NaN,
    longestMs: longest,
    longestBeforeKillMs: longestBefore,
    failed,
    pastDeadline,
    ok,
  };
}

/**
 * Writes at 16 connections through the followers (clients of a registry do not know the
 * leader); after `preMs` the leader is killed with SIGKILL; the writes go on until writes
 * have succeeded again for `settleMs`, at most `maxPostMs`. Failed writes are retried after
 * 20 ms, as a client would. The old leader is restarted afterwards and the cluster waited on.
 */
export async function failoverRun(
  sys: System,
  o: { preMs: number; maxPostMs: number; settleMs: number; payload: string; progress: Progress },
): Promise<FailoverOutcome> {
  const leader = await sys.leader();
  const followers = others(sys, leader);
  const targets: Target[] = followers.map((i) => sys.target(i));
  let killAt = Number.POSITIVE_INFINITY;
  let recovered = Number.POSITIVE_INFINITY;
  const run = runLoad({
    targets,
    connections: 16,
    durationMs: o.preMs + o.maxPostMs,
    timeoutMs: 20_000,
    errorBackoffMs: 20,
    record: true,
    request: (seq) => sys.write('failover', seq % WRITE_KEYS, o.payload),
    inspect: (status, _body, _seq, startedAt) => {
      const good = status >= 200 && status < 300;
      // Recovered: a write sent after the kill has succeeded.
      if (good && startedAt >= killAt && !Number.isFinite(recovered)) recovered = performance.now();
      return good;
    },
    // Keep going until writes have been succeeding again for settleMs (and every
    // request that hung across the kill has been answered: runLoad waits for those).
    until: () => performance.now() > recovered + o.settleMs,
  });
  await sleep(o.preMs);
  killAt = performance.now();
  await sys.kill(leader);
  const res = await run;
  const outcome = analyseFailover(res.records, killAt - res.t0);
  o.progress(
    `  ${sys.name}: outage ${outcome.outageMs.toFixed(0)} ms, longest request across the kill ${outcome.longestMs.toFixed(0)} ms (before it ${outcome.longestBeforeKillMs.toFixed(0)} ms), ${outcome.failed} failed; restarting the old leader`,
  );
  await sys.restart(leader);
  await sys.leader(20_000);
  return outcome;
}

// ---- sessions -------------------------------------------------------------------------

export interface SessionsOutcome {
  readonly sessions: number;
  readonly opened: number;
  readonly leaderCpuPct: number;
  readonly keepalivesPerSec: number;
  readonly keepaliveP99: number;
  readonly writeP99: number;
  readonly writeThroughput: number;
  readonly falseExpiries: number;
  readonly keepaliveErrors: number;
  readonly errorSamples: readonly string[];
  readonly expiredSamples: readonly string[];
}

/**
 * Opens `sessions` sessions (TTL 10 s) at 64 connections while keeping alive, every 3 s
 * through all nodes, the ones already open (a session is kept alive from the moment it
 * exists, as a client would). Once all are open, a measured phase of `phaseMs`: leader CPU,
 * the keepalives, and a modest write load beside them (200/s, 4 connections) for write p99.
 * A keepalive that finds its session gone is a false expiry (nothing ever stops them).
 */
export async function sessionsRun(
  sys: System,
  o: { sessions: number; phaseMs: number; payload: string; progress: Progress; tick?: ReturnType<Ticker> },
): Promise<SessionsOutcome> {
  const leader = await sys.leader();
  const all = Array.from({ length: sys.size }, (_, i) => i).filter((i) => sys.pid(i) !== undefined);
  const openedIds: number[] = [];
  const openDeadline = performance.now() + 30_000;
  const expired = new Set<number>();
  let keepaliveErrors = 0;
  const errorSamples: string[] = [];
  const expiredSamples: string[] = [];
  let phaseEnd = Number.POSITIVE_INFINITY;
  let inPhase = false;
  let phaseOk = 0;
  const phaseLat = new Samples(1 << 16);

  const opening = runLoad({
    targets: [sys.target(leader)],
    connections: 64,
    durationMs: 120_000,
    maxRequests: o.sessions,
    timeoutMs: 15_000,
    request: (seq) => sys.openSession(seq, 10),
    inspect: (status, _body, seq) => {
      const ok = status >= 200 && status < 300;
      if (ok) openedIds.push(seq);
      return ok;
    },
  });
  while (openedIds.length === 0 && performance.now() < openDeadline) await sleep(5);
  /** Which session each keepalive request went to, by request number. */
  const target = new Map<number, number>();
  let cursor = 0;
  const keepalives = runLoad({
    targets: all.map((i) => sys.target(i)),
    connections: 48,
    durationMs: 600_000,
    ratePerSec: o.sessions / 3,
    timeoutMs: 15_000,
    until: () => performance.now() >= phaseEnd,
    // Round-robin over the sessions open so far: one pass takes (sessions open) / rate
    // seconds, at most 3 s. (`seq % open` would not do: seq and the open count grow
    // together, and the remainder would sweep a narrow band, starving the first sessions.)
    request: (seq) => {
      if (cursor >= openedIds.length) cursor = 0;
      const n = openedIds[cursor++] ?? 0;
      target.set(seq, n);
      return sys.keepalive(n);
    },
    inspect: (status, body, seq, startedAt) => {
      const n = target.get(seq) ?? -1;
      target.delete(seq);
      const outcome = sys.keepaliveOutcome(status, body);
      if (outcome === 'alive') {
        if (inPhase) {
          phaseOk++;
          phaseLat.push(performance.now() - startedAt);
        }
        return true;
      }
      if (n < 0) return false;
      if (outcome === 'expired') {
        expired.add(n);
        if (expiredSamples.length < 3) expiredSamples.push(`${status} ${body.toString('utf8').slice(0, 200)}`);
      } else {
        keepaliveErrors++;
        if (errorSamples.length < 3) errorSamples.push(`${status} ${body.toString('utf8').slice(0, 200)}`);
      }
      return false;
    },
    ...(o.tick ? { onTick: o.tick } : {}),
  });
  const opened = await opening;
  o.progress(
    `  ${sys.name}: opened ${opened.ok}/${o.sessions} sessions in ${(opened.elapsedMs / 1000).toFixed(1)} s (kept alive meanwhile); measuring for ${(o.phaseMs / 1000).toFixed(0)} s`,
  );
  const pid = sys.pid(leader);
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  inPhase = true;
  phaseEnd = t0 + o.phaseMs;
  const wr = await runLoad({
    targets: [sys.target(leader)],
    connections: 4,
    durationMs: o.phaseMs,
    ratePerSec: 200,
    timeoutMs: 15_000,
    request: (seq) => sys.write('sessions', seq % WRITE_KEYS, o.payload),
  });
  const kaAll = await keepalives;
  o.progress(
    `  ${sys.name}: keepalives over the whole run: ${kaAll.ok} alive, ${kaAll.errors} not (expired or failed), ${kaAll.timeouts} timed out, ${Math.round(kaAll.throughput)}/s, p50 ${kaAll.latency.p50.toFixed(1)} ms`,
  );
  const secs = (performance.now() - t0) / 1000;
  const cpu1 = cpuSeconds(pid);
  const ka = phaseLat.summary();
  return {
    sessions: o.sessions,
    opened: opened.ok,
    leaderCpuPct: ((cpu1 - cpu0) / secs) * 100,
    keepalivesPerSec: phaseOk / secs,
    keepaliveP99: ka.p99,
    writeP99: wr.latency.p99,
    writeThroughput: wr.throughput,
    falseExpiries: expired.size,
    keepaliveErrors,
    errorSamples,
    expiredSamples,
  };
}

// ---- restart to ready -----------------------------------------------------------------

export interface RestartOutcome {
  readonly instances: number;
  readonly loadThroughput: number;
  readonly rssAfterLoadMb: number;
  readonly readyMs: number;
  /** Until every process was up (Rollcall: printed its ready line; etcd: /health true). */
  readonly processesUpMs: number;
  readonly rssAfterRestartMb: number;
}

function meanRssMb(sys: System): number {
  const v = sys
    .pids()
    .map((p) => rssBytes(p))
    .filter((x) => Number.isFinite(x));
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length / (1024 * 1024) : Number.NaN;
}

/**
 * Registers `instances` instances (64 connections to the leader), reads RSS, kills every
 * node with SIGKILL, starts them all again and measures until a linearizable read succeeds
 * through every node; RSS again a second later.
 */
export async function restartRun(
  sys: System,
  o: { instances: number; payload: string; maxLoadMs: number; progress: Progress; tick?: ReturnType<Ticker> },
): Promise<RestartOutcome> {
  const leader = await sys.leader();
  const load = await runLoad({
    targets: [sys.target(leader)],
    connections: 64,
    durationMs: o.maxLoadMs,
    maxRequests: o.instances,
    timeoutMs: 15_000,
    request: (seq) => sys.write('restart', seq, o.payload),
    ...(o.tick ? { onTick: o.tick } : {}),
  });
  o.progress(
    `  ${sys.name}: ${load.ok} instances written in ${(load.elapsedMs / 1000).toFixed(1)} s (${load.errors + load.timeouts} failed)`,
  );
  await sleep(1000);
  const rssAfterLoadMb = meanRssMb(sys);
  for (let i = 0; i < sys.size; i++) await sys.kill(i);
  const t0 = performance.now();
  await sys.restartAll();
  const processesUpMs = performance.now() - t0;
  const deadline = t0 + 120_000;
  const ready = new Set<number>();
  while (ready.size < sys.size && performance.now() < deadline) {
    await Promise.all(
      Array.from({ length: sys.size }, (_, i) => i)
        .filter((i) => !ready.has(i))
        .map(async (i) => {
          if (await sys.probeRead(i, 'restart', 0)) ready.add(i);
        }),
    );
    if (ready.size < sys.size) await sleep(20);
  }
  const readyMs = ready.size === sys.size ? performance.now() - t0 : Number.NaN;
  await sleep(1000);
  return {
    instances: load.ok,
    loadThroughput: load.throughput,
    rssAfterLoadMb,
    readyMs,
    processesUpMs,
    rssAfterRestartMb: meanRssMb(sys),
  };
}

// ---- machine floors -------------------------------------------------------------------

/** write + fdatasync of 256 bytes, `samples` times, in the directory the data directories live in. */
export function fsyncFloor(samples: number, dir = tmpdir()): Summary {
  const d = mkdtempSync(path.join(dir, 'rollcall-bench-fsync-'));
  const file = path.join(d, 'probe');
  const fd = openSync(file, 'w');
  const buf = Buffer.alloc(256, 7);
  const lat = new Samples(samples);
  try {
    const stopAt = performance.now() + 20_000;
    for (let i = 0; i < samples && performance.now() < stopAt; i++) {
      const t = performance.now();
      writeSync(fd, buf, 0, buf.length, i * buf.length);
      fdatasyncSync(fd);
      lat.push(performance.now() - t);
    }
  } finally {
    closeSync(fd);
    rmSync(d, { recursive: true, force: true });
  }
  return lat.summary();
}

const TRIVIAL_SERVER = `
const http = require('node:http');
const https = require('node:https');
const fs = require('node:fs');
const handler = (req, res) => { req.resume(); res.setHeader('content-type', 'application/json'); res.end('{"ok":true}'); };
const s = process.env.FLOOR_TLS_CERT
  ? https.createServer({ cert: fs.readFileSync(process.env.FLOOR_TLS_CERT), key: fs.readFileSync(process.env.FLOOR_TLS_KEY) }, handler)
  : http.createServer(handler);
s.keepAliveTimeout = 60000;
s.listen(0, '127.0.0.1', () => process.stdout.write(JSON.stringify({ port: s.address().port }) + '\\n'));
`;

/**
 * A trivial Node HTTP server (one process, node:http) under 64 keep-alive connections; with
 * `tls`, the same server over node:https with that certificate (the client holds `tls.client`).
 */
export async function httpFloor(
  durationMs: number,
  tick?: ReturnType<Ticker>,
  tls?: { readonly cert: string; readonly key: string; readonly client: ClientTls },
): Promise<RunFigures> {
  const proc = spawn(process.execPath, ['-e', TRIVIAL_SERVER], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: tls ? { ...process.env, FLOOR_TLS_CERT: tls.cert, FLOOR_TLS_KEY: tls.key } : process.env,
  });
  const untrack = trackPids(() => [proc.pid]);
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let buf = '';
      proc.stdout!.on('data', (c: Buffer) => {
        buf += c.toString('utf8');
        const m = /"port":(\d+)/.exec(buf);
        if (m) resolve(Number(m[1]));
      });
      proc.once('exit', () => reject(new Error('trivial server exited')));
    });
    const req = Buffer.from('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', 'latin1');
    const r = await runLoad({
      targets: [tls ? { host: '127.0.0.1', port, tls: tls.client } : { host: '127.0.0.1', port }],
      connections: 64,
      connectFirst: true,
      durationMs,
      timeoutMs: 10_000,
      request: () => req,
      ...(tick ? { onTick: tick } : {}),
    });
    return figuresOf(r);
  } finally {
    proc.kill('SIGKILL');
    untrack();
  }
}

export { median, summarize };
