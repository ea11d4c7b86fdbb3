/**
 * A LocalCluster set up for linearizability runs: the test fault hook on
 * (ROLLCALL_TEST_FAULTS=1), every peer link through a TCP proxy (`netsplit` faults cut and
 * delay them), frequent log compaction so restarted nodes catch up by snapshot, the last
 * log lines of every node kept for failure reports, and every fatal line collected in
 * `view.fatalLog` (a run fails on one).
 */
import { LocalCluster } from '../local-cluster.js';
import { findLeader } from './cluster-control.js';
import { ClusterView } from './cluster-view.js';

export interface LinCluster {
  readonly cluster: LocalCluster;
  readonly view: ClusterView;
  /** The last log lines (warn and above), oldest first, each prefixed with the node id. */
  logTail(): string[];
  close(): Promise<void>;
}

export interface LinClusterOptions {
  readonly size?: number;
  /** Compact the Raft log every N entries (default 200: snapshots happen within a run). */
  readonly compactEvery?: number;
  readonly logLines?: number;
  /** Peer links through TCP proxies (default true; `netsplit` faults need them). */
  readonly proxied?: boolean;
}

export async function startLinCluster(options: LinClusterOptions = {}): Promise<LinCluster> {
  const keep = options.logLines ?? 300;
  const lines: string[] = [];
  // Set once the cluster runs (a node that fails while starting fails LocalCluster.start).
  let view: ClusterView | undefined;
  const cluster = await LocalCluster.start({
    size: options.size ?? 3,
    logLevel: 'warn',
    proxied: options.proxied ?? true,
    env: { ROLLCALL_TEST_FAULTS: '1', ROLLCALL_COMPACT_EVERY: String(options.compactEvery ?? 200) },
    onLog: (id, line) => {
      lines.push(`${id} ${line}`);
      if (lines.length > keep) lines.splice(0, lines.length - keep);
      const f = fatalLine(line);
      if (f !== null) view?.fatalLog.push(`${id} ${f}`);
    },
  });
  const linView = new ClusterView(cluster);
  view = linView;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await cluster.close();
  };
  try {
    if ((await findLeader(linView, 30_000)) === null) throw new Error('the new cluster elected no leader in 30 s');
  } catch (err) {
    await close();
    throw err;
  }
  return { cluster, view: linView, logTail: () => [...lines], close };
}

/** `message: error` for a pino line at level fatal (60) or above, else null. */
export function fatalLine(line: string): string | null {
  if (!line.startsWith('{')) return null;
  try {
    const o = JSON.parse(line) as { level?: unknown; msg?: unknown; err?: { message?: unknown } };
    if (typeof o.level !== 'number' || o.level < 60) return null;
    return `${String(o.msg ?? '')}${o.err?.message !== undefined ? `: ${String(o.err.message)}` : ''}`;
  } catch {
    return null;
  }
}
