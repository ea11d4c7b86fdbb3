/**
 * A local etcd cluster for the side-by-side benchmark: N `etcd` processes on loopback
 * with free ports and temporary data directories, default settings otherwise (heartbeat
 * 100 ms, election 1000 ms, snapshot-count 100,000, fsync on every commit).
 *
 * With `tls`, as etcd's security guide sets a cluster up: clients over HTTPS
 * (`--cert-file`, `--key-file`; with `clientCertAuth` also `--client-cert-auth
 * --trusted-ca-file`) and members over mutual TLS (`--peer-cert-file`, `--peer-key-file`,
 * `--peer-trusted-ca-file`, `--peer-client-cert-auth`).
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../local-cluster.js';
import type { CertFiles } from '../tls-certs.js';
import { clientTlsOf, requestJson } from './http-json.js';
import type { ClientTls } from './loadgen.js';
import { trackDir } from './procs.js';

/** The files of an etcd cluster over TLS, all from one CA. */
export interface EtcdTls {
  /** The CA certificate: --trusted-ca-file, --peer-trusted-ca-file, a client's --cacert. */
  readonly ca: string;
  /** Per member name (e1, e2, ...): its server and peer certificate (SAN IP:127.0.0.1, both key usages). */
  readonly members: Readonly<Record<string, CertFiles>>;
  /** The client certificate the benchmark presents when `clientCertAuth`. */
  readonly client: CertFiles;
  /** --client-cert-auth: clients must present a certificate of the CA. */
  readonly clientCertAuth: boolean;
}

export interface EtcdNode {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly url: string;
  proc: ChildProcess | null;
}

/** The etcd binary: $ETCD_BIN if set (empty or missing file = none), else on PATH or in /usr/bin; or null. */
export function findEtcd(): string | null {
  const forced = process.env.ETCD_BIN;
  if (forced !== undefined) return forced && existsSync(forced) ? forced : null;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter).concat(['/usr/bin', '/usr/local/bin'])) {
    const p = path.join(dir, 'etcd');
    if (dir && existsSync(p)) return p;
  }
  return null;
}

export function etcdVersion(bin: string): string {
  try {
    const out = execFileSync(bin, ['--version'], { encoding: 'utf8' });
    return /etcd Version:\s*(\S+)/.exec(out)?.[1] ?? out.split('\n')[0]!;
  } catch {
    return 'unknown';
  }
}

export const ETCD_INSTALL_HINT =
  'etcd is not installed; to compare against it run: apt-get update && apt-get install -y etcd-server etcd-client';

export class EtcdCluster {
  readonly nodes: EtcdNode[] = [];
  /** What the benchmark's clients trust and present, with `tls`. */
  readonly clientTls: ClientTls | undefined;
  private root = '';

  private constructor(
    private readonly bin: string,
    private readonly onLog?: (name: string, line: string) => void,
    private readonly tls?: EtcdTls,
  ) {
    this.clientTls = tls ? clientTlsOf(tls.clientCertAuth ? { ca: tls.ca, ...tls.client } : { ca: tls.ca }) : undefined;
  }

  static async start(options: {
    bin: string;
    size: number;
    onLog?: (name: string, line: string) => void;
    tls?: EtcdTls;
  }): Promise<EtcdCluster> {
    const c = new EtcdCluster(options.bin, options.onLog, options.tls);
    c.root = await mkdtemp(path.join(tmpdir(), 'rollcall-bench-etcd-'));
    trackDir(c.root);
    const scheme = options.tls ? 'https' : 'http';
    for (let i = 0; i < options.size; i++) {
      const clientPort = await freePort();
      const peerPort = await freePort();
      const name = `e${i + 1}`;
      c.nodes.push({
        name,
        clientPort,
        peerPort,
        dataDir: path.join(c.root, name),
        url: `${scheme}://127.0.0.1:${clientPort}`,
        proc: null,
      });
    }
    try {
      for (const n of c.nodes) c.spawn(n);
      await Promise.all(c.nodes.map((n) => c.waitHealthy(n, 30_000)));
    } catch (err) {
      await c.close();
      throw err;
    }
    return c;
  }

  get dataRoot(): string {
    return this.root;
  }

  pids(): (number | undefined)[] {
    return this.nodes.map((n) => n.proc?.pid);
  }

  private spawn(n: EtcdNode): void {
    if (n.proc) throw new Error(`${n.name} is already running`);
    const peerScheme = this.tls ? 'https' : 'http';
    const initialCluster = this.nodes.map((x) => `${x.name}=${peerScheme}://127.0.0.1:${x.peerPort}`).join(',');
    const args = [
      '--name',
      n.name,
      '--data-dir',
      n.dataDir,
      '--listen-client-urls',
      n.url,
      '--advertise-client-urls',
      n.url,
      '--listen-peer-urls',
      `${peerScheme}://127.0.0.1:${n.peerPort}`,
      '--initial-advertise-peer-urls',
      `${peerScheme}://127.0.0.1:${n.peerPort}`,
      '--initial-cluster',
      initialCluster,
      '--initial-cluster-token',
      'rollcall-bench',
      '--initial-cluster-state',
      'new',
      '--logger',
      'zap',
      '--log-level',
      'warn',
      ...this.tlsArgs(n.name),
    ];
    const proc = spawn(this.bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    n.proc = proc;
    proc.stderr!.on('data', (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) this.onLog?.(n.name, line);
    });
    proc.once('exit', () => {
      if (n.proc === proc) n.proc = null;
    });
  }

  /** A member's TLS flags: its certificate for clients and peers, the CA for peers (and clients, if required). */
  private tlsArgs(name: string): string[] {
    const tls = this.tls;
    if (!tls) return [];
    const own = tls.members[name];
    if (!own) throw new Error(`etcd tls has no certificate for ${name}`);
    return [
      '--cert-file',
      own.cert,
      '--key-file',
      own.key,
      ...(tls.clientCertAuth ? ['--client-cert-auth', '--trusted-ca-file', tls.ca] : []),
      '--peer-cert-file',
      own.cert,
      '--peer-key-file',
      own.key,
      '--peer-trusted-ca-file',
      tls.ca,
      '--peer-client-cert-auth',
    ];
  }

  /** Resolves when GET /health says true (a leader is known and the node serves). */
  async waitHealthy(n: EtcdNode, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (!n.proc) throw new Error(`etcd ${n.name} exited during start`);
      try {
        const { body } = await requestJson<{ health?: string }>(`${n.url}/health`, {}, 1000, this.clientTls);
        if (body?.health === 'true') return;
      } catch {
        /* not up yet */
      }
      if (Date.now() > deadline) throw new Error(`etcd ${n.name} not healthy after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Starts a stopped member again with its data (it rejoins). Resolves once the process is started. */
  restart(name: string): void {
    this.spawn(this.node(name));
  }

  node(name: string): EtcdNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no etcd node ${name}`);
    return n;
  }

  async kill(name: string): Promise<void> {
    const n = this.node(name);
    const proc = n.proc;
    if (!proc) return;
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    proc.kill('SIGKILL');
    await exited;
    n.proc = null;
  }

  async close(): Promise<void> {
    await Promise.all(this.nodes.map((n) => this.kill(n.name)));
    if (this.root) await rm(this.root, { recursive: true, force: true });
  }
}
