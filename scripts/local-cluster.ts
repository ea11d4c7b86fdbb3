/**
 * Real local clusters: separate `rollcall server` processes on loopback, each with its
 * own LevelDB directory. Used by `npm start`, by the cluster tests and by benchmarks.
 * Kill -9, restart, pause (SIGSTOP/SIGCONT) and graceful stop of any node; with `proxied`,
 * every peer link runs through a TCP proxy the test can cut, blackhole and delay, per
 * ordered pair of nodes (`cluster.net`, scripts/peer-net.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PeerNet } from './peer-net.js';
import type { ClusterTls } from './tls-certs.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The compiled CLI, whether this file runs from dist/scripts or (in tests) from scripts/. */
export const CLI_PATH = here.includes(`${path.sep}dist${path.sep}`)
  ? path.resolve(here, '../src/cli/main.js')
  : path.resolve(here, '../dist/src/cli/main.js');

const START_TIMEOUT_MS = 45_000;

export interface LocalNode {
  readonly id: string;
  readonly httpPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly url: string;
  proc: ChildProcess | null;
  paused: boolean;
}

export interface LocalClusterOptions {
  readonly size: number;
  /** Fixed ports (npm start); by default free ports are picked. */
  readonly httpPorts?: readonly number[];
  readonly peerPorts?: readonly number[];
  /** Parent of the nodes' data directories; a fresh temporary one by default. */
  readonly dataRoot?: string;
  readonly secret?: string;
  readonly extraArgs?: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** More environment for one node (after `env`): a per-node faked clock, for example. */
  readonly nodeEnv?: (id: string) => NodeJS.ProcessEnv;
  /** The CLI a node runs (default CLI_PATH, this build): scripts/upgrade-test.ts starts some on an older build. */
  readonly cliPath?: (id: string) => string;
  /** Receives every log line of every node, prefixed with its id. */
  readonly onLog?: (id: string, line: string) => void;
  readonly logLevel?: string;
  /** How long a node may take to print its ready line (default 45 s; a million-instance registry loads longer). */
  readonly startTimeoutMs?: number;
  /**
   * Shed load when the event loop lags (--max-event-loop-lag-ms, on by default in
   * production). Off unless asked: test clusters share two cores with the test runner and
   * each other, and a lag spike there is the machine, not an overload the test is about.
   */
  readonly shedOnLag?: boolean;
  /** Members `start` does not start (a founding member that boots late): spawnNode starts them. */
  readonly deferred?: readonly string[];
  /**
   * Route every peer link through a TCP proxy in front of each node's peer port (every
   * node's `--peers` names the proxies, and so does a node added later), controlled
   * through `cluster.net`: cut, blackhole or delay `a -> b`, heal. The proxies run in this
   * process: while its event loop is blocked, peer traffic waits.
   */
  readonly proxied?: boolean;
  /** The `--peers` flag node `id` starts with, given the cluster's (by default that one, the same for every node). */
  readonly peers?: (id: string, flag: string) => string;
  /**
   * Every node serves HTTPS with its certificate from here and speaks mutual TLS to its
   * peers (scripts/tls-certs.ts: createClusterTls); node URLs are then https://. With
   * `requireClientCerts`, the API also requires client certificates of the same CA.
   */
  readonly tls?: ClusterTls & { readonly requireClientCerts?: boolean };
}

/**
 * A port that was free a moment ago. Nodes must know each other's peer ports before they
 * start, so ports are picked here rather than by the nodes themselves binding port 0.
 * They are drawn below the kernel's ephemeral range: a port that bind(0) hands out can be
 * taken a moment later by any outgoing connection's local end (and the cluster's own
 * peers make many), while ports below that range are only taken by explicit binds.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = PORT_FLOOR + randomInt(PORT_SPAN);
    if (await canBind(port)) return port;
  }
  throw new Error('no free port found');
}

const PORT_FLOOR = 20_000;
const PORT_SPAN = 12_000; // 20000-31999, below Linux's default ephemeral range (32768-60999)

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

export class LocalCluster {
  readonly nodes: LocalNode[] = [];
  /** The proxies on the peer links (`proxied`), else null. */
  readonly net: PeerNet | null;
  private ownsDataRoot = false;
  private dataRoot = '';

  private constructor(private readonly options: LocalClusterOptions) {
    // The proxies tell dialers apart by the hello they send, which TLS hides from them.
    if (options.proxied && options.tls) throw new Error('LocalCluster: `proxied` and `tls` cannot be combined');
    this.net = options.proxied ? new PeerNet() : null;
  }

  static async start(options: LocalClusterOptions): Promise<LocalCluster> {
    // Another process may grab a picked port before our node binds it: start over with
    // fresh ports (only when we picked them).
    for (let attempt = 1; ; attempt++) {
      const c = new LocalCluster(options);
      await c.init();
      try {
        await Promise.all(c.nodes.filter((n) => !options.deferred?.includes(n.id)).map((n) => c.spawnNode(n)));
        return c;
      } catch (err) {
        await c.close();
        const retry = attempt < 3 && !options.httpPorts && /EADDRINUSE/.test(String(err));
        if (!retry) throw err;
      }
    }
  }

  private async init(): Promise<void> {
    if (this.options.dataRoot) {
      this.dataRoot = this.options.dataRoot;
      await mkdir(this.dataRoot, { recursive: true });
    } else {
      this.dataRoot = await mkdtemp(path.join(tmpdir(), 'rollcall-cluster-'));
      this.ownsDataRoot = true;
    }
    for (let i = 0; i < this.options.size; i++) {
      const id = `n${i + 1}`;
      const httpPort = this.options.httpPorts?.[i] ?? (await freePort());
      const peerPort = this.options.peerPorts?.[i] ?? (await freePort());
      this.nodes.push({
        id,
        httpPort,
        peerPort,
        dataDir: path.join(this.dataRoot, id),
        url: `${this.scheme}://127.0.0.1:${httpPort}`,
        proc: null,
        paused: false,
      });
      await this.addProxy(id, peerPort);
    }
  }

  /** Starts the proxy in front of a node's peer port, on a port below the ephemeral range (it must keep it across the node's restarts). */
  private async addProxy(id: string, peerPort: number): Promise<void> {
    if (this.net === null) return;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.net.add(id, { host: '127.0.0.1', port: peerPort }, { host: '127.0.0.1', port: await freePort() });
        return;
      } catch (err) {
        if (attempt >= 5 || !/EADDRINUSE/.test(String(err))) throw err;
      }
    }
  }

  /** Where peers reach node `id`: its proxy when `proxied`, else its peer port. */
  peerAddress(id: string): string {
    if (this.net !== null) {
      const { host, port } = this.net.address(id);
      return `${host}:${port}`;
    }
    return `127.0.0.1:${this.node(id).peerPort}`;
  }

  private get scheme(): 'http' | 'https' {
    return this.options.tls ? 'https' : 'http';
  }

  /** A node's TLS flags: its certificate for the API and its peers, the CA for peers (and clients, if required). */
  private tlsArgs(id: string): string[] {
    const tls = this.options.tls;
    if (!tls) return [];
    const own = tls.nodes[id];
    if (!own) throw new Error(`options.tls has no certificate for ${id}`);
    return [
      '--tls-cert',
      own.cert,
      '--tls-key',
      own.key,
      ...(tls.requireClientCerts ? ['--tls-client-ca', tls.ca] : []),
      '--peer-tls-cert',
      own.cert,
      '--peer-tls-key',
      own.key,
      '--peer-tls-ca',
      tls.ca,
    ];
  }

  get peersFlag(): string {
    return this.nodes.map((n) => `${n.id}=${this.peerAddress(n.id)}`).join(',');
  }

  node(id: string): LocalNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** Starts (or restarts) a node's process and resolves once it serves HTTP. */
  async spawnNode(n: LocalNode, extraArgs: readonly string[] = []): Promise<void> {
    if (n.proc) throw new Error(`${n.id} is already running`);
    const args = [
      this.options.cliPath?.(n.id) ?? CLI_PATH,
      'server',
      '--id',
      n.id,
      '--data',
      n.dataDir,
      '--listen',
      `127.0.0.1:${n.httpPort}`,
      '--peer-listen',
      `127.0.0.1:${n.peerPort}`,
      '--peers',
      this.options.peers?.(n.id, this.peersFlag) ?? this.peersFlag,
      '--cluster-secret',
      this.options.secret ?? 'local-cluster-secret',
      '--log-level',
      this.options.logLevel ?? 'info',
      ...(this.options.shedOnLag ? [] : ['--max-event-loop-lag-ms', '0']),
      ...this.tlsArgs(n.id),
      ...(this.options.extraArgs ?? []),
      ...extraArgs,
    ];
    const proc = spawn(process.execPath, args, {
      env: { ...process.env, ...this.options.env, ...this.options.nodeEnv?.(n.id), ROLLCALL_READY_FD: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    n.proc = proc;
    n.paused = false;
    // The last lines the node wrote, for the error when it never becomes ready.
    const recent: string[] = [];
    const remember = (line: string) => {
      recent.push(line);
      if (recent.length > 40) recent.shift();
    };
    const ready = new Promise<void>((resolve, reject) => {
      let buf = '';
      let stderr = '';
      const onLine = (line: string) => {
        if (line.startsWith('{"ready":true')) resolve();
        else {
          remember(line);
          this.options.onLog?.(n.id, line);
        }
      };
      proc.stdout!.on('data', (chunk: Buffer) => {
        buf += chunk.toString('utf8');
        let i: number;
        while ((i = buf.indexOf('\n')) >= 0) {
          onLine(buf.slice(0, i));
          buf = buf.slice(i + 1);
        }
      });
      proc.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString('utf8');
        remember(chunk.toString('utf8').trimEnd());
        this.options.onLog?.(n.id, chunk.toString('utf8').trimEnd());
      });
      proc.once('exit', (code, signal) => {
        if (n.proc === proc) n.proc = null;
        reject(
          new Error(`${n.id} exited before it was ready (code ${code}, signal ${signal}): ${stderr.slice(-2000)}`),
        );
      });
    });
    // A node that never says it is ready must not hang the caller (or CI).
    const startTimeoutMs = this.options.startTimeoutMs ?? START_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        proc.kill('SIGKILL');
        const said = recent.length > 0 ? `; its last output:\n${recent.join('\n')}` : ' (it wrote nothing)';
        reject(new Error(`${n.id} did not become ready within ${startTimeoutMs} ms${said}`));
      }, startTimeoutMs);
    });
    try {
      await Promise.race([ready, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Starts one more node that joins the running cluster (`--join`): it starts empty and
   * takes part once the leader adds it (POST /v1/cluster/members).
   */
  async addNode(): Promise<LocalNode> {
    const id = `n${this.nodes.length + 1}`;
    const n: LocalNode = {
      id,
      httpPort: await freePort(),
      peerPort: await freePort(),
      dataDir: path.join(this.dataRoot, id),
      url: '',
      proc: null,
      paused: false,
    };
    (n as { url: string }).url = `${this.scheme}://127.0.0.1:${n.httpPort}`;
    await this.addProxy(id, n.peerPort);
    this.nodes.push(n);
    await this.spawnNode(n, ['--join']);
    return n;
  }

  async restart(id: string): Promise<void> {
    await this.spawnNode(this.node(id));
  }

  /** kill -9: no cleanup, unsynced data lost. */
  async kill(id: string): Promise<void> {
    const n = this.node(id);
    const proc = n.proc;
    if (!proc) return;
    if (n.paused) proc.kill('SIGCONT');
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGKILL');
    await exited;
    n.proc = null;
  }

  /** Graceful stop (SIGTERM); resolves with the exit code. */
  async stop(id: string): Promise<number | null> {
    const n = this.node(id);
    const proc = n.proc;
    if (!proc) return null;
    if (n.paused) this.resume(id);
    const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    proc.kill('SIGTERM');
    const code = await exited;
    n.proc = null;
    return code;
  }

  pause(id: string): void {
    const n = this.node(id);
    if (n.proc && !n.paused) {
      n.proc.kill('SIGSTOP');
      n.paused = true;
    }
  }

  resume(id: string): void {
    const n = this.node(id);
    if (n.proc && n.paused) {
      n.proc.kill('SIGCONT');
      n.paused = false;
    }
  }

  running(): LocalNode[] {
    return this.nodes.filter((n) => n.proc !== null);
  }

  /** Stops every node (SIGKILL unless graceful), closes the proxies and removes temporary data. */
  async close(graceful = false): Promise<void> {
    await Promise.all(this.nodes.map((n) => (graceful ? this.stop(n.id) : this.kill(n.id))));
    await this.net?.close();
    if (this.ownsDataRoot) await rm(this.dataRoot, { recursive: true, force: true });
  }
}
