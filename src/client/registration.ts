/**
 * A registered instance that the client keeps registered.
 *
 * Ephemeral (with `ttlMs`): the instance is bound to a session of its own, kept alive in the
 * background every ttl/3 (±10 % jitter, so a fleet started together does not keepalive in
 * step). A keepalive that cannot reach any node is retried at once on the next node and then
 * with short backoff, so a leader failover (a few hundred ms of 503s) costs no TTL. When the
 * registry says the session is gone (`404 SESSION_NOT_FOUND`, or `expiring`: after a long
 * pause, a partition longer than the TTL), the registration opens a new session and
 * registers again, and tells listeners (`lost`, then `restored`).
 *
 * Persistent (no `ttlMs`): registered once; `close()` deregisters it.
 *
 * Race (1): close() during a re-registration. The re-registration checks `closed` after each
 * step; whatever session exists when it stops is the one close() deletes.
 */
import { EventEmitter } from 'node:events';
import { jitter, sleep } from './delay.js';
import { ApiError, ClientClosedError, RollcallError } from './errors.js';
import type { Instance, InstanceSpec, KeepaliveResult, SessionInfo } from './types.js';

export interface RegisterOptions extends InstanceSpec {
  /** Makes the instance ephemeral: it goes away about this long after keepalives stop. 1 s..24 h. */
  readonly ttlMs?: number;
  /** Keepalive period; default ttlMs/3. */
  readonly keepaliveIntervalMs?: number;
  /** Register in this datacenter (`?dc=`): its session, keepalives and deregistration all go there. */
  readonly dc?: string;
}

/** What a registration needs from the client. */
export interface RegistrationHost {
  readonly random: () => number;
  readonly closeSignal: AbortSignal;
  openSession(ttlMs: number): Promise<SessionInfo>;
  putInstance(spec: InstanceSpec, sessionId: string | undefined): Promise<{ revision: number; instance: Instance }>;
  keepalive(sessionId: string, timeoutMs: number): Promise<KeepaliveResult>;
  closeSession(sessionId: string): Promise<unknown>;
  deregister(ref: { namespace: string; service: string; id: string }): Promise<unknown>;
  release(reg: Registration): void;
}

export interface RegistrationEvents {
  /** The registry dropped the session (expired or closed); a re-registration follows. */
  lost: [info: { sessionId: string; reason: 'expired' | 'expiring' }];
  /** Registered again under a new session. */
  restored: [info: { sessionId: string; revision: number }];
  /** A keepalive could not reach the registry; it is being retried. */
  unreachable: [err: RollcallError];
}

/**
 * A registered instance, kept alive until `close()`.
 *
 * @example
 * ```ts
 * const reg = await client.register({ namespace: 'prod', service: 'orders', id: 'orders-1',
 *   address: '10.0.0.2', port: 9000, ttlMs: 10_000 });
 * reg.on('lost', () => log.warn('registry lost our session; re-registering'));
 * process.on('SIGTERM', async () => { await reg.close(); await client.close(); });
 * ```
 */
export class Registration extends EventEmitter<RegistrationEvents> {
  readonly #host: RegistrationHost;
  #spec: InstanceSpec;
  readonly #ttlMs: number | undefined;
  readonly #intervalMs: number;
  #instance!: Instance;
  #revision = 0;
  #sessionId: string | null = null;
  #timer: NodeJS.Timeout | null = null;
  #tick: Promise<void> | null = null;
  #closed = false;
  #lastKeepaliveAt = 0;
  #reregistrations = 0;
  readonly #stop = new AbortController();

  /** @internal use `client.register()` */
  constructor(host: RegistrationHost, options: RegisterOptions) {
    super();
    const { ttlMs, keepaliveIntervalMs, dc: _dc, ...spec } = options;
    this.#host = host;
    this.#spec = spec;
    this.#ttlMs = ttlMs;
    this.#intervalMs = keepaliveIntervalMs ?? (ttlMs === undefined ? 0 : Math.max(100, Math.floor(ttlMs / 3)));
  }

  /** The instance as last registered. */
  get instance(): Instance {
    return this.#instance;
  }

  /** The revision of the last registration write. */
  get revision(): number {
    return this.#revision;
  }

  /** The current session's id (null for a persistent instance). */
  get sessionId(): string | null {
    return this.#sessionId;
  }

  get ephemeral(): boolean {
    return this.#ttlMs !== undefined;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** How many times the session was lost and the instance registered again. */
  get reregistrations(): number {
    return this.#reregistrations;
  }

  /** When the registry last confirmed the session (ms since the epoch; 0 before the first keepalive). */
  get lastKeepaliveAt(): number {
    return this.#lastKeepaliveAt;
  }

  /** @internal Registers for the first time; `client.register()` awaits this. */
  async start(): Promise<this> {
    await this.#registerOnce();
    this.#schedule();
    return this;
  }

  /**
   * Changes what is registered (address, weight, tags, metadata, ...): one upsert under the
   * same session. Identity fields (namespace, service, id) cannot change.
   */
  async update(patch: Partial<Omit<InstanceSpec, 'namespace' | 'service' | 'id'>>): Promise<Instance> {
    if (this.#closed) throw new ClientClosedError('registration');
    this.#spec = { ...this.#spec, ...patch };
    const r = await this.#host.putInstance(this.#spec, this.#sessionId ?? undefined);
    this.#instance = r.instance;
    this.#revision = r.revision;
    return r.instance;
  }

  /**
   * Reports the provider's own health. Unhealthy takes the instance out of rotation (it stays
   * registered, disabled, so consumers are not sent to it) and healthy puts it back.
   */
  async reportHealth(healthy: boolean): Promise<Instance> {
    return this.update({ enabled: healthy });
  }

  /**
   * Stops the keepalives and deregisters (for an ephemeral instance: closes its session,
   * which removes it). With `{ deregister: false }` it only stops, and an ephemeral instance
   * then expires after its TTL. Idempotent.
   */
  async close(options: { deregister?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop.abort();
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    try {
      await this.#tick; // a keepalive or re-registration in progress settles first (race 1)
      if (options.deregister === false) return;
      const { namespace, service, id } = this.#spec;
      if (this.#sessionId !== null) {
        try {
          await this.#host.closeSession(this.#sessionId);
        } catch (err) {
          if (!(err instanceof ApiError && err.code === 'SESSION_NOT_FOUND')) throw err;
        }
      } else {
        await this.#host.deregister({ namespace, service, id });
      }
    } finally {
      this.#host.release(this);
    }
  }

  async #registerOnce(): Promise<void> {
    let sessionId: string | undefined;
    if (this.#ttlMs !== undefined) {
      sessionId = (await this.#host.openSession(this.#ttlMs)).id;
      this.#sessionId = sessionId;
      this.#lastKeepaliveAt = Date.now();
    }
    try {
      const r = await this.#host.putInstance(this.#spec, sessionId);
      this.#instance = r.instance;
      this.#revision = r.revision;
    } catch (err) {
      // A session nobody will keep alive would expire anyway; closing it now is tidier.
      if (sessionId !== undefined) await this.#host.closeSession(sessionId).catch(() => undefined);
      throw err;
    }
  }

  #schedule(delayMs?: number): void {
    if (this.#closed || this.#ttlMs === undefined || this.#host.closeSignal.aborted) return;
    const ms = delayMs ?? jitter(this.#intervalMs, 0.1, this.#host.random);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#tick = this.#keepalive().finally(() => {
        this.#tick = null;
      });
    }, ms);
  }

  async #keepalive(): Promise<void> {
    const sessionId = this.#sessionId!;
    let outcome: KeepaliveResult;
    try {
      outcome = await this.#host.keepalive(sessionId, Math.max(1000, this.#ttlMs!));
    } catch (err) {
      if (this.#closed || err instanceof ClientClosedError) return;
      this.emit(
        'unreachable',
        err instanceof RollcallError ? err : new RollcallError('UNKNOWN', String(err), { cause: err }),
      );
      this.#schedule(jitter(Math.min(this.#intervalMs, 250), 0.5, this.#host.random));
      return;
    }
    if (this.#closed) return;
    if (outcome === 'ok') {
      this.#lastKeepaliveAt = Date.now();
      this.#schedule();
      return;
    }
    this.emit('lost', { sessionId, reason: outcome === 'expiring' ? 'expiring' : 'expired' });
    await this.#reregister();
  }

  /** Opens a new session and registers again, retrying until it works or close() is called. */
  async #reregister(): Promise<void> {
    let session: string | null = null;
    for (let attempt = 1; !this.#closed && !this.#host.closeSignal.aborted; attempt++) {
      try {
        if (session === null) {
          session = (await this.#host.openSession(this.#ttlMs!)).id;
          this.#sessionId = session;
          this.#lastKeepaliveAt = Date.now();
          if (this.#closed) return; // close() will close this session
        }
        const r = await this.#host.putInstance(this.#spec, session);
        this.#instance = r.instance;
        this.#revision = r.revision;
        this.#reregistrations++;
        this.emit('restored', { sessionId: session, revision: r.revision });
        this.#schedule();
        return;
      } catch (err) {
        if (this.#closed || err instanceof ClientClosedError) return;
        if (err instanceof ApiError && err.code === 'SESSION_NOT_FOUND') session = null;
        this.emit(
          'unreachable',
          err instanceof RollcallError ? err : new RollcallError('UNKNOWN', String(err), { cause: err }),
        );
        await sleep(jitter(Math.min(2000, 100 * 2 ** attempt), 0.5, this.#host.random), this.#stop.signal);
      }
    }
  }
}
