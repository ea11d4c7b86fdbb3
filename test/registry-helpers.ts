/** Shared fixtures for the registry tests: an in-memory sublevel and a log that hands out indexes. */

import { encode } from '../src/codec/index.js';
import type {
  AppliedEntry,
  BatchOp,
  Command,
  CommandResult,
  ConfState,
  RegistryEvent,
  SmStore,
} from '../src/registry/index.js';
import { META_CLUSTER_VERSION_KEY, Registry, STATE_MACHINE_VERSION } from '../src/registry/index.js';

/** A sorted in-memory key-value store with the scan the registry needs. */
export class MemorySm implements SmStore {
  readonly data = new Map<string, Uint8Array>();

  /**
   * Starts at the state-machine version this build implements, as a cluster of this build
   * runs once raised; `null` leaves the key out (cluster version 1: registry-version.test.ts).
   */
  constructor(clusterVersion: number | null = STATE_MACHINE_VERSION) {
    if (clusterVersion !== null) this.data.set(META_CLUSTER_VERSION_KEY, encode(clusterVersion));
  }

  /** Small batches, so a load crosses several of them. */
  async *batches(): AsyncGenerator<ReadonlyArray<readonly [string, Uint8Array]>> {
    const keys = [...this.data.keys()].sort();
    for (let i = 0; i < keys.length; i += 3) yield keys.slice(i, i + 3).map((k) => [k, this.data.get(k)!] as const);
  }

  write(ops: readonly BatchOp[]): void {
    for (const op of ops) {
      if (op.type === 'put') this.data.set(op.key, op.value);
      else this.data.delete(op.key);
    }
  }
}

/** Drives a registry like the node layer: contiguous indexes, a current term, ops written after each batch. */
export class Log {
  index: number;
  term: number;

  constructor(
    readonly registry: Registry,
    readonly sm: MemorySm,
    term = 1,
  ) {
    this.index = registry.appliedIndex;
    this.term = Math.max(term, registry.appliedTerm);
  }

  static async open(options: { maxClients?: number; historySize?: number } = {}): Promise<Log> {
    const sm = new MemorySm();
    return new Log(await Registry.open(sm, options), sm);
  }

  /** Applies one command as its own entry and returns its result and events. */
  apply(command: Command | Record<string, unknown>): {
    result: CommandResult;
    events: RegistryEvent[];
    ops: BatchOp[];
  } {
    const index = ++this.index;
    const out = this.registry.applyBatch([{ index, term: this.term, command: command as Command }]);
    this.sm.write(out.ops);
    const result = out.results.get(index);
    if (result === undefined) throw new Error('no result');
    return { result, events: out.events, ops: out.ops };
  }

  applyEntries(entries: readonly { command: Command | null; conf?: ConfState; term?: number }[]) {
    const batch: AppliedEntry[] = entries.map((e) => {
      const entry: { index: number; term: number; command: Command | null; conf?: ConfState } = {
        index: ++this.index,
        term: e.term ?? this.term,
        command: e.command,
      };
      if (e.conf !== undefined) entry.conf = e.conf;
      this.term = entry.term;
      return entry;
    });
    const out = this.registry.applyBatch(batch);
    this.sm.write(out.ops);
    return out;
  }

  /** Opens a second registry over the same storage, as a restart would. */
  async reopen(options: { maxClients?: number } = {}): Promise<Registry> {
    return Registry.open(this.sm, options);
  }
}

export function ok(result: CommandResult): Extract<CommandResult, { ok: true }> {
  if (!result.ok) throw new Error(`expected ok, got ${result.code}: ${result.message}`);
  return result;
}

export const inst = (id: string, extra: Record<string, unknown> = {}): Command =>
  ({
    type: 'register',
    namespace: 'prod',
    service: 'orders',
    id,
    address: '10.0.0.1',
    port: 8080,
    ...extra,
  }) as Command;

export const seed = (fallback: number): number => Number(process.env['SEED'] ?? fallback);
