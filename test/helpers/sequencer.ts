/**
 * The order test files start in. vitest runs the longest first by the durations it cached
 * from the last run; with none cached (a fresh clone, CI) it runs the largest files first,
 * and a short file that runs a cluster for a minute (test/lin-faults.test.ts) could start
 * last and hold the run open on one worker while the other idles. Here, while any duration
 * is unknown, the files that start real processes (node clusters, the CLI, chromium) run
 * first, in vitest's own order among them; the unit tests then fill both workers to the end.
 */
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/** What a test file that starts processes mentions (directly or through a helper that does). */
const STARTS_PROCESSES = /\b(LocalCluster|startLinCluster)\b|\bspawn\(|\bexecFile|helpers\/(federation|chromium)\.js/;

export class ProcessesFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const sorted = await super.sort(files);
    const cached = (f: TestSpecification) =>
      this.ctx.cache.getFileTestResults(`${f.project.name}:${relative(this.ctx.config.root, f.moduleId)}`);
    if (sorted.every((f) => cached(f) !== undefined)) return sorted;
    const startsProcesses = new Map(
      sorted.map((f) => [f, STARTS_PROCESSES.test(readFileSync(f.moduleId, 'utf8'))] as const),
    );
    // Array.prototype.sort is stable: vitest's order holds within each group.
    return sorted.sort((a, b) => Number(startsProcesses.get(b)) - Number(startsProcesses.get(a)));
  }
}
