/**
 * `--max-connections` bounds the Consul listener as it bounds the native one: every parked
 * blocking query holds a socket, so without the bound only the process's fd limit stops a
 * flood of them. Real sockets against a real listener over a real Registry (no Raft).
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type ConsulApi, startConsulApi } from '../src/consul/index.js';
import { silentLogger } from '../src/log/index.js';
import { waitFor } from './helpers/wait.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

/** A connection and whether the server has closed it. */
function connect(port: number): Promise<{ socket: net.Socket; closed: () => boolean }> {
  return new Promise((resolve, reject) => {
    let closed = false;
    const socket = net.connect(port, '127.0.0.1', () => resolve({ socket, closed: () => closed }));
    socket.on('error', () => {}); // a reset of the refused connection is the expected outcome
    socket.on('close', () => {
      closed = true;
    });
    socket.once('error', reject);
  });
}

describe('the Consul listener with --max-connections', () => {
  let api: ConsulApi | null = null;
  const sockets: net.Socket[] = [];
  afterEach(async () => {
    for (const s of sockets) s.destroy();
    await api?.close();
    api = null;
  });

  it('closes connections past the bound and keeps serving the ones it took', async () => {
    const node = await InMemoryNodeApi.create();
    api = await startConsulApi({
      node,
      logger: silentLogger(),
      listen: { host: '127.0.0.1', port: 0 },
      datacenter: 'dc1',
      namespace: 'default',
      maxConnections: 2,
    });
    const held = [await connect(api.port), await connect(api.port)];
    sockets.push(...held.map((c) => c.socket));
    // The server counts a connection once it has accepted it: a request answered on each proves both are in.
    for (const c of held) {
      c.socket.write('GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n');
      await new Promise<void>((resolve) => c.socket.once('data', () => resolve()));
    }
    const third = await connect(api.port);
    sockets.push(third.socket);
    await waitFor('the third connection closed by the server', () => third.closed());
    expect(held.map((c) => c.closed())).toEqual([false, false]);
  });

  it('without the flag takes more than two', async () => {
    const node = await InMemoryNodeApi.create();
    api = await startConsulApi({
      node,
      logger: silentLogger(),
      listen: { host: '127.0.0.1', port: 0 },
      datacenter: 'dc1',
      namespace: 'default',
    });
    const conns = [await connect(api.port), await connect(api.port), await connect(api.port)];
    sockets.push(...conns.map((c) => c.socket));
    for (const c of conns) {
      c.socket.write('GET /v1/status/leader HTTP/1.1\r\nHost: x\r\n\r\n');
      await new Promise<void>((resolve) => c.socket.once('data', () => resolve()));
    }
    expect(conns.map((c) => c.closed())).toEqual([false, false, false]);
  });
});
