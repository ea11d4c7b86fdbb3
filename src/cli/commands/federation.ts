/** `rollcall federation list | join URL | leave`: datacenters federated by gossip (docs/federation.md). */
import { ApiError, UnavailableError } from '../../client/index.js';
import { type Command, withClient } from './command.js';
import { EXIT, reportError } from './exit-codes.js';
import { GLOBAL_HELP, type Globals, parse, UsageError } from './flags.js';
import { help } from './instances.js';
import { type Io, jsonOut, table } from './output.js';

interface FederationView {
  readonly datacenter: string;
  readonly node: string;
  readonly enabled: boolean;
  readonly datacenters: readonly {
    readonly name: string;
    readonly local: boolean;
    readonly status: string;
    readonly leader: string | null;
    readonly revision: number;
    readonly rttMs: number | null;
    readonly lastHeard: number | null;
    readonly members: readonly { readonly id: string; readonly address: string; readonly status: string }[];
  }[];
}

export const federation: Command = {
  name: 'federation',
  summary: 'datacenters federated by gossip: list, join, leave',
  help: `Usage: rollcall federation list
       rollcall federation join URL
       rollcall federation leave

  list    every datacenter the answering node knows: status (alive, suspect, unreachable),
          members alive, leader, revision, round-trip time and last heard
  join    joins the datacenter of the node at URL (any node of another datacenter); gossip
          tells every other node of every datacenter
  leave   every member of this cluster stops gossiping and forgets the other datacenters

The nodes must run with --federation-secret (docs/federation.md).

${GLOBAL_HELP}

Examples:
  rollcall federation join http://10.1.0.1:8101
  rollcall federation list --json
`,
  async run(argv, io) {
    const { positionals, globals } = parse(argv, {}, true);
    if (globals.help) return help(io, this);
    const [sub, arg, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`unexpected ${JSON.stringify(extra[0])}`);
    try {
      switch (sub) {
        case 'list':
        case undefined: {
          const view = (await call(globals, 'GET', '/v1/federation')) as FederationView;
          if (globals.json) jsonOut(io, view);
          else io.out(listTable(view));
          return EXIT.OK;
        }
        case 'join': {
          if (arg === undefined || !/^https?:\/\/\S+$/.test(arg))
            throw new UsageError('federation join needs the URL of a node of another datacenter (http(s)://host:port)');
          const r = await call(globals, 'POST', '/v1/federation/join', { url: arg });
          if (globals.json) jsonOut(io, r);
          else io.out(`joining through ${arg}; 'rollcall federation list' shows it once gossip has reached it\n`);
          return EXIT.OK;
        }
        case 'leave': {
          if (arg !== undefined) throw new UsageError(`unexpected ${JSON.stringify(arg)}`);
          // Every member leaves, or the ones that did not would gossip the federation back.
          const members = await withMembers(io, globals);
          if (typeof members === 'number') return members;
          const left: string[] = [];
          for (const url of members) {
            await call({ ...globals, endpoints: url }, 'DELETE', '/v1/federation');
            left.push(url);
          }
          if (globals.json) jsonOut(io, { left });
          else io.out(`left the federation: ${left.join(', ')}\n`);
          return EXIT.OK;
        }
        default:
          throw new UsageError(`unknown federation subcommand ${JSON.stringify(sub)} (list, join, leave)`);
      }
    } catch (err) {
      return reportError(io, err, globals.json);
    }
  },
};

function listTable(v: FederationView): string {
  if (!v.enabled)
    return `federation is off on ${v.node} (datacenter ${v.datacenter}); start the nodes with --federation-secret\n`;
  const now = Date.now();
  const rows = v.datacenters.map((d) => [
    d.name + (d.local ? '*' : ''),
    d.status.toUpperCase() === 'ALIVE' ? 'alive' : d.status.toUpperCase(),
    `${d.members.filter((m) => m.status === 'alive').length}/${d.members.length}`,
    d.leader ?? '-',
    String(d.revision),
    d.rttMs === null ? '-' : `${d.rttMs}ms`,
    d.local || d.lastHeard === null ? '-' : `${Math.max(0, Math.round((now - d.lastHeard) / 100) / 10)}s ago`,
  ]);
  return `datacenters as seen by ${v.node} in ${v.datacenter} (* this one)\n${table(['DATACENTER', 'STATUS', 'ALIVE', 'LEADER', 'REVISION', 'RTT', 'HEARD'], rows)}`;
}

/** The HTTP address of every member of the cluster (GET /v1/cluster), or an exit code. */
async function withMembers(io: Io, g: Globals): Promise<string[] | number> {
  let urls: string[] = [];
  // The members of the cluster in --endpoints, whatever --dc says: federation commands act on these nodes' own gossip.
  const code = await withClient(io, { ...g, dc: undefined }, async (client) => {
    const st = await client.clusterStatus();
    urls = st.members.map((m) => m.http).filter((u): u is string => typeof u === 'string' && u !== '');
    if (urls.length < st.members.length)
      throw new UnavailableError('some members have not reported their HTTP address yet; retry shortly');
    return EXIT.OK;
  });
  return code === EXIT.OK ? urls : code;
}

/** One request to the first endpoint that answers; a catalogue error is thrown as ApiError. */
async function call(g: Globals, method: string, path: string, body?: unknown): Promise<unknown> {
  const failures: string[] = [];
  for (const endpoint of g.endpoints
    .split(',')
    .map((s) => s.trim().replace(/\/+$/, ''))
    .filter(Boolean)) {
    let res: Response;
    try {
      res = await fetch(`${endpoint}${path}`, {
        method,
        headers: {
          ...(g.token === undefined ? {} : { authorization: `Bearer ${g.token}` }),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(g.timeoutMs),
      });
    } catch (err) {
      failures.push(`${endpoint}: ${(err as Error).message}`);
      continue;
    }
    const text = await res.text();
    const parsed: unknown = text === '' ? null : JSON.parse(text);
    if (res.ok) return parsed;
    const e = (parsed as { error?: { code?: string; message?: string; field?: string } } | null)?.error ?? {};
    if (res.status >= 500) {
      failures.push(`${endpoint}: ${e.code ?? res.status} ${e.message ?? ''}`);
      continue;
    }
    throw new ApiError(
      res.status,
      e.code ?? `HTTP_${res.status}`,
      e.message ?? `HTTP ${res.status}`,
      e.field,
      e as Record<string, unknown>,
      res.headers.get('x-rollcall-node'),
    );
  }
  throw new UnavailableError(`no node answered ${method} ${path} (${failures.join('; ')})`);
}
