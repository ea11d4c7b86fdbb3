/**
 * A dns-packet client for the DNS tests: one query over UDP or TCP, or raw bytes for the
 * messages a real resolver would never send. Every socket it opens is closed before it
 * resolves; a query that gets no answer rejects after `timeoutMs`.
 */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { type Answer, type DecodedPacket, decode, encode, type Packet, RECURSION_DESIRED } from 'dns-packet';

export interface QueryOptions {
  /** EDNS with this UDP payload size (an OPT record); none by default, like `dig +noedns`. */
  readonly edns?: number;
  readonly id?: number;
  readonly timeoutMs?: number;
}

export function queryPacket(name: string, type: string, options: QueryOptions = {}): Packet {
  const additionals: Answer[] =
    options.edns === undefined
      ? []
      : [
          {
            type: 'OPT',
            name: '.',
            udpPayloadSize: options.edns,
            extendedRcode: 0,
            ednsVersion: 0,
            flags: 0,
            flag_do: false,
            options: [],
          },
        ];
  return {
    id: options.id ?? 4242,
    type: 'query',
    flags: RECURSION_DESIRED,
    questions: [{ name, type: type as 'A', class: 'IN' }],
    additionals,
  };
}

/** Sends raw bytes over UDP; resolves with the reply bytes, or null if none came within `timeoutMs`. */
export function udpExchange(port: number, message: Buffer, timeoutMs = 2000): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => finish(null), timeoutMs);
    const finish = (reply: Buffer | null) => {
      clearTimeout(timer);
      socket.close(() => resolve(reply));
    };
    socket.on('error', (err) => {
      clearTimeout(timer);
      socket.close();
      reject(err);
    });
    socket.on('message', (reply) => finish(reply));
    socket.send(message, port, '127.0.0.1');
  });
}

/**
 * Sends each message framed over one TCP connection; resolves with the replies in order, as
 * many as came before the connection ended or `timeoutMs` passed.
 */
export function tcpExchange(port: number, messages: readonly Buffer[], timeoutMs = 2000): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const replies: Buffer[] = [];
    let pending = Buffer.alloc(0);
    const timer = setTimeout(() => done(), timeoutMs);
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(replies);
    };
    let connected = false;
    // Once connected, an error (the server closing on a bad message: EPIPE, ECONNRESET) ends the exchange with the replies so far.
    socket.on('error', (err) => {
      if (connected) return done();
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
    socket.on('close', () => done());
    socket.on('connect', () => {
      connected = true;
      for (const m of messages) {
        const framed = Buffer.alloc(2 + m.length);
        framed.writeUInt16BE(m.length, 0);
        m.copy(framed, 2);
        socket.write(framed);
      }
    });
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
        replies.push(pending.subarray(2, 2 + pending.readUInt16BE(0)));
        pending = pending.subarray(2 + pending.readUInt16BE(0));
      }
      if (replies.length >= messages.length) done();
    });
  });
}

export async function queryUdp(
  port: number,
  name: string,
  type: string,
  options: QueryOptions = {},
): Promise<DecodedPacket> {
  const reply = await udpExchange(port, encode(queryPacket(name, type, options)), options.timeoutMs);
  if (reply === null) throw new Error(`no UDP answer to ${name} ${type}`);
  return decode(reply);
}

export async function queryTcp(
  port: number,
  name: string,
  type: string,
  options: QueryOptions = {},
): Promise<DecodedPacket> {
  const [reply] = await tcpExchange(port, [encode(queryPacket(name, type, options))], options.timeoutMs);
  if (reply === undefined) throw new Error(`no TCP answer to ${name} ${type}`);
  return decode(reply);
}

/** The records of one type in a section, as their data. */
export function dataOf<T = unknown>(records: readonly Answer[] | undefined, type: string): T[] {
  return (records ?? []).filter((r) => r.type === type).map((r) => (r as unknown as { data: T }).data);
}
