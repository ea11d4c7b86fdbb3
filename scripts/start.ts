/**
 * `npm start`: a real local 3-node cluster (5 with `-- --nodes 5`). HTTP on
 * 127.0.0.1:8101.., the Consul-compatible API on 8501.., DNS on 8601.., the probe listener
 * (/healthz, /readyz) on 8701.., peers on 7101..,
 * data under ./data, readable logs; Ctrl-C stops every node cleanly.
 *
 * `-- --tls`: a throwaway CA and certificates under ./data/tls (kept while they are valid),
 * both APIs over HTTPS and mutual TLS between the nodes (docs/security.md).
 */
import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { LocalCluster } from './local-cluster.js';
import { ensureClusterTls } from './tls-certs.js';

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '3' },
    data: { type: 'string', default: 'data' },
    'log-level': { type: 'string', default: 'info' },
    tls: { type: 'boolean', default: false },
  },
});
const size = Number(values.nodes);
if (size !== 3 && size !== 5) {
  console.error('npm start: --nodes must be 3 or 5');
  process.exit(2);
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const COLORS: Record<string, string> = {
  n1: '\x1b[36m',
  n2: '\x1b[35m',
  n3: '\x1b[33m',
  n4: '\x1b[32m',
  n5: '\x1b[34m',
};
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
const ids = ['n1', 'n2', 'n3', 'n4', 'n5'].slice(0, size);
const tlsSetup = values.tls ? await ensureClusterTls(path.join(dataRoot, 'tls'), ids) : null;
const tls = tlsSetup?.tls ?? null;
const caPem = tls === null ? null : readFileSync(tls.ca);
const scheme = tls === null ? 'http' : 'https';
const curl = tls === null ? 'curl -s' : `curl -s --cacert ${path.relative(process.cwd(), tls.ca)}`;
const cluster = await LocalCluster.start({
  size,
  httpPorts: [8101, 8102, 8103, 8104, 8105].slice(0, size),
  peerPorts: [7101, 7102, 7103, 7104, 7105].slice(0, size),
  dataRoot,
  secret: 'rollcall-local-dev-secret',
  // The dev cluster lets a person isolate a node (below); never set this in production.
  env: { ROLLCALL_TEST_FAULTS: '1' },
  // Node i serves the Consul-compatible API on 127.0.0.1:850i and DNS on 127.0.0.1:860i
  // (docs/consul.md), and its probes on 127.0.0.1:870i (docs/reliability.md).
  nodeEnv: (id) => ({
    ROLLCALL_CONSUL_LISTEN: `127.0.0.1:${8500 + Number(id.slice(1))}`,
    ROLLCALL_DNS_LISTEN: `127.0.0.1:${8600 + Number(id.slice(1))}`,
    ROLLCALL_PROBE_LISTEN: `127.0.0.1:${8700 + Number(id.slice(1))}`,
    // With --tls the Consul API is HTTPS too, with the node's certificate; DNS stays plain (dig).
    ...(tls === null
      ? {}
      : { ROLLCALL_CONSUL_TLS_CERT: tls.nodes[id]!.cert, ROLLCALL_CONSUL_TLS_KEY: tls.nodes[id]!.key }),
  }),
  ...(tls === null ? {} : { tls }),
  logLevel: values['log-level'],
  onLog: (id, line) => console.log(pretty(id, line)),
  // As in production: a node whose event loop lags sheds load (docs/api.md, Overload).
  shedOnLag: true,
});

const tlsNote =
  tls === null
    ? ''
    : `TLS: HTTPS and mutual-TLS peers with ${tlsSetup!.created ? 'a new' : 'the'} throwaway CA ${tls.ca}
     (client certificate ${tls.client.cert}, key ${tls.client.key})
`;
console.log(`
Rollcall: ${size} nodes running, data in ${dataRoot}
${cluster.nodes.map((n) => `  ${n.id}  ${n.url}   (Consul API ${scheme}://127.0.0.1:${8500 + Number(n.id.slice(1))}, DNS 127.0.0.1:${8600 + Number(n.id.slice(1))}, probes http://127.0.0.1:${8700 + Number(n.id.slice(1))}, peer 127.0.0.1:${n.peerPort}, pid ${n.proc?.pid})`).join('\n')}
${tlsNote}
Try:
  ${curl} ${cluster.nodes[0]!.url}/v1/cluster
  ${curl} -X PUT ${cluster.nodes[1]!.url}/v1/namespaces/prod/services/orders/instances/o1 \\
       -H 'content-type: application/json' -d '{"address":"10.0.0.2","port":9000}'
  ${curl} ${cluster.nodes[2]!.url}/v1/namespaces/prod/services/orders/instances
  ${curl} '${scheme}://127.0.0.1:8501/v1/health/service/orders?ns=prod&passing'   # Consul API
  dig @127.0.0.1 -p 8601 orders.service.prod.ns.consul SRV                   # DNS
  curl -s http://127.0.0.1:8701/healthz                                      # probe listener
Type a command and Enter to break things on purpose:
  kill n2 | restart n2 | pause n2 | resume n2 | isolate n2 | heal | status | help
Ctrl-C stops every node.
`);

const HELP = `  kill ID      kill -9 the node (no cleanup; unsynced data lost)
  restart ID   start a killed node again from its data directory
  stop ID      stop the node gracefully (SIGTERM)
  pause ID     SIGSTOP the node (it stops answering anyone)
  resume ID    SIGCONT a paused node
  isolate ID   cut the node off from its peers (clients can still reach it)
  heal         reconnect every isolated node
  status       who runs, who leads`;

/** One JSON request to a node, over HTTPS with the throwaway CA when --tls (global fetch would not trust it). */
function call(url: string, method: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const options = {
      method,
      timeout: 1000,
      headers: text === undefined ? {} : { 'content-type': 'application/json' },
      ...(caPem === null ? {} : { ca: caPem }),
    };
    const req = (url.startsWith('https:') ? httpsRequest : httpRequest)(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        let json: unknown = raw;
        try {
          json = JSON.parse(raw);
        } catch {
          // not JSON: keep the text
        }
        resolve({ status: res.statusCode ?? 0, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 1 s')));
    req.on('error', reject);
    req.end(text);
  });
}

async function setFaults(url: string, body: unknown): Promise<void> {
  const res = await call(`${url}/v1/test/faults`, 'PUT', body);
  if (res.status < 200 || res.status > 299) throw new Error(`${url} answered ${res.status}`);
}

async function command(line: string): Promise<void> {
  const [verb, id] = line.trim().split(/\s+/);
  if (!verb) return;
  const need = (): string => {
    if (!id || !cluster.nodes.some((n) => n.id === id))
      throw new Error(`which node? one of ${cluster.nodes.map((n) => n.id).join(', ')}`);
    return id;
  };
  switch (verb) {
    case 'kill':
      await cluster.kill(need());
      return console.log(`killed ${id} (kill -9)`);
    case 'restart':
      await cluster.restart(need());
      return console.log(`${id} is running again`);
    case 'stop':
      await cluster.stop(need());
      return console.log(`${id} stopped`);
    case 'pause':
      cluster.pause(need());
      return console.log(`${id} paused (SIGSTOP)`);
    case 'resume':
      cluster.resume(need());
      return console.log(`${id} resumed`);
    case 'isolate': {
      const target = need();
      const others = cluster.nodes.filter((n) => n.id !== target).map((n) => n.id);
      for (const n of cluster.running()) {
        await setFaults(
          n.url,
          n.id === target ? { dropTo: others, dropFrom: others } : { dropTo: [target], dropFrom: [target] },
        );
      }
      return console.log(`${target} is cut off from ${others.join(', ')}`);
    }
    case 'heal':
      for (const n of cluster.running()) await setFaults(n.url, {});
      return console.log('every node reconnected');
    case 'status': {
      for (const n of cluster.nodes) {
        const state = n.proc ? (n.paused ? 'paused' : `running (pid ${n.proc.pid})`) : 'down';
        let leader = '';
        if (n.proc && !n.paused) {
          try {
            const body = (await call(`${n.url}/v1/cluster`, 'GET')).json as { leader: string | null; term: number };
            leader = `  sees leader ${body.leader ?? 'none'} in term ${body.term}`;
          } catch {
            leader = '  (not answering)';
          }
        }
        console.log(`  ${n.id}  ${n.url}  ${state}${leader}`);
      }
      return;
    }
    case 'help':
      return console.log(HELP);
    default:
      console.log(`unknown command ${JSON.stringify(verb)}\n${HELP}`);
  }
}

if (process.stdin.isTTY || process.env.ROLLCALL_START_COMMANDS === '1') {
  const rl = createInterface({ input: process.stdin });
  // One command at a time, in the order typed.
  let queue = Promise.resolve();
  rl.on('line', (line) => {
    queue = queue
      .then(() => command(line))
      .catch((err: unknown) => console.log(`error: ${err instanceof Error ? err.message : String(err)}`));
  });
}

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
