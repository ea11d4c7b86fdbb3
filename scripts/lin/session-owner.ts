/**
 * One session owner of the sessions workload (scripts/lin/sessions.ts): it opens a session,
 * registers one ephemeral instance on it, and keeps the session alive as the SDK does: a
 * keepalive every ttl/4 or so, each through the next node in turn; one that gets no answer
 * (refused, timeout, 503/504) is retried at once on the next node, then with short backoff.
 * A second loop reads the instance (linearizable, any node) every ttl/2 or so. By its plan,
 * it closes the session after a while and opens a new one, or stalls once (sends nothing for
 * 1.25 TTL) and then goes on with the same session.
 *
 * Whatever tells it the session is gone (an expiry signal) ends that session's generation;
 * the owner then opens a new session and registers again, as the SDK does. Each generation
 * keeps its own record (confirmations, attempts, the first signal) for `judgeExpiry`, and
 * every request goes to the shared sessions log.
 */
import type { ClusterView } from './cluster-view.js';
import { HttpError, type Reply, request, sleep } from './http.js';
import type { Confirmation, ExpirySignal, SignalKind } from './session-judge.js';

export interface OwnerPlan {
  readonly ttlMs: number;
  /** In [0, 1): the first node, as in the workload's plans. */
  readonly r: number;
  /** In [0, 1): jitter of the pauses, cycled. */
  readonly jitter: readonly number[];
  /** Close each session this long after opening it and open a new one; null: keep it. */
  readonly rotateMs: number | null;
  /** Stall once per session after this many confirmed keepalives (1.25 TTL without sending); null: never. */
  readonly stallAfter: number | null;
}

/** How an owner paces itself for a TTL (see the module comment; `judgeExpiry` relies on the send gap). */
export function pacing(ttlMs: number): {
  intervalMs: number;
  attemptTimeoutMs: number;
  maxBackoffMs: number;
  maxSendGapMs: number;
  readEveryMs: number;
} {
  const intervalMs = Math.round(ttlMs / 4);
  const attemptTimeoutMs = Math.min(800, Math.max(400, Math.round(ttlMs / 5)));
  const maxBackoffMs = Math.min(intervalMs, 250);
  // Worst planned gap between two attempts: an attempt that times out, then a backoff of
  // at most 1.5 x maxBackoffMs; or 1.1 x the interval after an ok. Both stay below ttl/2.
  return {
    intervalMs,
    attemptTimeoutMs,
    maxBackoffMs,
    maxSendGapMs: Math.round(ttlMs / 2),
    readEveryMs: Math.round(ttlMs / 2),
  };
}

/** One line of the sessions log (saved next to the history when a run fails). */
export interface SessionEvent {
  readonly owner: number;
  readonly session: string;
  readonly op: 'open' | 'register' | 'keepalive' | 'read' | 'final-keepalive' | 'final-read' | 'close' | 'stall';
  readonly node: string;
  readonly sent: number;
  readonly answered: number;
  /** `ok`, `refused`, `timeout`, `lost`, or `<status> <code>`; reads: `present`, `missing`, `suspect`. */
  readonly outcome: string;
}

export interface Generation {
  readonly n: number;
  readonly id: string;
  readonly service: string;
  readonly confirmations: Confirmation[];
  readonly sends: number[];
  openedAt: number | null;
  registered: boolean;
  /** The owner has started closing it: reads from then on may see it gone. */
  closing: boolean;
  closed: boolean;
  stalled: boolean;
  signal: ExpirySignal | null;
  /** Ends this generation's loops (a signal, or the owner stops). */
  readonly ended: AbortController;
}

const MAX_GENERATIONS = 5;

/** What the owners of one run share. */
export interface OwnerShared {
  readonly view: ClusterView;
  readonly ns: string;
  /** ms on the run's clock. */
  readonly now: () => number;
  readonly events: SessionEvent[];
  readonly unexpected: Record<string, number>;
  readonly counts: { ok: number; failed: number };
}

export class SessionOwner {
  readonly generations: Generation[] = [];
  private seq = 0;
  private turn = 0;
  private jitterAt = 0;
  private readonly pace: ReturnType<typeof pacing>;
  private readonly clientId: string;

  constructor(
    readonly index: number,
    readonly plan: OwnerPlan,
    private readonly s: OwnerShared,
    private readonly stop: AbortSignal,
  ) {
    this.pace = pacing(plan.ttlMs);
    this.clientId = `${s.ns}-o${index}`;
  }

  get current(): Generation | undefined {
    return this.generations.at(-1);
  }

  /** Opens generations and keeps each alive until `stop`; `firstReady` runs once the first is registered (or given up on). */
  async run(firstReady: () => void): Promise<void> {
    try {
      while (!this.stop.aborted && this.generations.length < MAX_GENERATIONS) {
        const g = await this.open();
        if (g === null) break;
        await Promise.all([this.keepalives(g), this.registerAndRead(g, firstReady)]);
      }
    } finally {
      firstReady();
    }
  }

  private jitter(): number {
    const j = this.plan.jitter;
    return j[this.jitterAt++ % j.length] ?? 0.5;
  }

  private async open(): Promise<Generation | null> {
    const n = this.generations.length + 1;
    const g: Generation = {
      n,
      id: `${this.s.ns}-o${this.index}-g${n}`,
      service: `o${this.index}-g${n}`,
      confirmations: [],
      sends: [],
      openedAt: null,
      registered: false,
      closing: false,
      closed: false,
      stalled: false,
      signal: null,
      ended: new AbortController(),
    };
    const seq = String(++this.seq);
    const headers = { 'x-rollcall-session-id': g.id, 'x-rollcall-client-id': this.clientId, 'x-rollcall-seq': seq };
    const first = this.s.now();
    for (let attempt = 0; !this.stop.aborted; attempt++) {
      const res = await this.send(g, 'open', 'POST', '/v1/sessions', { ttlMs: this.plan.ttlMs }, headers, attempt);
      if (res !== null && (res.reply.status === 201 || res.reply.body?.error?.code === 'SESSION_EXISTS')) {
        // Opened by this attempt or an earlier one: the TTL started no earlier than the first.
        g.confirmations.push({ sent: first, answered: res.answered });
        g.openedAt = res.answered;
        g.sends.push(first);
        this.generations.push(g);
        // The owner stopping ends the generation's loops.
        if (this.stop.aborted) g.ended.abort();
        else this.stop.addEventListener('abort', () => g.ended.abort(), { once: true });
        return g;
      }
      if (res !== null && !retryable(res.reply)) this.unexpected('open', res.reply);
      await this.backoff(attempt);
    }
    return null;
  }

  private async keepalives(g: Generation): Promise<void> {
    let confirmed = 0;
    while (!g.ended.signal.aborted) {
      let pause = this.pace.intervalMs * (0.9 + 0.2 * this.jitter());
      if (this.plan.stallAfter !== null && !g.stalled && confirmed >= this.plan.stallAfter) {
        g.stalled = true;
        pause = this.plan.ttlMs * 1.25;
        const t = this.s.now();
        this.s.events.push({
          owner: this.index,
          session: g.id,
          op: 'stall',
          node: '',
          sent: t,
          answered: t + pause,
          outcome: `no keepalive for ${Math.round(pause)} ms`,
        });
      }
      await sleep(pause, g.ended.signal);
      if (g.ended.signal.aborted) return;
      if (this.plan.rotateMs !== null && g.openedAt !== null && this.s.now() - g.openedAt >= this.plan.rotateMs)
        return this.close(g);
      if ((await this.keepalive(g, 'keepalive')) === 'ok') confirmed++;
    }
  }

  /** Closes the session (retried until answered), which ends the generation; the owner then opens the next. */
  private async close(g: Generation): Promise<void> {
    g.closing = true;
    const headers = { 'x-rollcall-client-id': this.clientId, 'x-rollcall-seq': String(++this.seq) };
    for (let attempt = 0; !this.stop.aborted; attempt++) {
      const sent = this.s.now();
      const res = await this.send(
        g,
        'close',
        'DELETE',
        `/v1/sessions/${encodeURIComponent(g.id)}`,
        undefined,
        headers,
        this.turn + attempt,
      );
      if (res !== null && res.reply.status === 200) break;
      if (res !== null && res.reply.status === 404 && res.reply.body?.error?.code === 'SESSION_NOT_FOUND') {
        // A retry after an attempt that went through is answered from the deduplication table, so this is the session gone.
        this.signal(g, 'close-not-found', res.node, sent, res.answered, '404 SESSION_NOT_FOUND');
        break;
      }
      if (res !== null && !retryable(res.reply)) this.unexpected('close', res.reply);
      if (attempt > 0) await this.backoff(attempt);
    }
    g.closed = true;
    g.ended.abort();
  }

  /** One keepalive, retried through the nodes until it has an answer (or the generation ends). */
  async keepalive(
    g: Generation,
    op: 'keepalive' | 'final-keepalive',
    deadline = Infinity,
  ): Promise<'ok' | 'gone' | 'none'> {
    const turn = this.turn++;
    for (let attempt = 0; !g.ended.signal.aborted && Date.now() < deadline; attempt++) {
      const sent = this.s.now();
      g.sends.push(sent);
      const res = await this.send(
        g,
        op,
        'PUT',
        `/v1/sessions/${encodeURIComponent(g.id)}/keepalive`,
        undefined,
        {},
        turn + attempt,
      );
      if (res !== null) {
        const { reply, answered, node } = res;
        if (reply.status === 200 && reply.body?.ok === true) {
          if (reply.body.expiring === true) {
            this.signal(g, 'keepalive-expiring', node, sent, answered, 'ok with expiring: true');
            return 'gone';
          }
          g.confirmations.push({ sent, answered });
          this.s.counts.ok++;
          return 'ok';
        }
        if (reply.status === 404 && reply.body?.error?.code === 'SESSION_NOT_FOUND') {
          this.signal(
            g,
            op === 'final-keepalive' ? 'final-keepalive-not-found' : 'keepalive-not-found',
            node,
            sent,
            answered,
            '404 SESSION_NOT_FOUND',
          );
          return 'gone';
        }
        if (!retryable(reply)) this.unexpected(op, reply);
      }
      this.s.counts.failed++;
      // As the SDK: at once on the next node, then with short backoff.
      if (attempt > 0) await this.backoff(attempt);
    }
    return 'none';
  }

  private async registerAndRead(g: Generation, registered: () => void): Promise<void> {
    const body = {
      address: `10.88.0.${this.index + 1}`,
      port: 9000 + g.n,
      sessionId: g.id,
      metadata: { owner: String(this.index) },
    };
    const headers = { 'x-rollcall-client-id': this.clientId, 'x-rollcall-seq': String(++this.seq) };
    for (let attempt = 0; !g.ended.signal.aborted && !g.registered; attempt++) {
      const sent = this.s.now();
      const res = await this.send(g, 'register', 'PUT', this.instancePath(g), body, headers, attempt);
      if (res?.reply.status === 200) g.registered = true;
      else if (res?.reply.status === 404 && res.reply.body?.error?.code === 'SESSION_NOT_FOUND') {
        this.signal(g, 'register-not-found', res.node, sent, res.answered, '404 SESSION_NOT_FOUND');
      } else {
        if (res !== null && !retryable(res.reply)) this.unexpected('register', res.reply);
        await this.backoff(attempt);
      }
    }
    registered();
    while (!g.ended.signal.aborted) {
      await sleep(this.pace.readEveryMs * (0.8 + 0.4 * this.jitter()), g.ended.signal);
      if (g.ended.signal.aborted) return;
      await this.read(g, 'read', undefined);
    }
  }

  /** Reads the instance (linearizable); at `node`, or at the next node in turn. True when it got an answer. */
  async read(g: Generation, op: 'read' | 'final-read', node: string | undefined): Promise<boolean> {
    const sent = this.s.now();
    const res = await this.send(g, op, 'GET', this.instancePath(g), undefined, {}, this.turn++, node, 1000);
    if (res === null) return false;
    const { reply, answered } = res;
    const final = op === 'final-read';
    if (reply.status === 404 && reply.body?.error?.code === 'INSTANCE_NOT_FOUND') {
      this.signal(
        g,
        final ? 'final-instance-missing' : 'instance-missing',
        res.node,
        sent,
        answered,
        '404 INSTANCE_NOT_FOUND',
      );
      return true;
    }
    if (reply.status === 200 && reply.body?.instance) {
      if (reply.body.instance.health === 'suspect')
        this.signal(g, 'instance-suspect', res.node, sent, answered, 'health suspect (expiry protection holds it)');
      return true;
    }
    if (!retryable(reply)) this.unexpected(op, reply);
    return false;
  }

  private instancePath(g: Generation): string {
    return `/v1/namespaces/${encodeURIComponent(`${this.s.ns}`)}/services/${g.service}/instances/i`;
  }

  /** Records the first signal of a generation and ends it (the owner then opens a new one). */
  private signal(g: Generation, kind: SignalKind, node: string, sent: number, answered: number, detail: string): void {
    // Once the owner is closing the session, only the close's own answer says anything.
    if (g.closing && kind !== 'close-not-found') return;
    if (g.signal === null) g.signal = { kind, node, sent, answered, detail };
    g.ended.abort();
  }

  /** One HTTP attempt; null when it got no answer (refused, timeout, lost). Logged either way. */
  private async send(
    g: Generation,
    op: SessionEvent['op'],
    method: string,
    path: string,
    body: unknown,
    headers: Record<string, string>,
    attempt: number,
    at?: string,
    timeoutMs = this.pace.attemptTimeoutMs,
  ): Promise<{ reply: Reply; answered: number; node: string } | null> {
    const node = at ?? this.s.view.pick('any', this.plan.r, attempt).id;
    const sent = this.s.now();
    let reply: Reply;
    try {
      reply = await request(method, `${this.s.view.url(node)}${path}`, body, headers, timeoutMs);
    } catch (err) {
      if (!(err instanceof HttpError)) throw err;
      this.s.events.push({
        owner: this.index,
        session: g.id,
        op,
        node,
        sent,
        answered: this.s.now(),
        outcome: err.kind,
      });
      return null;
    }
    const answered = this.s.now();
    this.s.view.observe(reply.headers);
    const outcome =
      reply.status === 200 || reply.status === 201 ? 'ok' : `${reply.status} ${reply.body?.error?.code ?? ''}`.trim();
    const shown =
      op.endsWith('read') && reply.status === 200
        ? reply.body?.instance?.health === 'suspect'
          ? 'suspect'
          : 'present'
        : outcome;
    const expiring = reply.status === 200 && reply.body?.expiring === true ? ' expiring' : '';
    this.s.events.push({ owner: this.index, session: g.id, op, node, sent, answered, outcome: `${shown}${expiring}` });
    return { reply, answered, node };
  }

  private async backoff(attempt: number): Promise<void> {
    await sleep(this.pace.maxBackoffMs * (0.5 + this.jitter()) * Math.min(1, attempt / 2 + 0.5), this.stop);
  }

  private unexpected(op: string, reply: Reply): void {
    const label = `${op} ${reply.status} ${reply.body?.error?.code ?? ''}`.trim();
    this.s.unexpected[label] = (this.s.unexpected[label] ?? 0) + 1;
  }
}

/** 503 and 504 say "not now, retry"; anything else is an answer. */
export function retryable(reply: Reply): boolean {
  return reply.status === 503 || reply.status === 504;
}
