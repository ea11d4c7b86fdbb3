/**
 * `npm run bench:ui`: the monitoring page at scale (issue 21). One real node with 100,000
 * instances over 1,000 services, the page opened in headless Chromium (Debian's, driven by
 * playwright-core), then live changes at a steady rate while the list is scrolled. Prints:
 *
 * - first paint of the services list: from navigation to the first instance row drawn
 *   (goal ≤ 2 s), and until the whole listing is held and the watch is live;
 * - frames while changes arrive: the gaps between animation frames (goal: none over 200 ms)
 *   and the longest task Chromium reports (Long Tasks API), over the measuring window.
 *
 * - what the renderer's main thread did over that window: its time on a CPU and waiting for
 *   one (/proc schedstat), and with `--trace` a Chromium performance trace: each task over
 *   50 ms with its wall time against its own thread time, and where the main thread's time
 *   went (script, style, layout, paint, GC, parsing), in the long tasks and in all of them.
 *
 *   npm run bench:ui -- [--instances 100000] [--services 1000] [--rate 500] [--seconds 15] [--trace] [--json]
 *
 * Needs `npm run build` first, playwright-core and /usr/bin/chromium. Figures in docs/ui.md.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { bulkRegister, request } from './bench/listing-load.js';
import { LocalCluster } from './local-cluster.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-sync'];

// The in-page code is plain JavaScript in strings: this script is compiled without the DOM lib
// (the main tsconfig keeps browser globals out of the Node code).

/** Runs in the page before its scripts: marks the first row drawn, records frames and long tasks. */
const INSTRUMENT = `(() => {
  const marks = { firstRow: null, firstPaint: null, frames: [], recording: false, longTasks: [], loadLongTasks: [] };
  window.__bench = marks;
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) (marks.recording ? marks.longTasks : marks.loadLongTasks).push(e.duration);
  }).observe({ type: 'longtask', buffered: true });
  document.addEventListener('DOMContentLoaded', () => {
    const box = document.getElementById('services');
    const seen = new MutationObserver(() => {
      if (marks.firstRow !== null || !box.querySelector('[data-instance]')) return;
      marks.firstRow = performance.now();
      requestAnimationFrame(() => setTimeout(() => { marks.firstPaint = performance.now(); }, 0));
      seen.disconnect();
    });
    seen.observe(box, { childList: true, subtree: true });
  });
  const frame = (t) => {
    if (marks.recording) marks.frames.push(t);
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
})()`;

const LOADED = (instances: number) =>
  `window.__bench.firstPaint !== null && (document.getElementById('services-count')?.textContent ?? '').includes('${instances} instances')`;

const LOAD_MARKS = `({
  firstRow: window.__bench.firstRow,
  firstPaint: window.__bench.firstPaint,
  listed: performance.now(),
  longest: Math.max(0, ...window.__bench.loadLongTasks),
  rows: document.querySelectorAll('[data-instance]').length,
})`;

const SCROLL = (step: number) => `(() => {
  const box = document.getElementById('services');
  box.scrollTop = ${(step * 7919) % 1000} * (box.scrollHeight / 1000);
})()`;

const RECORD =
  'window.__bench.frames = []; window.__bench.longTasks = []; window.__bench.pageAtStart = { ...window.rollcallPage }; window.__bench.recording = true';

const LIVE_MARKS = `(() => {
  window.__bench.recording = false;
  const f = window.__bench.frames;
  const gaps = f.slice(1).map((t, i) => t - f[i]).sort((a, b) => a - b);
  // The page's own counters (app.ts: window.rollcallPage), over the window; absent in builds before them.
  const now = window.rollcallPage, was = window.__bench.pageAtStart;
  const page = now ? {
    batches: now.batches - was.batches,
    framesDrawn: now.framesDrawn - was.framesDrawn,
    rowsBuilt: now.rowsBuilt - was.rowsBuilt,
    listBuilds: now.listBuilds - was.listBuilds,
  } : null;
  return { frames: f.length, gaps, longTasks: [...window.__bench.longTasks].sort((a, b) => a - b), page };
})()`;

interface LiveMarks {
  readonly frames: number;
  readonly gaps: number[];
  readonly longTasks: number[];
  readonly page: { batches: number; framesDrawn: number; rowsBuilt: number; listBuilds: number } | null;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/**
 * Changes at `rate` per second for `ms`: weight changes of existing instances (a put with its
 * previous), and registrations and removals of extra ones. Resolves with how many were applied.
 */
async function changes(url: string, instances: number, services: number, rate: number, ms: number): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  const started = performance.now();
  let sent = 0;
  let applied = 0;
  let failed = 0;
  let seed = 42;
  // A small LCG: the same changes on every run.
  const next = (n: number) => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed % n;
  };
  const extra = new Set<number>();
  try {
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (;;) {
          const now = performance.now() - started;
          if (now >= ms) return;
          const due = Math.floor((now / 1000) * rate);
          if (sent >= due) {
            await new Promise((r) => setTimeout(r, 5));
            continue;
          }
          sent++;
          const kind = next(10);
          let r: { status: number };
          if (kind < 8) {
            const i = next(instances);
            const body = JSON.stringify({
              address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
              port: 8000 + (i % 1000),
              cluster: i % 3 === 0 ? 'vip' : 'default',
              weight: 1 + next(200),
              tags: ['v1', 'blue'],
              metadata: { zone: `zone-${i % 4}`, version: '1.4.2' },
            });
            r = await request(
              agent,
              `${url}/v1/namespaces/prod/services/svc-${i % services}/instances/i-${i}`,
              'PUT',
              body,
            );
          } else {
            const e = next(2000);
            const path = `${url}/v1/namespaces/prod/services/svc-${e % services}/instances/extra-${e}`;
            if (extra.has(e)) {
              extra.delete(e);
              r = await request(agent, path, 'DELETE');
            } else {
              extra.add(e);
              r = await request(agent, path, 'PUT', JSON.stringify({ address: '10.250.0.1', port: 9000 }));
            }
          }
          if (r.status === 200) applied++;
          else failed++;
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  if (failed > 0) console.log(`  (${failed} changes refused)`);
  return applied;
}

/**
 * The renderer main threads of this Chromium (its profile directory names it): time on a CPU
 * and time runnable but waiting for one (/proc/<pid>/task/<tid>/schedstat, ns). On a shared
 * machine the second says how much of a long frame was the page's own work and how much was
 * the scheduler's.
 */
function rendererMainThreads(profile: string): { cpuMs: number; waitMs: number } {
  const read = (file: string): string | null => {
    try {
      return readFileSync(file, 'utf8');
    } catch {
      // Gone between the listing and the read (a process or thread ended): nothing to count.
      return null;
    }
  };
  // Renderers do not carry the profile directory: they descend from the browser process that does.
  const parent = new Map<string, string>();
  const ours = new Set<string>();
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    const stat = read(`/proc/${pid}/stat`);
    if (stat !== null) parent.set(pid, stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]!);
    if (read(`/proc/${pid}/cmdline`)?.includes(`--user-data-dir=${profile}`)) ours.add(pid);
  }
  let cpu = 0;
  let wait = 0;
  for (const pid of parent.keys()) {
    let up: string | undefined = pid;
    while (up !== undefined && up !== '0' && !ours.has(up)) up = parent.get(up);
    if (up === undefined || up === '0' || !read(`/proc/${pid}/cmdline`)?.includes('--type=renderer')) continue;
    let tids: string[];
    try {
      tids = readdirSync(`/proc/${pid}/task`);
    } catch {
      continue; // ended meanwhile
    }
    for (const tid of tids) {
      // The main thread is the process's first (tid = pid); Debian's build names it after the binary.
      if (tid !== pid && read(`/proc/${pid}/task/${tid}/comm`)?.trim() !== 'CrRendererMain') continue;
      const sched = read(`/proc/${pid}/task/${tid}/schedstat`);
      if (sched === null) continue;
      const [onCpu, waiting] = sched.split(' ').map(Number);
      cpu += onCpu! / 1e6;
      wait += waiting! / 1e6;
    }
  }
  return { cpuMs: cpu, waitMs: wait };
}

/** The page's functions by self time over the live window (`--profile`): where its main thread went. */
function printProfile(profile: {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  samples?: number[];
  timeDeltas?: number[];
}): void {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let k = 0; k < samples.length; k++) {
    const f = byNode.get(samples[k]!)!.callFrame;
    const name = `${f.functionName || '(anonymous)'} ${f.url.split('/').pop()}:${f.lineNumber + 1}`;
    self.set(name, (self.get(name) ?? 0) + (deltas[k] ?? 0) / 1000);
  }
  const top = [...self].sort((a, b) => b[1] - a[1]).slice(0, 20);
  for (const [name, ms] of top) console.log(`  ${ms.toFixed(0).padStart(7)} ms  ${name}`);
}

/** One event of a Chromium trace (the Trace Event Format), as much of it as the summary reads. */
interface TraceEvent {
  readonly name: string;
  readonly cat: string;
  readonly ph: string;
  readonly ts: number;
  readonly dur?: number;
  readonly tdur?: number;
  readonly pid: number;
  readonly tid: number;
  readonly args?: {
    readonly name?: string;
    readonly data?: { functionName?: string; url?: string; lineNumber?: number; type?: string };
  };
}

/** What the trace says the renderer main thread did: tasks over 50 ms, and where its time went. */
interface TraceSummary {
  readonly tasks: number;
  readonly taskWallMs: number;
  readonly taskThreadMs: number;
  /** The most thread (CPU) time any one task took: the page's own work, whatever the machine's load. */
  readonly maxTaskThreadMs: number;
  /** Tasks over 50 ms, longest first: wall time, the thread's own (CPU) time, and their biggest parts. */
  readonly longTasks: readonly { wallMs: number; threadMs: number; parts: string }[];
  /** Self time (wall) by kind of work: in the long tasks, and in all tasks. */
  readonly inLong: readonly [string, number][];
  readonly inAll: readonly [string, number][];
}

const TRACE_CATEGORIES = [
  '-*',
  'toplevel',
  'devtools.timeline',
  'disabled-by-default-devtools.timeline',
  'v8.execute',
  'blink.user_timing',
].join(',');

/** A trace event's kind of work, as the summary groups it (a script call by its function). */
function workKind(e: TraceEvent): string {
  const d = e.args?.data;
  if (e.name === 'FunctionCall' && d) {
    return `script ${d.functionName || '(anonymous)'} ${(d.url ?? '').split('/').pop()}:${(d.lineNumber ?? 0) + 1}`;
  }
  if (e.name === 'EventDispatch' && d?.type) return `EventDispatch ${d.type}`;
  if (e.name === 'RunTask' || e.name === 'ThreadControllerImpl::RunTask') return '(task, unattributed)';
  return e.name;
}

function summarizeTrace(events: readonly TraceEvent[]): TraceSummary {
  // The page's renderer main thread: the CrRendererMain with the most events.
  const mains = new Set(
    events
      .filter((e) => e.ph === 'M' && e.name === 'thread_name' && e.args?.name === 'CrRendererMain')
      .map((e) => `${e.pid}:${e.tid}`),
  );
  const perThread = new Map<string, TraceEvent[]>();
  for (const e of events) {
    const key = `${e.pid}:${e.tid}`;
    if (!mains.has(key)) continue;
    let list = perThread.get(key);
    if (!list) perThread.set(key, (list = []));
    list.push(e);
  }
  const main = [...perThread.values()].sort((a, b) => b.length - a.length)[0] ?? [];
  // Complete events only: begin/end pairs turned into one with a duration.
  const open: TraceEvent[] = [];
  const spans: TraceEvent[] = [];
  for (const e of [...main].sort((a, b) => a.ts - b.ts)) {
    if (e.ph === 'X' && e.dur !== undefined) spans.push(e);
    else if (e.ph === 'B') open.push(e);
    else if (e.ph === 'E') {
      const b = open.pop();
      if (b) spans.push({ ...b, ph: 'X', dur: e.ts - b.ts });
    }
  }
  // Parents before children: by start, the longer first at the same start.
  spans.sort((a, b) => a.ts - b.ts || b.dur! - a.dur!);
  const isTask = (e: TraceEvent) => e.name === 'RunTask' || e.name === 'ThreadControllerImpl::RunTask';
  const inLong = new Map<string, number>();
  const inAll = new Map<string, number>();
  const longTasks: { wallMs: number; threadMs: number; parts: Map<string, number> }[] = [];
  let tasks = 0;
  let taskWall = 0;
  let taskThread = 0;
  let maxTaskThread = 0;
  // A stack of open spans with the time their children took, for self times.
  const stack: { e: TraceEvent; children: number }[] = [];
  let task: { e: TraceEvent; parts: Map<string, number> } | null = null;
  const close = (upTo: number) => {
    while (stack.length && stack.at(-1)!.e.ts + stack.at(-1)!.e.dur! <= upTo) {
      const { e, children } = stack.pop()!;
      if (stack.length) stack.at(-1)!.children += e.dur!;
      const self = Math.max(0, e.dur! - children) / 1000;
      const kind = workKind(e);
      inAll.set(kind, (inAll.get(kind) ?? 0) + self);
      if (task && task.e.dur! > 50_000) task.parts.set(kind, (task.parts.get(kind) ?? 0) + self);
      if (stack.length === 0 && task) {
        if (task.e.dur! > 50_000) {
          for (const [k, ms] of task.parts) inLong.set(k, (inLong.get(k) ?? 0) + ms);
          longTasks.push({ wallMs: task.e.dur! / 1000, threadMs: (task.e.tdur ?? 0) / 1000, parts: task.parts });
        }
        task = null;
      }
    }
  };
  for (const e of spans) {
    close(e.ts);
    if (stack.length === 0) {
      // Only whole tasks at the top: a stray event outside any task is counted on its own.
      if (isTask(e)) {
        tasks++;
        taskWall += e.dur!;
        taskThread += e.tdur ?? 0;
        maxTaskThread = Math.max(maxTaskThread, e.tdur ?? 0);
      }
      task = { e, parts: new Map() };
    }
    stack.push({ e, children: 0 });
  }
  close(Number.POSITIVE_INFINITY);
  const top = (m: Map<string, number>, n: number) => [...m].sort((a, b) => b[1] - a[1]).slice(0, n);
  return {
    tasks,
    taskWallMs: taskWall / 1000,
    taskThreadMs: taskThread / 1000,
    maxTaskThreadMs: maxTaskThread / 1000,
    longTasks: longTasks
      .sort((a, b) => b.wallMs - a.wallMs)
      .map((t) => ({
        wallMs: Math.round(t.wallMs),
        threadMs: Math.round(t.threadMs),
        parts: top(t.parts, 3)
          .map(([k, ms]) => `${k} ${Math.round(ms)}`)
          .join(', '),
      })),
    inLong: top(inLong, 12),
    inAll: top(inAll, 15),
  };
}

function printTrace(t: TraceSummary): void {
  console.log(
    `trace: ${t.tasks} main-thread tasks, ${Math.round(t.taskWallMs)} ms wall, ${Math.round(t.taskThreadMs)} ms on the thread's own clock (the most in one task ${Math.round(t.maxTaskThreadMs)} ms); ${t.longTasks.length} over 50 ms`,
  );
  for (const l of t.longTasks.slice(0, 10))
    console.log(`  task ${l.wallMs} ms wall, ${l.threadMs} ms thread: ${l.parts}`);
  console.log('  self time in the tasks over 50 ms:');
  for (const [k, ms] of t.inLong) console.log(`    ${ms.toFixed(0).padStart(6)} ms  ${k}`);
  console.log('  self time in all tasks:');
  for (const [k, ms] of t.inAll) console.log(`    ${ms.toFixed(0).padStart(6)} ms  ${k}`);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      instances: { type: 'string', default: '100000' },
      services: { type: 'string', default: '1000' },
      rate: { type: 'string', default: '500' },
      seconds: { type: 'string', default: '15' },
      json: { type: 'boolean', default: false },
      profile: { type: 'boolean', default: false },
      still: { type: 'boolean', default: false },
      trace: { type: 'boolean', default: false },
    },
  });
  const instances = Number(values.instances);
  const services = Number(values.services);
  const rate = Number(values.rate);
  const seconds = Number(values.seconds);
  const pw = (await import('playwright-core').catch(() => null)) as typeof import('playwright-core') | null;
  if (pw === null || !existsSync(CHROMIUM)) {
    console.error(`bench:ui needs playwright-core and ${CHROMIUM} (.ci/install-chromium.sh)`);
    return 2;
  }
  const cluster = await LocalCluster.start({ size: 1, logLevel: 'warn' });
  const profile = mkdtempSync(path.join(tmpdir(), 'rollcall-bench-ui-'));
  let browser: import('playwright-core').BrowserContext | null = null;
  try {
    const url = cluster.nodes[0]!.url;
    for (
      let i = 0;
      (await request(new http.Agent(), `${url}/readyz`, 'GET').catch(() => ({ status: 0 }))).status !== 200;
      i++
    ) {
      if (i > 300) throw new Error('the node never became ready');
      await new Promise((r) => setTimeout(r, 100));
    }
    console.log(`registering ${instances} instances over ${services} services`);
    const perS = await bulkRegister(url, { instances, services, writers: 64, namespace: 'prod', labels: 4 }, (d) =>
      process.stdout.write(`  ${d}\r`),
    );
    console.log(`registered at ${Math.round(perS)}/s`);

    browser = await pw.chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 1440, height: 900 },
      // The measuring code is evaluated from strings, which the page's CSP (no eval) refuses.
      bypassCSP: true,
    });
    const page = await browser.newPage();
    page.setDefaultTimeout(120_000);
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.addInitScript({ content: INSTRUMENT });

    // ---- load: first row drawn, then the whole listing held and the watch live
    await page.goto(`${url}/ui`);
    await page.waitForFunction(LOADED(instances), undefined, { polling: 50 });
    await page.waitForSelector('#watch.live-live');
    const load = await page.evaluate<{
      firstRow: number;
      firstPaint: number;
      listed: number;
      longest: number;
      rows: number;
    }>(LOAD_MARKS);

    // ---- idle: the same window with no changes and no scrolling, for what this machine gives the page
    const idleBefore = rendererMainThreads(profile);
    await page.evaluate(RECORD);
    await new Promise((r) => setTimeout(r, 3000));
    const idleAfter = rendererMainThreads(profile);
    const idle = await page.evaluate<LiveMarks>(LIVE_MARKS);

    // ---- live: changes at `rate`/s while the list is scrolled, frames recorded
    const revisionBefore = Number(await page.locator('#revision').textContent());
    const cdp = values.profile || values.trace ? await page.context().newCDPSession(page) : null;
    if (cdp && values.profile) {
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.start');
    }
    const traceEvents: TraceEvent[] = [];
    if (cdp && values.trace) {
      cdp.on('Tracing.dataCollected', (d) => traceEvents.push(...(d.value as unknown as TraceEvent[])));
      await cdp.send('Tracing.start', { categories: TRACE_CATEGORIES, transferMode: 'ReportEvents' });
    }
    const threadsBefore = rendererMainThreads(profile);
    await page.evaluate(RECORD);
    const scroller = (async () => {
      const end = performance.now() + seconds * 1000;
      for (let step = 0; !values.still && performance.now() < end; step++) {
        await page.evaluate(SCROLL(step));
        await new Promise((r) => setTimeout(r, 250));
      }
    })();
    const applied = await changes(url, instances, services, rate, seconds * 1000);
    await scroller;
    // Let the last changes arrive before the window closes.
    await new Promise((r) => setTimeout(r, 500));
    // How far behind the node the page is at the end of the window, and how long it takes to catch up.
    const written = JSON.parse((await request(new http.Agent(), `${url}/v1/cluster`, 'GET')).text) as {
      revision: number;
    };
    const behind = written.revision - Number(await page.locator('#revision').textContent());
    const catchUpFrom = performance.now();
    await page.waitForFunction(
      `Number(document.getElementById('revision').textContent) >= ${written.revision}`,
      undefined,
      {
        polling: 20,
      },
    );
    const catchUpMs = Math.round(performance.now() - catchUpFrom);
    const live = await page.evaluate<LiveMarks>(LIVE_MARKS);
    const threadsAfter = rendererMainThreads(profile);
    if (cdp && values.profile) printProfile((await cdp.send('Profiler.stop')).profile);
    let trace: TraceSummary | null = null;
    if (cdp && values.trace) {
      const complete = new Promise((r) => cdp.once('Tracing.tracingComplete', r));
      await cdp.send('Tracing.end');
      await complete;
      trace = summarizeTrace(traceEvents);
    }
    const revisionAfter = Number(await page.locator('#revision').textContent());
    const figures = {
      instances,
      services,
      firstRowMs: Math.round(load.firstRow),
      firstPaintMs: Math.round(load.firstPaint),
      fullListingMs: Math.round(load.listed),
      rowsInDom: load.rows,
      longestTaskDuringLoadMs: Math.round(load.longest),
      changesPerS: rate,
      seconds,
      changesApplied: applied,
      revisionsSeen: revisionAfter - revisionBefore,
      behindAtEnd: behind,
      catchUpMs,
      idleFrameGapP50Ms: Math.round(quantile(idle.gaps, 0.5) * 10) / 10,
      idleFrameGapMaxMs: Math.round(idle.gaps.at(-1) ?? 0),
      idleMainThreadCpuMs: Math.round(idleAfter.cpuMs - idleBefore.cpuMs),
      frames: live.frames,
      frameGapP50Ms: Math.round(quantile(live.gaps, 0.5) * 10) / 10,
      frameGapP99Ms: Math.round(quantile(live.gaps, 0.99) * 10) / 10,
      frameGapMaxMs: Math.round(live.gaps.at(-1) ?? 0),
      framesOver200Ms: live.gaps.filter((g) => g > 200).length,
      longTasks: live.longTasks.length,
      longestTaskMs: Math.round(live.longTasks.at(-1) ?? 0),
      longTaskTotalMs: Math.round(live.longTasks.reduce((a, b) => a + b, 0)),
      page: live.page,
      mainThreadCpuMs: Math.round(threadsAfter.cpuMs - threadsBefore.cpuMs),
      mainThreadWaitMs: Math.round(threadsAfter.waitMs - threadsBefore.waitMs),
      loadAverage: (await import('node:os')).loadavg()[0]!.toFixed(1),
      pageErrors: errors.length,
      trace,
    };
    if (values.json) console.log(JSON.stringify(figures));
    else {
      console.log(
        `first row drawn ${figures.firstPaintMs} ms after navigation (in the DOM at ${figures.firstRowMs} ms); ` +
          `all ${instances} held and live at ${figures.fullListingMs} ms; ${figures.rowsInDom} rows in the DOM; ` +
          `longest task during the load ${figures.longestTaskDuringLoadMs} ms`,
      );
      console.log(
        `live: ${applied} changes in ${seconds} s (${figures.revisionsSeen} revisions reached the page) while scrolling; ` +
          `${figures.behindAtEnd} revisions behind the node at the end, caught up ${figures.catchUpMs} ms later; ` +
          `${figures.frames} frames, gap p50 ${figures.frameGapP50Ms} ms, p99 ${figures.frameGapP99Ms} ms, ` +
          `max ${figures.frameGapMaxMs} ms (${figures.framesOver200Ms} over 200 ms); ` +
          `${figures.longTasks} long tasks (over 50 ms) of ${figures.longTaskTotalMs} ms together, longest ${figures.longestTaskMs} ms`,
      );
      console.log(
        `the page's main thread over the live window (${seconds + 0.5} s): ${figures.mainThreadCpuMs} ms on a CPU, ` +
          `${figures.mainThreadWaitMs} ms runnable but waiting for one (load average ${figures.loadAverage})`,
      );
      console.log(
        `idle (no changes, no scrolling, 3 s): frame gap p50 ${figures.idleFrameGapP50Ms} ms, max ${figures.idleFrameGapMaxMs} ms; main thread ${figures.idleMainThreadCpuMs} ms on a CPU`,
      );
      if (live.page)
        console.log(
          `the page drew the list in ${live.page.framesDrawn} frames, applied the changes in ${live.page.batches} batches, ` +
            `built ${live.page.rowsBuilt} rows and the whole list ${live.page.listBuilds} times`,
        );
      if (trace) printTrace(trace);
      if (errors.length) console.log(`page errors: ${errors.join('; ')}`);
    }
    const ok = figures.firstPaintMs <= 2000 && figures.framesOver200Ms === 0 && errors.length === 0;
    console.log(ok ? 'goals met (first paint ≤ 2 s, no frame over 200 ms)' : 'GOALS NOT MET');
    return ok ? 0 : 1;
  } finally {
    await browser?.close();
    await cluster.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
