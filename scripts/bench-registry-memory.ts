/**
 * `npm run bench:registry-memory`: the registry alone in one process (issue 21's RSS and
 * restart goals). Registers N instances through `applyBatch` into a node database's
 * state-machine sublevel, as a node does, and reports:
 *   - heap after a full GC with the registry filled (bytes per instance above the empty heap);
 *   - the same with the listing index built, then with every instance's JSON encoded once (what a
 *     node holds after its instances have been listed: src/server/listing);
 *   - `Registry.open` of those records from LevelDB: wall and CPU time, and heap after it.
 *
 *   npm run bench:registry-memory -- [--instances 100000] [--services 10] [--labels 10]
 *     [--payload BYTES] [--opens 3] [--dir DIR (kept: a second run with the same DIR only opens)]
 *
 * `--labels 10` gives the ~525-byte instances of `bench:listing` (zone, version and 10
 * labels of metadata); `--labels 0` the scale bench's ~100-byte ones; `--payload 256` the
 * restart workload of `npm run bench` (one metadata entry of 256 bytes, the same in all).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { smStore, writeStateOps } from '../src/node/state-store.js';
import type { Command } from '../src/registry/index.js';
import { Registry } from '../src/registry/index.js';
import { InstanceIndex } from '../src/server/listing/instance-index.js';
import { instanceJson } from '../src/server/listing/writers.js';
import { openNodeDatabase } from '../src/storage/index.js';
import { payloadOf } from './bench/systems.js';

const gc = (globalThis as { gc?: () => void }).gc;

function heapMb(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

function register(i: number, services: number, labels: number, payload: string | undefined): Command {
  // `--payload`: the shape of `npm run bench`'s restart workload (scripts/bench/systems.ts).
  const metadata: Record<string, string> =
    payload !== undefined ? { p: payload } : { zone: `zone-${i % 4}`, version: '1.4.2' };
  for (let k = 0; k < labels && payload === undefined; k++) metadata[`label-${k}`] = `value-${k}-${i % 97}`;
  return {
    type: 'register',
    namespace: 'bench',
    service: `svc-${i % services}`,
    id: `i-${i}`,
    cluster: i % 3 === 0 ? 'vip' : 'default',
    address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    port: 8000 + (i % 1000),
    tags: ['v1', 'blue'],
    metadata,
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      instances: { type: 'string', default: '100000' },
      services: { type: 'string', default: '10' },
      labels: { type: 'string', default: '10' },
      opens: { type: 'string', default: '3' },
      dir: { type: 'string' },
      payload: { type: 'string' },
    },
  });
  if (gc === undefined) throw new Error('run with node --expose-gc (the npm script does)');
  const n = Number(values.instances);
  const services = Number(values.services);
  const labels = Number(values.labels);
  const payload = values.payload === undefined ? undefined : payloadOf(Number(values.payload));
  const dir = values.dir ?? (await mkdtemp(join(tmpdir(), 'rollcall-regmem-')));
  const fill = values.dir === undefined || !existsSync(join(dir, 'CURRENT'));
  const base = heapMb();
  const out: Record<string, string | number> = { instances: n, services, labels };

  // In a function of its own: an async function's locals outlive its awaits, and would keep the filled registry.
  if (fill) await fillRegistry(dir, n, services, labels, payload, base, out);

  const opens: { wall: number; cpu: number; heap: number }[] = [];
  for (let k = 0; k < Number(values.opens); k++) opens.push(await openOnce(dir, base));
  out['Registry.open wall, ms (each)'] = opens.map((x) => Math.round(x.wall)).join(' / ');
  out['Registry.open CPU, ms (each)'] = opens.map((x) => Math.round(x.cpu)).join(' / ');
  out['heap after the open, MB (each)'] = opens.map((x) => round(x.heap)).join(' / ');
  out['… bytes per instance '] = Math.round((Math.min(...opens.map((x) => x.heap)) * 2 ** 20) / n);
  for (const [k, v] of Object.entries(out)) console.log(`${k.padEnd(44)} ${v}`);
  if (values.dir === undefined) await rm(dir, { recursive: true, force: true });
}

/** One Registry.open of the database in `dir`: wall and CPU ms, heap MB above `base` with the registry held. */
async function openOnce(dir: string, base: number): Promise<{ wall: number; cpu: number; heap: number }> {
  const db = await openNodeDatabase(dir);
  heapMb();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const registry = await Registry.open(smStore(db));
  const wall = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const heap = heapMb() - base;
  if (registry.revision < 0) throw new Error('unreachable: keeps the registry alive until measured');
  await db.db.close();
  return { wall, cpu: (cpu.user + cpu.system) / 1000, heap };
}

/** Registers the instances into a new database in `dir` and reports the heap. */
async function fillRegistry(
  dir: string,
  n: number,
  services: number,
  labels: number,
  payload: string | undefined,
  base: number,
  out: Record<string, string | number>,
): Promise<void> {
  const db = await openNodeDatabase(dir);
  const registry = await Registry.open(smStore(db));
  const BATCH = 500;
  const cpu0 = process.cpuUsage();
  for (let at = 0; at < n; at += BATCH) {
    const entries = [];
    for (let i = at; i < Math.min(n, at + BATCH); i++)
      entries.push({
        index: registry.appliedIndex + 1 + (i - at),
        term: 1,
        command: register(i, services, labels, payload),
      });
    const { ops } = registry.applyBatch(entries);
    await writeStateOps(db, ops);
  }
  const cpu = process.cpuUsage(cpu0);
  out['writes: CPU, ms (applyBatch and LevelDB)'] = Math.round((cpu.user + cpu.system) / 1000);
  const filled = heapMb();
  out['heap after the writes, MB'] = round(filled - base);
  out['… bytes per instance'] = Math.round(((filled - base) * 2 ** 20) / n);
  const index = InstanceIndex.acquire(registry);
  const indexed = heapMb();
  out['… with the listing index, MB'] = round(indexed - base);
  out['… … bytes per instance'] = Math.round(((indexed - base) * 2 ** 20) / n);
  for (const s of registry.listServices())
    for (const i of registry.listInstances(s.namespace, s.service, { includeDisabled: true }).instances)
      instanceJson(i);
  const listed = heapMb();
  out['… and every instance JSON, MB'] = round(listed - base);
  out['… … bytes per instance '] = Math.round(((listed - base) * 2 ** 20) / n);
  index.release();
  await db.db.close();
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
