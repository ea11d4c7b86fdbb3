/**
 * `node --cpu-prof` for processes whose command line we do not control: Node 20 refuses
 * `--cpu-prof` in NODE_OPTIONS, but allows `--import`. Loaded with
 *   NODE_OPTIONS="--import file:///…/dist/scripts/bench/cpu-prof-preload.js" ROLLCALL_CPU_PROF_DIR=DIR
 * it starts the same V8 sampling profiler through the inspector and writes
 * DIR/CPU.<time>.<pid>.0.001.cpuprofile when the process exits (SIGTERM → clean exit).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import path from 'node:path';

const dir = process.env.ROLLCALL_CPU_PROF_DIR;
if (dir) {
  const session = new Session();
  session.connect();
  const intervalUs = Number(process.env.ROLLCALL_CPU_PROF_INTERVAL_US ?? 1000);
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: intervalUs });
  session.post('Profiler.start');
  let written = false;
  // A same-thread inspector session answers synchronously, so this works inside 'exit'.
  process.on('exit', () => {
    if (written) return;
    written = true;
    session.post('Profiler.stop', (err, res) => {
      if (err || !res) return;
      const file = path.join(dir, `CPU.${Date.now()}.${process.pid}.0.001.cpuprofile`);
      writeFileSync(file, JSON.stringify(res.profile));
    });
  });
}
