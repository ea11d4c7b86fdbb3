/**
 * A closed-loop UDP DNS load for `npm run bench:dns`: keeps `window` queries outstanding
 * against one server, each a copy of one encoded query with its own id, and counts the
 * answers until `maxQueries` are answered or `ms` have passed, whichever comes first.
 * Replies are matched by id from their first two bytes and not decoded, so the generator
 * costs little beside the server it measures. A query unanswered after `lostAfterMs` is
 * counted lost and its slot reused (UDP may drop under load).
 */
import { createSocket } from 'node:dgram';

export interface DnsLoadOptions {
  readonly port: number;
  /** An encoded query; its id (first two bytes) is overwritten per query. */
  readonly query: Buffer;
  readonly window: number;
  readonly maxQueries: number;
  readonly ms: number;
  readonly lostAfterMs?: number;
}

export interface DnsLoadResult {
  readonly answered: number;
  readonly lost: number;
  readonly seconds: number;
  readonly perSecond: number;
}

export function runDnsLoad(o: DnsLoadOptions): Promise<DnsLoadResult> {
  const lostAfterMs = o.lostAfterMs ?? 1000;
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    // id -> when it was sent (ms); at most `window` entries.
    const outstanding = new Map<number, number>();
    let nextId = 0;
    let answered = 0;
    let lost = 0;
    let finished = false;
    const started = performance.now();

    const send = () => {
      // Ids cycle through 16 bits; the window is far smaller, so an id is free again long before it comes round.
      do nextId = (nextId + 1) & 0xffff;
      while (outstanding.has(nextId));
      const q = Buffer.from(o.query);
      q.writeUInt16BE(nextId, 0);
      outstanding.set(nextId, performance.now());
      socket.send(q, o.port, '127.0.0.1');
    };
    const finish = () => {
      if (finished) return;
      finished = true;
      clearInterval(sweeper);
      clearTimeout(deadline);
      const seconds = (performance.now() - started) / 1000;
      socket.close(() => resolve({ answered, lost, seconds, perSecond: answered / seconds }));
    };
    const sweeper = setInterval(() => {
      const now = performance.now();
      for (const [id, at] of outstanding) {
        if (now - at < lostAfterMs) continue;
        outstanding.delete(id);
        lost++;
        send();
      }
    }, 100);
    const deadline = setTimeout(finish, o.ms);

    socket.on('error', (err) => {
      clearInterval(sweeper);
      clearTimeout(deadline);
      socket.close();
      reject(err);
    });
    socket.on('message', (reply) => {
      if (reply.length < 12 || !outstanding.delete(reply.readUInt16BE(0))) return;
      answered++;
      if (answered >= o.maxQueries) return finish();
      if (!finished) send();
    });
    socket.bind(0, '127.0.0.1', () => {
      for (let k = 0; k < o.window; k++) send();
    });
  });
}
