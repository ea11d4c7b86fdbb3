/**
 * Reads that wait, woken by the registry's history notices (which run synchronously inside
 * applyBatch, after memory holds the new state):
 *
 * - `RevisionWaiters`: until this node has applied a revision (`?minRevision=N`).
 * - `ServiceWaiters`: until a change touches one service (blocking queries,
 *   `?index=N&wait=30s`). Waiters are indexed by service, so a change to one service never
 *   wakes the waiters of another. A `reset` (snapshot installed) wakes everyone: their
 *   state may have changed without events.
 */
import type { HistoryListener, RegistryEvent } from '../registry/index.js';

export interface NoticeSource {
  readonly revision: number;
  subscribe(listener: HistoryListener): () => void;
}

interface RevisionWaiter {
  readonly target: number;
  readonly resolve: (reached: boolean) => void;
  timer: NodeJS.Timeout | null;
}

export class RevisionWaiters {
  private waiters: RevisionWaiter[] = [];
  private readonly unsubscribe: () => void;
  private closed = false;

  constructor(private readonly source: NoticeSource) {
    this.unsubscribe = source.subscribe((n) => this.release(n.revision));
  }

  get size(): number {
    return this.waiters.length;
  }

  /** Resolves true once revision `target` is applied here, false if `timeoutMs` passes (or on close). */
  wait(target: number, timeoutMs: number): Promise<boolean> {
    if (this.source.revision >= target) return Promise.resolve(true);
    if (this.closed || timeoutMs <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const w: RevisionWaiter = { target, resolve, timer: null };
      w.timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        resolve(false);
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
    const all = this.waiters;
    this.waiters = [];
    for (const w of all) {
      if (w.timer) clearTimeout(w.timer);
      w.resolve(false);
    }
  }

  private release(revision: number): void {
    if (this.waiters.length === 0) return;
    const ready: RevisionWaiter[] = [];
    const rest: RevisionWaiter[] = [];
    for (const w of this.waiters) (w.target <= revision ? ready : rest).push(w);
    if (ready.length === 0) return;
    this.waiters = rest;
    for (const w of ready) {
      if (w.timer) clearTimeout(w.timer);
      w.resolve(true);
    }
  }
}

interface ServiceWaiter {
  readonly key: string;
  readonly resolve: (changed: boolean) => void;
  timer: NodeJS.Timeout | null;
}

export class ServiceWaiters {
  private readonly byService = new Map<string, Set<ServiceWaiter>>();
  private readonly unsubscribe: () => void;
  private count = 0;
  private closed = false;

  constructor(source: NoticeSource) {
    this.unsubscribe = source.subscribe((n) => (n.kind === 'reset' ? this.wakeAll() : this.wakeFor(n.events)));
  }

  get size(): number {
    return this.count;
  }

  /** Resolves true when a change touches namespace/service, false when `timeoutMs` passes, `signal` aborts, or on close. */
  wait(namespace: string, service: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    if (this.closed || timeoutMs <= 0 || signal?.aborted === true) return Promise.resolve(false);
    const key = `${namespace}/${service}`;
    return new Promise((resolve) => {
      const w: ServiceWaiter = { key, resolve, timer: null };
      let set = this.byService.get(key);
      if (set === undefined) {
        set = new Set();
        this.byService.set(key, set);
      }
      set.add(w);
      this.count++;
      w.timer = setTimeout(() => this.settle(w, false), timeoutMs);
      signal?.addEventListener('abort', () => this.settle(w, false), { once: true });
    });
  }

  close(): void {
    this.closed = true;
    this.unsubscribe();
    this.wakeAll();
  }

  private wakeFor(events: readonly RegistryEvent[]): void {
    if (this.count === 0 || events.length === 0) return;
    const touched = new Set<string>();
    for (const e of events) touched.add(`${e.instance.namespace}/${e.instance.service}`);
    for (const key of touched) {
      const set = this.byService.get(key);
      if (set !== undefined) for (const w of [...set]) this.settle(w, true);
    }
  }

  private wakeAll(): void {
    for (const set of [...this.byService.values()]) for (const w of [...set]) this.settle(w, true);
  }

  private settle(w: ServiceWaiter, changed: boolean): void {
    const set = this.byService.get(w.key);
    if (set === undefined || !set.delete(w)) return;
    if (set.size === 0) this.byService.delete(w.key);
    this.count--;
    if (w.timer) clearTimeout(w.timer);
    w.resolve(changed);
  }
}
