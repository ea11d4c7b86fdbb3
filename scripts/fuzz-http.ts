/**
 * The property-based HTTP fuzzer against a real node (issue 22): generated requests (random
 * methods, paths from the route table, odd headers, bad and huge bodies, bad JSON, bad ids,
 * unicode) sent to a one-node cluster of real processes, checking 0 × 5xx, 0 crashes, every
 * error in the catalogue shape and no state change from refused requests (scripts/fuzz/).
 *
 *   npm run fuzz -- --requests 100000 --seed 7
 *   node dist/scripts/fuzz-http.js --requests 100000 --seed 7
 *
 * Options:
 *   --requests N     how many requests (default 10000)
 *   --seed S         the seed (default: random); the same seed sends the same requests
 *   --timeout-ms MS  longest wait for one answer (default 10000)
 *   --huge-bytes B   size of the huge bodies (default 10485760)
 *   --no-auth        run the node without bearer tokens
 *   --membership     also add members that do not exist (each removed at once; the node
 *                    must keep its leadership)
 *   --summary FILE   also write the summary there
 *
 * Progress goes to stderr, the summary (JSON) to stdout. Exit code 0 when every check
 * held, 1 when one failed (the summary lists the failures and the replay command), 2 for
 * bad arguments. SIGINT or SIGTERM stops the run, the node with it, and reports what was
 * sent. Needs a build (npm run build).
 */
import { randomInt } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { fuzzHttp } from './fuzz/run.js';

function positive(name: string, v: string | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) {
    process.stderr.write(`--${name}: expected a positive integer, got ${JSON.stringify(v)}\n`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        requests: { type: 'string' },
        seed: { type: 'string' },
        'timeout-ms': { type: 'string' },
        'huge-bytes': { type: 'string' },
        'no-auth': { type: 'boolean' },
        membership: { type: 'boolean' },
        summary: { type: 'string' },
      },
    }));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  const seed = values.seed === undefined ? randomInt(2 ** 31) : Number(values.seed);
  if (!Number.isSafeInteger(seed)) {
    process.stderr.write(`--seed: expected an integer, got ${JSON.stringify(values.seed)}\n`);
    process.exit(2);
  }
  const requests = positive('requests', values.requests, 10_000);
  process.stderr.write(`fuzz: ${requests} requests, seed ${seed}\n`);
  // Ctrl-C or SIGTERM: stop sending, stop the node, report what was sent.
  const stop = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => stop.abort());
  const report = await fuzzHttp({
    signal: stop.signal,
    seed,
    requests,
    timeoutMs: positive('timeout-ms', values['timeout-ms'], 10_000),
    hugeBytes: positive('huge-bytes', values['huge-bytes'], 10 * 1024 * 1024),
    auth: values['no-auth'] !== true,
    membership: values.membership === true,
    onProgress: (line) => process.stderr.write(`${line}\n`),
  });
  const text = JSON.stringify(report, null, 2);
  process.stdout.write(`${text}\n`);
  if (values.summary !== undefined) await writeFile(values.summary, `${text}\n`);
  if (report.failures.length > 0) {
    process.stderr.write(`fuzz: ${report.failures.length} failure(s); replay with: ${report.replay}\n`);
    process.exit(1);
  }
  const early = stop.signal.aborted ? ` (stopped early, of ${requests})` : '';
  process.stderr.write(
    `fuzz: ${report.requests} requests${early} in ${(report.durationMs / 1000).toFixed(1)} s, every check held\n`,
  );
}

await main();
