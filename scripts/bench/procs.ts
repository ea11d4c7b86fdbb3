/**
 * Process bookkeeping for the benchmark: every child it starts is registered here by
 * PID, and every one of them is killed (SIGKILL, by PID) on normal exit, on an error and
 * on Ctrl-C, with the temporary directories removed. Also CPU and RSS readings from /proc.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';

type PidSource = () => readonly (number | undefined)[];

const sources = new Set<PidSource>();
const dirs = new Set<string>();
let installed = false;

/** Registers a function listing the PIDs to kill at exit (called when it is time). */
export function trackPids(source: PidSource): () => void {
  install();
  sources.add(source);
  return () => sources.delete(source);
}

/** Registers a directory to remove at exit. */
export function trackDir(dir: string): () => void {
  install();
  dirs.add(dir);
  return () => dirs.delete(dir);
}

/** Every PID currently tracked (the benchmark's own child processes). */
export function trackedPids(): number[] {
  const out: number[] = [];
  for (const src of sources) {
    try {
      for (const pid of src()) if (pid) out.push(pid);
    } catch {
      /* ignore */
    }
  }
  return out;
}

/**
 * Our direct children, from /proc (field 4 of /proc/PID/stat is the parent). Every
 * process the benchmark starts is its child, including nodes that are still starting and
 * not yet registered anywhere; these are killed too.
 */
export function childPids(): number[] {
  const out: number[] = [];
  try {
    for (const name of readdirSync('/proc')) {
      if (!/^\d+$/.test(name)) continue;
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        if (Number(fields[1]) === process.pid) out.push(Number(name));
      } catch {
        /* gone meanwhile */
      }
    }
  } catch {
    /* no /proc */
  }
  return out;
}

/** Alive and not a zombie. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * Kills (SIGKILL, by PID) every tracked process and every child of ours, waits briefly
 * until they are gone (so none recreates a directory), then removes tracked directories.
 * Synchronous, so it also works from the 'exit' handler and on Ctrl-C.
 */
export function reapAll(): void {
  const pids = new Set<number>(childPids());
  for (const pid of trackedPids()) pids.add(pid);
  for (const pid of pids) {
    if (pid <= 0 || pid === process.pid) continue;
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  const until = Date.now() + 1000;
  while ([...pids].some(running) && Date.now() < until) {
    // busy-wait: no event loop in an 'exit' handler
  }
  for (const d of dirs) {
    try {
      rmSync(d, { recursive: true, force: true });
    } catch {
      /* best effort */
    }
  }
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', reapAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(sig, () => {
      process.stderr.write(`\n${sig}: stopping every process the benchmark started\n`);
      reapAll();
      process.exit(130);
    });
  }
}

let clkTck = 0;
function ticksPerSecond(): number {
  if (clkTck) return clkTck;
  try {
    clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    clkTck = 100;
  }
  return clkTck;
}

/** CPU seconds (user + system) a process has used so far, or NaN if it is gone. */
export function cpuSeconds(pid: number | undefined): number {
  if (!pid) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(rest[11]);
    const stime = Number(rest[12]);
    return (utime + stime) / ticksPerSecond();
  } catch {
    return Number.NaN;
  }
}

/** Resident set size in bytes, or NaN if the process is gone. */
export function rssBytes(pid: number | undefined): number {
  if (!pid) return Number.NaN;
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Machine-wide CPU counters (all cores), in ticks: busy and total. */
export function machineCpu(): { busy: number; total: number } {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
    const v = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = (v[3] ?? 0) + (v[4] ?? 0);
    const total = v.reduce((a, b) => a + b, 0);
    return { busy: total - idle, total };
  } catch {
    return { busy: Number.NaN, total: Number.NaN };
  }
}

/**
 * Measures, over a phase, how much of the machine was busy and how much of that was not
 * ours (other engineers' test runs): `foreign` = busy − our processes, in cores. Our
 * processes are sampled every second, so the CPU of a node killed mid-phase still counts
 * up to its last sample.
 */
export class LoadMeter {
  private readonly t0 = performance.now();
  private readonly m0 = machineCpu();
  private readonly self0 = selfCpu();
  /** Per PID: CPU seconds at the phase start (or 0 if it started later), and at the last sample. */
  private readonly seen = new Map<number, { base: number; last: number }>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly ourPids: () => readonly (number | undefined)[]) {
    for (const pid of this.ourPids()) {
      const c = cpuSeconds(pid);
      if (pid && Number.isFinite(c)) this.seen.set(pid, { base: c, last: c });
    }
    this.timer = setInterval(() => this.sample(), 1000);
    this.timer.unref();
  }

  private sample(): void {
    for (const pid of this.ourPids()) {
      if (!pid) continue;
      const c = cpuSeconds(pid);
      if (!Number.isFinite(c)) continue;
      const s = this.seen.get(pid);
      if (s) s.last = c;
      else this.seen.set(pid, { base: 0, last: c });
    }
  }

  /** Cores busy in total and cores busy with work that was not ours, averaged over the phase. */
  read(): { busyCores: number; foreignCores: number; seconds: number } {
    this.sample();
    clearInterval(this.timer);
    const secs = (performance.now() - this.t0) / 1000;
    const m1 = machineCpu();
    const busyCores = (m1.busy - this.m0.busy) / ticksPerSecond() / secs;
    let ours = selfCpu() - this.self0;
    for (const s of this.seen.values()) ours += s.last - s.base;
    return { busyCores, foreignCores: Math.max(0, busyCores - ours / secs), seconds: secs };
  }
}

function selfCpu(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}
