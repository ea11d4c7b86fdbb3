/**
 * The main thread's side of the probe listener: a timer writes the heartbeat every
 * `heartbeatMs`, and the /readyz check runs every `readinessEveryMs` (one at a time: the
 * next starts that long after the last finished) and its answer is published with the
 * time it was taken. Both timers only fire between turns of the main event loop, which is
 * the point: what they publish ages exactly as long as the loop is held.
 */
import type { HeartbeatCell, ProbeAnswer, PublishedReadiness } from './state.js';

export interface ProbePublisherOptions {
  readonly heartbeat: HeartbeatCell;
  /** The monotonic clock (ms) both threads read: monotonicMs in production. */
  readonly clock: () => number;
  /** The /readyz check (the main port's, read barrier included). */
  readonly evaluate: () => Promise<ProbeAnswer>;
  /** Hands a fresh readiness to the listener. */
  readonly publish: (readiness: PublishedReadiness) => void;
  /** The check threw (a bug: it answers its own failures as not ready). Nothing is published; the old value goes stale. */
  readonly onEvaluateError: (err: unknown) => void;
  readonly heartbeatMs: number;
  readonly readinessEveryMs: number;
}

export class ProbePublisher {
  private beatTimer: NodeJS.Timeout | null = null;
  private checkTimer: NodeJS.Timeout | null = null;
  private running = false;
  private last: PublishedReadiness | null = null;

  constructor(private readonly o: ProbePublisherOptions) {}

  /** The readiness published last (a restarted listener starts from it), or null. */
  get latest(): PublishedReadiness | null {
    return this.last;
  }

  /** Beats at once (the listener never sees an empty cell), then on the timers. */
  start(): void {
    if (this.running) return;
    this.running = true;
    this.o.heartbeat.beat(this.o.clock());
    this.beatTimer = setInterval(() => this.o.heartbeat.beat(this.o.clock()), this.o.heartbeatMs);
    this.beatTimer.unref();
    void this.check();
  }

  private async check(): Promise<void> {
    this.checkTimer = null;
    try {
      const answer = await this.o.evaluate();
      if (!this.running) return;
      this.last = { at: this.o.clock(), status: answer.status, body: answer.body };
      this.o.publish(this.last);
    } catch (err) {
      if (!this.running) return;
      this.o.onEvaluateError(err);
    }
    this.checkTimer = setTimeout(() => void this.check(), this.o.readinessEveryMs);
    this.checkTimer.unref();
  }

  /** Stops both timers; a check in flight publishes nothing when it ends. */
  stop(): void {
    this.running = false;
    if (this.beatTimer !== null) clearInterval(this.beatTimer);
    if (this.checkTimer !== null) clearTimeout(this.checkTimer);
    this.beatTimer = null;
    this.checkTimer = null;
  }
}
