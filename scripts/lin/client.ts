/**
 * One logical client of the workload: a history process with its own exactly-once client
 * id and sequence numbers, at most one operation in flight. Each call records its invoke
 * and completion in the registry model's format (docs/linearizability.md):
 *
 *   register   PUT    .../instances/:id                  ok value: the new version
 *   unregister DELETE .../instances/:id                  ok value: whether it existed
 *   update     PATCH  .../instances/:id  If-Match: v     ok value: the new version; fail: 412/404
 *   get        GET    .../instances/:id[?consistency=serializable]   ok value: the instance or null
 *
 * Writes that end without a definite answer (timeout, lost connection, 503, 504) are
 * retried with the same client id and seq, on the next node, until the write's deadline;
 * then they complete as `info`. Reads are not retried: a read that fails or times out
 * constrains nothing.
 */
import type { ClusterView, TargetKind } from './cluster-view.js';
import { HttpError, type Reply, request, sleep } from './http.js';
import type { HistoryRecorder, OpHandle } from './recorder.js';

/** What the registry model compares: the written fields of an instance. */
export interface InstanceFields {
  readonly address: string;
  readonly port: number;
  readonly weight: number;
  readonly metadata: Readonly<Record<string, string>>;
}

export interface KeyRef {
  readonly ns: string;
  readonly svc: string;
  readonly id: string;
}

export function historyKey(k: KeyRef): string {
  return `${k.ns}/${k.svc}/${k.id}`;
}

export interface ClientOptions {
  /** Per-attempt HTTP timeout (default 2000 ms). */
  readonly attemptTimeoutMs?: number;
  /** A write gives up (info) after this long (default 6000 ms). */
  readonly writeDeadlineMs?: number;
  /** Ends retries early (the run is over); the write then completes as info. */
  readonly signal?: AbortSignal;
  /**
   * Record the version a write's answer shows even when the answer shows another write's
   * instance (what a naive client would believe). Off by default: see `versionOf`.
   */
  readonly trustWriteReplies?: boolean;
}

/** Things a client noticed that are not linearizability verdicts but deserve a look. */
export interface ClientNotes {
  /** Write answers whose instance is not the one this write produced (a later state). */
  laterStateReplies: number;
  /** The first few of them: what was written, and what the answer showed instead. */
  laterStateSamples: { key: string; f: string; wrote: string; answered: { w: unknown; version: unknown } | null }[];
  /** Unexpected statuses, by "METHOD status code". */
  unexpected: Record<string, number>;
}

export class LinClient {
  private seq = 0;
  /** The version this client last saw per key (for compare-and-set). */
  readonly known = new Map<string, number>();
  readonly notes: ClientNotes = { laterStateReplies: 0, laterStateSamples: [], unexpected: {} };
  private readonly attemptTimeoutMs: number;
  private readonly writeDeadlineMs: number;

  constructor(
    readonly process: number,
    readonly clientId: string,
    private readonly view: ClusterView,
    private readonly recorder: HistoryRecorder,
    private readonly options: ClientOptions = {},
  ) {
    this.attemptTimeoutMs = options.attemptTimeoutMs ?? 2000;
    this.writeDeadlineMs = options.writeDeadlineMs ?? 6000;
  }

  async register(k: KeyRef, fields: InstanceFields, target: TargetKind, r: number): Promise<void> {
    const h = this.recorder.invoke(this.process, 'register', historyKey(k), fields);
    const res = await this.write(h, 'PUT', k, fields, {}, target, r);
    if (res === null) return;
    if (res.status === 200) return this.recorder.complete(h, 'ok', this.versionOf(k, 'register', res, fields));
    this.unexpected(h, 'PUT', res);
  }

  async unregister(k: KeyRef, target: TargetKind, r: number): Promise<void> {
    const h = this.recorder.invoke(this.process, 'unregister', historyKey(k), null);
    const res = await this.write(h, 'DELETE', k, undefined, {}, target, r);
    if (res === null) return;
    if (res.status === 200 && typeof res.body?.deleted === 'boolean') {
      this.known.delete(historyKey(k));
      return this.recorder.complete(h, 'ok', res.body.deleted);
    }
    this.unexpected(h, 'DELETE', res);
  }

  /** Compare-and-set: `expected` is the version the change is based on. */
  async update(k: KeyRef, expected: number, fields: InstanceFields, target: TargetKind, r: number): Promise<void> {
    const h = this.recorder.invoke(this.process, 'update', historyKey(k), { expected, instance: fields });
    const patch = { weight: fields.weight, metadata: fields.metadata };
    const res = await this.write(h, 'PATCH', k, patch, { 'if-match': String(expected) }, target, r);
    if (res === null) return;
    if (res.status === 200) return this.recorder.complete(h, 'ok', this.versionOf(k, 'update', res, fields));
    const code = res.body?.error?.code;
    if (res.status === 412 && code === 'VERSION_MISMATCH') {
      if (typeof res.body.error.currentVersion === 'number')
        this.known.set(historyKey(k), res.body.error.currentVersion);
      return this.recorder.complete(h, 'fail');
    }
    if (res.status === 404 && code === 'INSTANCE_NOT_FOUND') {
      this.known.delete(historyKey(k));
      return this.recorder.complete(h, 'fail');
    }
    this.unexpected(h, 'PATCH', res);
  }

  async get(
    k: KeyRef,
    target: TargetKind | { readonly node: string },
    r: number,
    consistency: 'linearizable' | 'serializable' = 'linearizable',
  ): Promise<void> {
    const h = this.recorder.invoke(this.process, 'get', historyKey(k), null);
    const node = typeof target === 'string' ? this.view.pick(target, r) : this.view.target(target.node);
    const query = consistency === 'serializable' ? '?consistency=serializable' : '';
    let res: Reply;
    try {
      res = await request('GET', `${node.url}${instancePath(k)}${query}`, undefined, {}, this.attemptTimeoutMs);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      // Refused: never served. Otherwise unknown; either way an unanswered read constrains nothing.
      return this.recorder.complete(h, err.kind === 'refused' ? 'fail' : 'info');
    }
    this.view.observe(res.headers);
    if (res.status === 200 && res.body?.instance) {
      const i = res.body.instance as Record<string, unknown>;
      const value = { address: i.address, port: i.port, weight: i.weight, metadata: i.metadata, version: i.version };
      if (typeof i.version === 'number') this.known.set(historyKey(k), i.version);
      return this.recorder.complete(h, 'ok', value);
    }
    if (res.status === 404 && res.body?.error?.code === 'INSTANCE_NOT_FOUND') {
      this.known.delete(historyKey(k));
      return this.recorder.complete(h, 'ok', null);
    }
    if (res.status === 503 || res.status === 504) return this.recorder.complete(h, 'fail');
    this.unexpected(h, 'GET', res);
  }

  /**
   * Sends a write until it has a definite answer (any status but 503/504) or its deadline
   * passes (then records info and returns null).
   */
  private async write(
    h: OpHandle,
    method: string,
    k: KeyRef,
    body: unknown,
    headers: Record<string, string>,
    target: TargetKind,
    r: number,
  ): Promise<Reply | null> {
    const seq = ++this.seq;
    const all = { ...headers, 'x-rollcall-client-id': this.clientId, 'x-rollcall-seq': String(seq) };
    const deadline = Date.now() + this.writeDeadlineMs;
    for (let attempt = 0; ; attempt++) {
      const left = deadline - Date.now();
      if (left <= 0 || (this.options.signal?.aborted && attempt > 0)) break;
      const node = this.view.pick(target, r, attempt);
      try {
        const res = await request(
          method,
          `${node.url}${instancePath(k)}`,
          body,
          all,
          Math.min(this.attemptTimeoutMs, left),
        );
        this.view.observe(res.headers);
        if (res.status !== 503 && res.status !== 504) return res;
      } catch (err) {
        if (!(err instanceof HttpError)) throw err;
      }
      await sleep(Math.min(50 * (attempt + 1), 250), this.options.signal);
    }
    this.recorder.complete(h, 'info');
    return null;
  }

  /**
   * The version a register/update produced. The answer carries the instance as the node
   * holds it when it answers, which may already include later writes (or none, if a later
   * unregister removed it). Values are unique per write, so the instance is this write's
   * own result exactly when its fields are the ones written; otherwise the version is
   * reported as not observed (null) and the reply counted in `notes.laterStateReplies`.
   */
  private versionOf(k: KeyRef, f: string, res: Reply, written: InstanceFields): number | null {
    const i = res.body?.instance as Record<string, unknown> | null | undefined;
    if (i && typeof i.version === 'number') this.known.set(historyKey(k), i.version);
    if (
      i &&
      i.address === written.address &&
      i.port === written.port &&
      i.weight === written.weight &&
      sameStrings(i.metadata, written.metadata)
    ) {
      return i.version as number;
    }
    this.notes.laterStateReplies++;
    if (this.notes.laterStateSamples.length < 5) {
      const answered = i ? { w: (i.metadata as Record<string, unknown> | undefined)?.w, version: i.version } : null;
      this.notes.laterStateSamples.push({ key: historyKey(k), f, wrote: written.metadata.w ?? '', answered });
    }
    return this.options.trustWriteReplies && i && typeof i.version === 'number' ? i.version : null;
  }

  private unexpected(h: OpHandle, method: string, res: Reply): void {
    const label = `${method} ${res.status} ${res.body?.error?.code ?? ''}`.trim();
    this.notes.unexpected[label] = (this.notes.unexpected[label] ?? 0) + 1;
    // A refusal we did not plan for: its effect is unknown as far as the history is concerned.
    this.recorder.complete(h, 'info');
  }
}

function instancePath(k: KeyRef): string {
  return `/v1/namespaces/${encodeURIComponent(k.ns)}/services/${encodeURIComponent(k.svc)}/instances/${encodeURIComponent(k.id)}`;
}

function sameStrings(a: unknown, b: Readonly<Record<string, string>>): boolean {
  if (typeof a !== 'object' || a === null) return false;
  const ak = Object.keys(a);
  const bk = Object.keys(b);
  return ak.length === bk.length && bk.every((key) => (a as Record<string, unknown>)[key] === b[key]);
}
