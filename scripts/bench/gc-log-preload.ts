/**
 * Every garbage collection of a node process, for processes whose command line we do not
 * control (loaded like cpu-prof-preload.ts):
 *   NODE_OPTIONS="--import file:///…/dist/scripts/bench/gc-log-preload.js" ROLLCALL_GC_LOG_DIR=DIR
 * A process started with `--id ID` appends `<epoch ms> <kind> <duration ms>` lines to
 * DIR/gc-ID-<pid>.log (kind as perf_hooks gives it: 1 minor, 4 major, 8 incremental,
 * 16 weak callbacks), flushed every second and at exit. Other processes log nothing.
 */
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { PerformanceObserver, performance } from 'node:perf_hooks';

const dir = process.env.ROLLCALL_GC_LOG_DIR;
const idAt = process.argv.indexOf('--id');
const id = idAt > 0 ? process.argv[idAt + 1] : undefined;
if (dir && id !== undefined) {
  const file = path.join(dir, `gc-${id}-${process.pid}.log`);
  let lines: string[] = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0;
      lines.push(`${(performance.timeOrigin + e.startTime).toFixed(1)} ${kind} ${e.duration.toFixed(2)}\n`);
    }
  }).observe({ entryTypes: ['gc'] });
  const flush = () => {
    if (lines.length === 0) return;
    appendFileSync(file, lines.join(''));
    lines = [];
  };
  setInterval(flush, 1000).unref();
  process.on('exit', flush);
}
