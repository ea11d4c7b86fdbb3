/** SSE helpers for the API tests: a parser, a fake sink for the hub, an HTTP watcher. */
import { EventEmitter } from 'node:events';
import type { WatchSink } from '../src/server/watch/hub.js';

export interface SseEvent {
  readonly id?: string;
  readonly event: string;
  readonly data: any;
}

/** Parses complete SSE events out of text; returns them and the unparsed rest. */
export function parseSse(text: string): { events: SseEvent[]; rest: string } {
  const events: SseEvent[] = [];
  let rest = text;
  let i: number;
  while ((i = rest.indexOf('\n\n')) >= 0) {
    const block = rest.slice(0, i);
    rest = rest.slice(i + 2);
    let id: string | undefined;
    let event = 'message';
    const data: string[] = [];
    let any = false;
    for (const line of block.split('\n')) {
      if (line.startsWith(':') || line.length === 0) continue;
      const c = line.indexOf(':');
      const field = c < 0 ? line : line.slice(0, c);
      const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
      if (field === 'id') id = value;
      else if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
      else continue;
      any = true;
    }
    if (!any || data.length === 0) continue; // retry: lines and comments
    events.push({ ...(id !== undefined ? { id } : {}), event, data: JSON.parse(data.join('\n')) });
  }
  return { events, rest };
}

/** A sink whose flushing the test controls: bytes stay "unflushed" until flush(). */
export class FakeSink extends EventEmitter implements WatchSink {
  readonly chunks: Buffer[] = [];
  buffered = 0;
  ended = false;
  destroyed = false;
  private needDrain = false;

  constructor(private readonly opts: { autoFlush?: boolean; highWaterMark?: number } = {}) {
    super();
  }

  get writableLength(): number {
    return this.buffered;
  }

  write(chunk: Buffer): boolean {
    if (this.ended) throw new Error('write after end');
    this.chunks.push(chunk);
    if (!this.opts.autoFlush) this.buffered += chunk.length;
    const ok = this.buffered < (this.opts.highWaterMark ?? 16 * 1024);
    if (!ok) this.needDrain = true;
    return ok;
  }

  end(chunk?: Buffer): void {
    if (chunk) this.chunks.push(chunk);
    this.ended = true;
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.emit('close');
  }

  cork(): void {}
  uncork(): void {}

  /** The client read everything. */
  flush(): void {
    this.buffered = 0;
    if (this.needDrain) {
      this.needDrain = false;
      this.emit('drain');
    }
  }

  /** The client went away. */
  hangUp(): void {
    this.destroy();
  }

  events(): SseEvent[] {
    return parseSse(Buffer.concat(this.chunks).toString('utf8')).events;
  }

  changes(): SseEvent[] {
    return this.events().filter((e) => e.event === 'message');
  }
}

/** A watch over real HTTP that collects events; `until` waits for a condition on them. */
export class HttpWatcher {
  readonly events: SseEvent[] = [];
  status = 0;
  ended = false;
  private readonly abort = new AbortController();
  private waiters: (() => void)[] = [];

  private constructor() {}

  static async open(url: string, headers: Record<string, string> = {}): Promise<HttpWatcher> {
    const w = new HttpWatcher();
    const res = await fetch(url, { headers, signal: w.abort.signal });
    w.status = res.status;
    if (!res.ok || !res.body) {
      w.ended = true;
      w.events.push({ event: 'http-error', data: await res.json().catch(() => null) });
      return w;
    }
    void w.read(res.body);
    return w;
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let text = '';
    try {
      for await (const chunk of body) {
        text += decoder.decode(chunk, { stream: true });
        const { events, rest } = parseSse(text);
        text = rest;
        if (events.length > 0) {
          this.events.push(...events);
          this.wake();
        }
      }
    } catch {
      /* aborted */
    }
    this.ended = true;
    this.wake();
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  changes(): SseEvent[] {
    return this.events.filter((e) => e.event === 'message');
  }

  /** Waits until `check` holds over the events so far (woken by each new event). */
  async until(what: string, check: (w: HttpWatcher) => boolean, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!check(this)) {
      if (this.ended) throw new Error(`watch ended before ${what}; events: ${JSON.stringify(this.events.slice(-5))}`);
      const left = deadline - Date.now();
      if (left <= 0)
        throw new Error(
          `timed out waiting for ${what}; ${this.events.length} events, last: ${JSON.stringify(this.events.slice(-3))}`,
        );
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.abort.abort();
  }
}
