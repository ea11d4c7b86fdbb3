/** `rollcall register | deregister | get | list`: one instance, or a service's instances. */
import type { Instance, ListPage } from '../../client/index.js';
import { type Command, untilSignal, withClient } from './command.js';
import { EXIT } from './exit-codes.js';
import { duration, GLOBAL_HELP, integer, pairs, parse, required, UsageError } from './flags.js';
import { type Io, jsonOut, table } from './output.js';

const SERVICE_OPTIONS = {
  namespace: { type: 'string', short: 'n' },
  service: { type: 'string', short: 's' },
} as const;

const ID_OPTIONS = { ...SERVICE_OPTIONS, id: { type: 'string' } } as const;

export function where(i: Pick<Instance, 'namespace' | 'service' | 'id'>): string {
  return `${i.namespace}/${i.service}/${i.id}`;
}

function describeInstance(i: Instance): string {
  const rows: [string, string][] = [
    ['id', i.id],
    ['service', `${i.namespace}/${i.service}`],
    ['cluster', i.cluster],
    ['address', `${i.address}:${i.port}`],
    ['weight', String(i.weight)],
    ['health', i.health],
    ['enabled', String(i.enabled)],
    ['kind', i.ephemeral ? `ephemeral (session ${i.sessionId ?? '?'})` : 'persistent'],
    ['tags', i.tags.join(', ') || '-'],
    [
      'metadata',
      Object.entries(i.metadata)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ') || '-',
    ],
    ['revisions', `created ${i.createRevision}, modified ${i.modRevision}, version ${i.version}`],
  ];
  return `${rows.map(([k, v]) => `${k.padEnd(11)}${v}`).join('\n')}\n`;
}

export const register: Command = {
  name: 'register',
  summary: 'register an instance (with --ttl: keep it alive until Ctrl-C)',
  help: `Usage: rollcall register --namespace NS --service SVC --id ID --address HOST --port N [options]

Registers (or updates) an instance. Without --ttl it is persistent: it stays until
'rollcall deregister'. With --ttl it is ephemeral: the command opens a session, stays in the
foreground keeping it alive, and deregisters on Ctrl-C or SIGTERM; if the command is killed,
the instance expires about one TTL later.

Options:
  -n, --namespace NS    namespace (e.g. prod)
  -s, --service SVC     service name
  --id ID               instance id
  --address HOST        address consumers connect to
  --port N              port 1..65535
  --cluster NAME        cluster (zone, or vip); default "default"
  --weight N            0..10000; default 100 (0: listed, but sent nothing)
  --tag TAG             a tag (repeat for more)
  --meta KEY=VALUE      a metadata entry (repeat for more)
  --disabled            register it disabled (not offered to consumers)
  --ttl DURATION        ephemeral, e.g. 10s (1s..24h)
  --session ID          bind it to a session you keep alive yourself ('rollcall session')

${GLOBAL_HELP}

Examples:
  rollcall register --endpoints http://127.0.0.1:8101 --namespace prod --service orders \\
    --id o1 --address 10.0.0.2 --port 9000
  rollcall register -n prod -s orders --id o2 --address 10.0.0.3 --port 9000 --cluster vip \\
    --tag canary --meta version=1.4.2 --ttl 10s
`,
  async run(argv, io) {
    const { values, globals } = parse(argv, {
      ...ID_OPTIONS,
      address: { type: 'string' },
      port: { type: 'string' },
      cluster: { type: 'string' },
      weight: { type: 'string' },
      tag: { type: 'string', multiple: true },
      meta: { type: 'string', multiple: true },
      disabled: { type: 'boolean' },
      ttl: { type: 'string' },
      session: { type: 'string' },
    });
    if (globals.help) return help(io, this);
    if (values.ttl !== undefined && values.session !== undefined) throw new UsageError('use either --ttl or --session');
    const spec = {
      namespace: required(values, 'namespace'),
      service: required(values, 'service'),
      id: required(values, 'id'),
      address: required(values, 'address'),
      port: integer(required(values, 'port'), 'port', 1, 65535)!,
      ...(values.cluster === undefined ? {} : { cluster: values.cluster }),
      ...(values.weight === undefined ? {} : { weight: integer(values.weight, 'weight', 0, 10_000)! }),
      ...(values.tag === undefined ? {} : { tags: values.tag }),
      ...(values.meta === undefined ? {} : { metadata: pairs(values.meta, 'meta')! }),
      ...(values.disabled ? { enabled: false } : {}),
    };
    const ttlMs = values.ttl === undefined ? undefined : duration(values.ttl, '--ttl');
    return withClient(io, globals, async (client) => {
      if (ttlMs === undefined) {
        const r = await client.putInstance(spec, values.session);
        const kind = values.session === undefined ? 'persistent' : `session ${values.session}`;
        if (globals.json) jsonOut(io, r);
        else
          io.out(
            `registered ${where(r.instance)} at ${r.instance.address}:${r.instance.port} (cluster ${r.instance.cluster}, ${kind}, revision ${r.revision})\n`,
          );
        return EXIT.OK;
      }
      const reg = await client.register({ ...spec, ttlMs });
      const note = (event: string, detail: Record<string, unknown>, text: string) =>
        globals.json ? io.out(`${JSON.stringify({ event, ...detail })}\n`) : io.err(`${text}\n`);
      reg.on('lost', (i) =>
        note('lost', i, `rollcall: session ${i.sessionId} was lost (${i.reason}); registering again`),
      );
      reg.on('restored', (i) =>
        note('restored', i, `rollcall: registered again under session ${i.sessionId} (revision ${i.revision})`),
      );
      if (globals.json)
        io.out(
          `${JSON.stringify({ event: 'registered', revision: reg.revision, sessionId: reg.sessionId, instance: reg.instance })}\n`,
        );
      else
        io.out(
          `registered ${where(reg.instance)} at ${reg.instance.address}:${reg.instance.port} (cluster ${reg.instance.cluster}, session ${reg.sessionId}, ttl ${ttlMs}ms, revision ${reg.revision}); keeping it alive, Ctrl-C to deregister\n`,
        );
      const sig = await untilSignal();
      await reg.close();
      if (globals.json) io.out(`${JSON.stringify({ event: 'deregistered', signal: sig })}\n`);
      else io.out(`deregistered ${where(reg.instance)}\n`);
      return EXIT.OK;
    });
  },
};

export const deregister: Command = {
  name: 'deregister',
  summary: 'remove an instance',
  help: `Usage: rollcall deregister --namespace NS --service SVC --id ID

Removes an instance. Removing one that is not registered succeeds too (exit 0,
"deleted": false), so scripts can run it twice.

Options:
  -n, --namespace NS    namespace
  -s, --service SVC     service
  --id ID               instance id

${GLOBAL_HELP}

Examples:
  rollcall deregister -n prod -s orders --id o1
  rollcall deregister -n prod -s orders --id o1 --json
`,
  async run(argv, io) {
    const { values, globals } = parse(argv, ID_OPTIONS);
    if (globals.help) return help(io, this);
    const ref = {
      namespace: required(values, 'namespace'),
      service: required(values, 'service'),
      id: required(values, 'id'),
    };
    return withClient(io, globals, async (client) => {
      const r = await client.deregister(ref);
      if (globals.json) jsonOut(io, r);
      else
        io.out(
          r.deleted
            ? `deregistered ${where(ref)} (revision ${r.revision})\n`
            : `${where(ref)} was not registered (revision ${r.revision})\n`,
        );
      return EXIT.OK;
    });
  },
};

export const get: Command = {
  name: 'get',
  summary: 'show one instance',
  help: `Usage: rollcall get --namespace NS --service SVC --id ID [--serializable]

Shows one instance. Exit code 3 when there is no such instance.

Options:
  -n, --namespace NS    namespace
  -s, --service SVC     service
  --id ID               instance id
  --serializable        answer from the node's own state (cheaper, maybe stale)

${GLOBAL_HELP}

Examples:
  rollcall get -n prod -s orders --id o1
  rollcall get -n prod -s orders --id o1 --json | jq .instance.address
`,
  async run(argv, io) {
    const { values, globals } = parse(argv, { ...ID_OPTIONS, serializable: { type: 'boolean' } });
    if (globals.help) return help(io, this);
    const ref = {
      namespace: required(values, 'namespace'),
      service: required(values, 'service'),
      id: required(values, 'id'),
    };
    return withClient(io, globals, async (client) => {
      const r = await client.get({ ...ref, ...(values.serializable ? { consistency: 'serializable' as const } : {}) });
      if (globals.json) jsonOut(io, r);
      else if (r.instance) io.out(describeInstance(r.instance));
      if (r.instance === null) {
        if (!globals.json) io.err(`rollcall: no instance ${where(ref)}\n`);
        return EXIT.NOT_FOUND;
      }
      return EXIT.OK;
    });
  },
};

export const list: Command = {
  name: 'list',
  summary: "list a service's instances",
  help: `Usage: rollcall list --namespace NS --service SVC [--cluster NAME] [--all] [--serializable]
                     [--limit N [--continue TOKEN]]

Lists a service's instances, linearizably by default (the latest committed state). A large
service is read in pages of 2,000, all at one revision, and printed whole. With --limit,
one page of at most N instances is printed, and when more are left the command to print
the next page (--continue TOKEN, with the same flags; every page is read at the first
page's revision, as kubectl and etcdctl page with --limit).

Options:
  -n, --namespace NS    namespace
  -s, --service SVC     service
  --cluster NAME        only this cluster
  --all                 include disabled instances
  --serializable        answer from the node's own state (cheaper, maybe stale)
  --limit N             print one page of at most N instances (1..10000)
  --continue TOKEN      the next page: the token the previous page printed

${GLOBAL_HELP}

Examples:
  rollcall list --namespace prod --service orders
  rollcall list --namespace prod --service orders --cluster vip --json
  rollcall list -n prod -s orders --limit 500
`,
  async run(argv, io) {
    const { values, globals } = parse(argv, {
      ...SERVICE_OPTIONS,
      cluster: { type: 'string' },
      all: { type: 'boolean' },
      serializable: { type: 'boolean' },
      limit: { type: 'string' },
      continue: { type: 'string' },
    });
    if (globals.help) return help(io, this);
    const namespace = required(values, 'namespace');
    const service = required(values, 'service');
    const limit = values.limit === undefined ? undefined : integer(values.limit, 'limit', 1, 10_000)!;
    if (values.continue !== undefined && limit === undefined)
      throw new UsageError('--continue needs --limit (the page size)');
    return withClient(io, globals, async (client) => {
      const options = {
        namespace,
        service,
        ...(values.cluster === undefined ? {} : { cluster: values.cluster }),
        ...(values.all ? { includeDisabled: true } : {}),
        ...(values.serializable ? { consistency: 'serializable' as const } : {}),
      };
      const r: ListPage =
        limit === undefined
          ? await client.list(options)
          : await client.listPage({
              ...options,
              limit,
              ...(values.continue === undefined ? {} : { continue: values.continue }),
            });
      if (globals.json) {
        jsonOut(io, r);
        return EXIT.OK;
      }
      const rows = r.instances.map((i) => [
        i.id,
        i.cluster,
        `${i.address}:${i.port}`,
        String(i.weight),
        i.enabled ? i.health : `${i.health} (disabled)`,
        i.ephemeral ? 'ephemeral' : 'persistent',
        i.tags.join(',') || '-',
        String(i.modRevision),
      ]);
      if (rows.length > 0)
        io.out(table(['ID', 'CLUSTER', 'ADDRESS', 'WEIGHT', 'HEALTH', 'KIND', 'TAGS', 'REVISION'], rows));
      io.out(
        `${r.instances.length} instance${r.instances.length === 1 ? '' : 's'} of ${namespace}/${service} at revision ${r.revision}\n`,
      );
      if (r.continue !== undefined) {
        const again = argv.filter(
          (a, i) => a !== '--continue' && argv[i - 1] !== '--continue' && !a.startsWith('--continue='),
        );
        io.out(`more: rollcall list ${again.join(' ')} --continue ${r.continue}\n`);
      }
      return EXIT.OK;
    });
  },
};

export function help(io: Io, c: Command): number {
  io.out(c.help);
  return EXIT.OK;
}
