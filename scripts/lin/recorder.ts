/**
 * The history recorder: every invoke and every completion of the workload's clients, in
 * the order they happen, as Jepsen-style events (docs/linearizability.md, "History
 * format"). Line order is real-time order, because Node runs one event at a time: an
 * invoke is recorded just before its request leaves, a completion just after its answer
 * arrives. `time` is monotonic (process.hrtime.bigint), in nanoseconds since the recorder
 * was created.
 *
 * A request whose outcome is unknown (timed out, connection lost, 503/504 after it was
 * sent) completes as `info`; one that never completes (the run ended first) is left
 * without a completion, which the checker reads the same way.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { HistoryEvent } from '../../src/lincheck/index.js';

export type Completion = 'ok' | 'fail' | 'info';

/** A pending operation: complete it exactly once. */
export interface OpHandle {
  readonly process: number;
  readonly f: string;
  readonly key: string;
  /** Index of the invoke event. */
  readonly index: number;
}

export class HistoryRecorder {
  readonly events: HistoryEvent[] = [];
  private readonly t0 = process.hrtime.bigint();
  private readonly pending = new Map<number, OpHandle>();

  /** Nanoseconds since the recorder was created (the `time` of the next event). */
  now(): number {
    return Number(process.hrtime.bigint() - this.t0);
  }

  invoke(process: number, f: string, key: string, value: unknown): OpHandle {
    if (this.pending.has(process)) throw new Error(`recorder: process ${process} already has an operation in flight`);
    const h: OpHandle = { process, f, key, index: this.events.length };
    this.events.push({ process, type: 'invoke', f, key, value, time: this.now() });
    this.pending.set(process, h);
    return h;
  }

  complete(h: OpHandle, type: Completion, value: unknown = null): void {
    if (this.pending.get(h.process) !== h)
      throw new Error(`recorder: operation of process ${h.process} completed twice or never invoked`);
    this.pending.delete(h.process);
    this.events.push({ process: h.process, type, f: h.f, key: h.key, value, time: this.now() });
  }

  /** Operations still waiting for a completion. */
  get inFlight(): number {
    return this.pending.size;
  }

  toJsonLines(): string {
    return this.events.map((e) => JSON.stringify(e)).join('\n') + (this.events.length > 0 ? '\n' : '');
  }

  async save(file: string): Promise<string> {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, this.toJsonLines());
    return file;
  }
}

/** Counts by completion type (an invoke without completion counts as `pending`). */
export function countOutcomes(events: readonly HistoryEvent[]): {
  ops: number;
  ok: number;
  fail: number;
  info: number;
  pending: number;
} {
  const c = { ops: 0, ok: 0, fail: 0, info: 0, pending: 0 };
  for (const e of events) {
    if (e.type === 'invoke') c.ops++;
    else c[e.type]++;
  }
  c.pending = c.ops - c.ok - c.fail - c.info;
  return c;
}
