/**
 * `npm start`: a real local 3-node cluster (5 with `-- --nodes 5`). HTTP on
 * 127.0.0.1:8101.., peers on 7101.., data under ./data, readable logs; Ctrl-C stops
 * every node cleanly.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { LocalCluster } from './local-cluster.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '3' },
    data: { type: 'string', default: 'data' },
    'log-level': { type: 'string', default: 'info' },
  },
});
const size = Number(values.nodes);
if (size !== 3 && size !== 5) {
  console.error('npm start: --nodes must be 3 or 5');
  process.exit(2);
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const COLORS: Record<string, string> = { n1: '\x1b[36m', n2: '\x1b[35m', n3: '\x1b[33m', n4: '\x1b[32m', n5: '\x1b[34m' };
const tty = process.stdout.isTTY;

/** One readable line per pino record: time, node, level, message, then the fields. */
function pretty(id: string, line: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return `${id} ${line}`;
  }
  const { level, time, msg, node: _node, pid: _pid, hostname: _host, ...fields } = rec;
  const t = new Date(Number(time)).toISOString().slice(11, 23);
  const extra = Object.entries(fields)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  const tag = tty ? `${COLORS[id] ?? ''}${id}\x1b[0m` : id;
  return `${t} ${tag} ${LEVELS[Number(level)] ?? level} ${String(msg ?? '')}${extra ? `  ${extra}` : ''}`;
}

const dataRoot = path.resolve(values.data);
const cluster = await LocalCluster.start({
  size,
  httpPorts: [8101, 8102, 8103, 8104, 8105].slice(0, size),
  peerPorts: [7101, 7102, 7103, 7104, 7105].slice(0, size),
  dataRoot,
  secret: 'rollcall-local-dev-secret',
  logLevel: values['log-level'],
  onLog: (id, line) => console.log(pretty(id, line)),
});

console.log(`
Rollcall: ${size} nodes running, data in ${dataRoot}
${cluster.nodes.map((n) => `  ${n.id}  ${n.url}   (peer 127.0.0.1:${n.peerPort}, pid ${n.proc?.pid})`).join('\n')}

Try:
  curl -s ${cluster.nodes[0]!.url}/v1/cluster
  curl -s -X PUT ${cluster.nodes[1]!.url}/v1/namespaces/prod/services/orders/instances/o1 \\
       -H 'content-type: application/json' -d '{"address":"10.0.0.2","port":9000}'
  curl -s ${cluster.nodes[2]!.url}/v1/namespaces/prod/services/orders/instances
Ctrl-C stops every node.
`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  console.log('stopping…');
  await cluster.close(true);
  console.log('all nodes stopped');
  process.exit(0);
}
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
