/**
 * The watch stream's socket sink over a real HTTP server: frames written straight to the
 * socket as pre-built chunks and frames written through the response interleave in call
 * order into a valid chunked body; HTTP/1.0 gets unframed bytes; a client that stops
 * reading makes writes report backpressure and the drain reaches the hub's listener.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { ChunkedResponseSink, httpChunk } from '../src/server/watch/chunked-sink.js';

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

async function serve(handler: (res: ServerResponse) => void): Promise<number> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream', connection: 'close' });
    handler(res);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return (server.address() as AddressInfo).port;
}

/** The raw bytes of one HTTP exchange, read until the server closes. */
function rawExchange(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.write(request));
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (d: string) => (text += d));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

describe('chunked response sink', () => {
  it('frames a Buffer once, whatever number of watchers it is written to', () => {
    const data = Buffer.from('id: 1\ndata: {}\n\n');
    const chunk = httpChunk(data);
    expect(chunk.toString('latin1')).toBe(`${data.length.toString(16)}\r\nid: 1\ndata: {}\n\n\r\n`);
    expect(httpChunk(data)).toBe(chunk);
  });

  it('interleaves direct writes and response writes in call order into a valid chunked body', async () => {
    const shared = Buffer.from('data: shared\n\n');
    const port = await serve((res) => {
      const sink = new ChunkedResponseSink(res);
      res.write('retry: 2000\n\n'); // headers go out with this one
      sink.write(shared);
      res.write('data: via-response\n\n');
      sink.cork();
      sink.write(Buffer.from('data: a\n\n'));
      sink.write(shared);
      sink.uncork();
      sink.end(Buffer.from('data: last\n\n'));
    });
    const body = await (await fetch(`http://127.0.0.1:${port}/`)).text();
    expect(body).toBe('retry: 2000\n\ndata: shared\n\ndata: via-response\n\ndata: a\n\ndata: shared\n\ndata: last\n\n');
  });

  it('puts the status line first when the sink writes before anything else did', async () => {
    const port = await serve((res) => {
      const sink = new ChunkedResponseSink(res); // right after writeHead: no byte out yet
      sink.write(Buffer.from('data: first\n\n'));
      sink.end(Buffer.from('data: last\n\n'));
    });
    const r = await fetch(`http://127.0.0.1:${port}/`);
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('data: first\n\ndata: last\n\n');
  });

  it('writes unframed bytes to an HTTP/1.0 client', async () => {
    const port = await serve((res) => {
      const sink = new ChunkedResponseSink(res);
      res.write('retry: 2000\n\n');
      sink.write(Buffer.from('data: x\n\n'));
      sink.end();
    });
    const raw = await rawExchange(port, 'GET / HTTP/1.0\r\nhost: x\r\n\r\n');
    const head = raw.slice(0, raw.indexOf('\r\n\r\n'));
    expect(head).not.toMatch(/transfer-encoding/i);
    expect(raw.slice(head.length + 4)).toBe('retry: 2000\n\ndata: x\n\n');
  });

  it('reports backpressure when the client stops reading and tells the listener once it drains', async () => {
    // Waits on the events themselves, not on polls with a deadline: a loaded machine is
    // slower, never wrong.
    let sink!: ChunkedResponseSink;
    let refused = false;
    const frame = Buffer.alloc(64 * 1024, 'x');
    let written = 0;
    let filled!: () => void;
    const full = new Promise<void>((r) => (filled = r));
    let heardDrain!: () => void;
    const drained = new Promise<void>((r) => (heardDrain = r));
    const port = await serve((res) => {
      sink = new ChunkedResponseSink(res);
      res.write('retry: 2000\n\n');
      sink.on('drain', () => heardDrain());
      // Write until the kernel's buffers are full and bytes queue in the process (the
      // client is paused), at most 64 MiB.
      setImmediate(() => {
        // (after the response's own corked first write has gone out)
        while (written < 1024 && sink.writableLength === 0) {
          refused = !sink.write(frame) || refused;
          written++;
        }
        filled();
      });
    });
    const socket = connect(port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nhost: x\r\n\r\n'));
    socket.pause();
    await full;
    expect(refused).toBe(true);
    expect(sink.writableLength).toBeGreaterThan(0);
    // Every byte written reaches the client once it reads again (with the head and the
    // chunk framing, it receives more than the frames).
    let received = 0;
    let gotAll!: () => void;
    const everything = new Promise<void>((r) => (gotAll = r));
    socket.on('data', (d: Buffer) => {
      received += d.length;
      if (received > written * frame.length) gotAll();
    });
    socket.resume();
    await drained;
    await everything;
    socket.destroy();
  });
});
