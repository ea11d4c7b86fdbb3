/**
 * Stand-ins for Rollcall nodes in client and CLI tests: real HTTP servers on loopback that
 * answer what each test scripts (`handler`), so failures (dead node, silent node, 503, 504,
 * cut streams) happen exactly when a test says. For the server's side of the API, over a
 * real registry without sockets, see in-memory-node-api.ts.
 */
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterEach, vi } from 'vitest';

export type Handler = (
  req: IncomingMessage & { body: string },
  res: ServerResponse,
  node: ScriptedHttpNode,
) => void | Promise<void>;

export interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

export class ScriptedHttpNode {
  readonly seen: Seen[] = [];
  readonly sockets = new Set<Socket>();
  leader: string | null = null;
  handler: Handler = (_req, res) => json(res, 404, { error: { code: 'ROUTE_NOT_FOUND', message: 'no route' } });
  private constructor(
    readonly id: string,
    private readonly server: http.Server,
  ) {}

  static async start(id: string): Promise<ScriptedHttpNode> {
    const server = http.createServer();
    const node = new ScriptedHttpNode(id, server);
    server.on('connection', (s) => {
      node.sockets.add(s);
      s.on('close', () => node.sockets.delete(s));
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        node.seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        res.setHeader('x-rollcall-node', node.id);
        if (node.leader) res.setHeader('x-rollcall-leader', node.leader);
        void node.handler(Object.assign(req, { body }), res, node);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return node;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Drops every open connection (like a process dying: the kernel closes its sockets). */
  cut(): void {
    for (const s of this.sockets) s.destroy();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

export function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify(body));
}

/** A URL nothing listens on (a port that was free a moment ago). */
export async function deadUrl(): Promise<string> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return `http://127.0.0.1:${port}`;
}

/**
 * Scripted nodes and clients that each test of the calling file starts, closed after it (the
 * clients first, on real timers again: a test may have faked them). Call at a file's top.
 */
export function scriptedPerTest(): {
  /** Starts scripted node `id`. */
  node(id: string): Promise<ScriptedHttpNode>;
  /** Closes `client` after the test. */
  client<C extends { close(): Promise<void> }>(client: C): C;
} {
  const nodes: ScriptedHttpNode[] = [];
  const clients: { close(): Promise<void> }[] = [];
  afterEach(async () => {
    vi.useRealTimers();
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(nodes.splice(0).map((n) => n.close()));
  });
  return {
    async node(id) {
      const n = await ScriptedHttpNode.start(id);
      nodes.push(n);
      return n;
    },
    client(c) {
      clients.push(c);
      return c;
    },
  };
}
