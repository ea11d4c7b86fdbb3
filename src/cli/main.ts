#!/usr/bin/env node
/**
 * The `rollcall` command. `rollcall server ...` runs a node; the user commands
 * (register, list, watch, ...) come with the client SDK.
 *
 * Nothing but node:util is imported up front: each path loads what it needs when it runs
 * (`server --help` loads nothing, `--help` the user commands for their summaries, `server`
 * the config parser and then the server stack), so no command pays for another's modules.
 */
import { parseArgs } from 'node:util';

const SERVER_HELP = `Usage: rollcall server [options]

Runs one Rollcall node. Flags may also come from environment variables (ROLLCALL_ID,
ROLLCALL_DATA, ...) or a JSON config file (--config FILE) with the same names.

Options:
  --id ID                  this node's id (must appear in --peers)
  --data DIR               data directory (LevelDB)
  --listen HOST:PORT       HTTP API address
  --peer-listen HOST:PORT  peer (Raft) address; defaults to this node's entry in --peers
  --peers ID=HOST:PORT,... how this node reaches every founding member (its own; wins over
                           the address a member was added with: docs/node.md, Members)
  --cluster-secret SECRET  shared secret peers authenticate with (≥ 8 characters)
  --join                   start empty and wait to be added, instead of founding a cluster
  --initial-cluster-token TOKEN  names the cluster this node founds, the same for every
                           founding member and for no other founding (a datacenter rebuilt
                           on the same addresses above all): the cluster id is derived from
                           it and the member ids. Read only when founding (docs/operations.md,
                           Cluster ids)
  --force-new-cluster      disaster recovery: restart this survivor as a one-member cluster
                           from its own data, with a new cluster id; once only, then add
                           members with --join (docs/operations.md, Disaster recovery)
  --corruption-check-interval SECONDS  the leader compares every member's state-machine
                           hash this often (default 300; 0: only rollcall check)
  --log-level LEVEL        fatal|error|warn|info|debug|trace (default info)
  --tick-ms N              Raft tick (default 50); election timeout = election-ticks ticks
  --election-ticks N       default 10
  --compact-every N        compact the log when it holds N applied entries, keeping the
                           newest min(5000, N/2) for followers to catch up from (default 10000)
  --token-file FILE        bearer tokens with roles (JSON: [{"token","role","namespaces"?}]);
                           auth is off without it; with --acl, break-glass tokens
  --acl                    replicated access tokens (every node alike): POST /v1/acl/bootstrap
                           or rollcall acl bootstrap first (docs/security.md)
  --auth-failure-limit N   failed authentications per source address per minute before
                           429 RATE_LIMITED (default 30; 0: no limit)
  --consul-listen HOST:PORT  serve the Consul-compatible HTTP API there (off by default;
                           docs/consul.md)
  --datacenter NAME        this cluster's datacenter, for Consul clients and federation
                           (default dc1; letters, digits and '-', at most 63)
  --federation-secret S    federate with other datacenters (docs/federation.md): every
                           gossip message and forwarded ?dc= request is signed with S
                           (at least 8 characters; off without it)
  --federation-join URL[,URL...]  any node of another datacenter (http(s)://host:port)
  --federation-interval-ms N  the gossip round (default 1000; tests shorten it)
  --federation-tls-ca FILE  the CAs other datacenters' HTTPS certificates must chain to
                           (default: the system's)
  --federation-tls-cert FILE --federation-tls-key FILE  the client certificate presented
                           to other datacenters (for their --tls-client-ca; default none)
  --consul-namespace NS    the namespace Consul requests see (default default; ?ns= overrides)
  --dns-listen HOST:PORT   answer DNS over UDP and TCP there (off by default;
                           docs/consul.md, DNS); names in --datacenter and --consul-namespace
  --dns-domain DOMAIN      the domain DNS answers for (default consul)
  --dns-ttl SECONDS        TTL of DNS answers (default 0)
  --dns-token-file FILE    with --acl or --token-file: the token DNS reads with (a file
                           holding its secret); without it no service name answers
  --tls-cert FILE --tls-key FILE  serve the HTTP API (and /ui) over HTTPS with this
                           certificate chain and key (PEM; docs/security.md)
  --tls-client-ca FILE     with --tls-cert: require client certificates signed by this CA
  --consul-tls-cert FILE --consul-tls-key FILE [--consul-tls-client-ca FILE]
                           the same for the Consul API (--consul-listen)
  --dns-tls-cert FILE --dns-tls-key FILE [--dns-tls-client-ca FILE]
                           DNS over TLS on the TCP side of --dns-listen (UDP stays plain)
  --peer-tls-cert FILE --peer-tls-key FILE --peer-tls-ca FILE
                           mutual TLS between nodes; the certificate must name this node
                           in a URI SAN rollcall://node/<id>. SIGHUP reloads every
                           certificate and key without dropping connections
  --watch-buffer-bytes N   cut a watcher with more unread bytes than N (default 1048576)
  --watch-progress-ms N    progress event on idle watches every N..2N ms (default 5000)
  --alert-webhook URL      the leader POSTs fired and resolved alerts here (JSON)
  --list-max-items N       most items one listing answer or page holds; a larger
                           listing must be paginated with limit/continue (default 10000)
  --max-event-loop-lag-ms N  shed new work (503 OVERLOADED, Retry-After) while the event
                           loop lags more than N ms (default 200; 0: never)
  --max-pending-work N     shed new work while more than N requests wait in the node
                           (default 10000; 0: never)
  --max-inflight-requests N  shed new work while N requests are in flight, watch streams
                           not counted (default 0: never). Probes and keepalives
                           are never shed
  --max-connections N      most concurrent HTTP connections (default 0: no limit)
  --max-requests-per-connection N  close a keep-alive connection after N requests
                           (default 0: no limit)
  --probe-listen HOST:PORT  serve GET /healthz and /readyz there too, from a thread of
                           their own that a busy event loop does not hold up (off by
                           default; docs/reliability.md, Probes on their own port);
                           https://HOST:PORT serves them with the --tls-* files
  --probe-stall-limit-ms N  that /healthz answers 503 once the main event loop has not
                           run for N ms (default 5000)
  --config FILE            JSON file with any of the above

Example:
  rollcall server --id n1 --data ./data/n1 --listen 127.0.0.1:8101 \\
    --peer-listen 127.0.0.1:7101 --peers n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103 \\
    --cluster-secret local-dev-secret
`;

const help = (commandsHelp: string): string => `Usage: rollcall <command> [options]

Commands:
  server      run a Rollcall node (rollcall server --help)
${commandsHelp}

Run 'rollcall <command> --help' for a command's options.
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    const { COMMANDS_HELP } = await import('./commands/index.js');
    process.stdout.write(help(COMMANDS_HELP));
    return command === undefined ? 2 : 0;
  }
  if (command === 'server') {
    const { values } = parseArgs({
      args: rest,
      options: {
        id: { type: 'string' },
        data: { type: 'string' },
        listen: { type: 'string' },
        'peer-listen': { type: 'string' },
        peers: { type: 'string' },
        'cluster-secret': { type: 'string' },
        join: { type: 'boolean' },
        'initial-cluster-token': { type: 'string' },
        'force-new-cluster': { type: 'boolean' },
        'corruption-check-interval': { type: 'string' },
        'log-level': { type: 'string' },
        'tick-ms': { type: 'string' },
        'election-ticks': { type: 'string' },
        'compact-every': { type: 'string' },
        'token-file': { type: 'string' },
        acl: { type: 'boolean' },
        'auth-failure-limit': { type: 'string' },
        'consul-listen': { type: 'string' },
        datacenter: { type: 'string' },
        'consul-namespace': { type: 'string' },
        'dns-listen': { type: 'string' },
        'dns-domain': { type: 'string' },
        'dns-ttl': { type: 'string' },
        'dns-token-file': { type: 'string' },
        'tls-cert': { type: 'string' },
        'tls-key': { type: 'string' },
        'tls-client-ca': { type: 'string' },
        'consul-tls-cert': { type: 'string' },
        'consul-tls-key': { type: 'string' },
        'consul-tls-client-ca': { type: 'string' },
        'dns-tls-cert': { type: 'string' },
        'dns-tls-key': { type: 'string' },
        'dns-tls-client-ca': { type: 'string' },
        'peer-tls-cert': { type: 'string' },
        'peer-tls-key': { type: 'string' },
        'peer-tls-ca': { type: 'string' },
        'watch-buffer-bytes': { type: 'string' },
        'watch-progress-ms': { type: 'string' },
        'alert-webhook': { type: 'string' },
        'list-max-items': { type: 'string' },
        'max-event-loop-lag-ms': { type: 'string' },
        'max-pending-work': { type: 'string' },
        'max-inflight-requests': { type: 'string' },
        'max-connections': { type: 'string' },
        'max-requests-per-connection': { type: 'string' },
        'probe-listen': { type: 'string' },
        'probe-stall-limit-ms': { type: 'string' },
        'federation-secret': { type: 'string' },
        'federation-join': { type: 'string' },
        'federation-interval-ms': { type: 'string' },
        'federation-tls-ca': { type: 'string' },
        'federation-tls-cert': { type: 'string' },
        'federation-tls-key': { type: 'string' },
        config: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    });
    if (values.help) {
      process.stdout.write(SERVER_HELP);
      return 0;
    }
    // Loaded here, not at the top: the server stack (fastify, LevelDB, Raft) costs user
    // commands ~1 s of start-up, and the config parser pulls in the peer transport.
    const { resolveConfig } = await import('../server/config.js');
    const config = resolveConfig(values);
    const { runServer } = await import('../server/run.js');
    await runServer(config);
    return -1; // keeps running until a signal
  }
  const { COMMANDS_HELP, findCommand, runCommand } = await import('./commands/index.js');
  const user = findCommand(command);
  if (user) return runCommand(user, rest);
  process.stderr.write(`rollcall: unknown command ${JSON.stringify(command)}\n\n${help(COMMANDS_HELP)}`);
  return 2;
}

/** By name: the classes live in modules only `server` loads. */
const REFUSALS = new Set(['StorageError', 'NodeError', 'TransportError', 'StateMachineVersionError']);

function isRefusal(err: unknown): err is Error {
  if (!(err instanceof Error)) return false;
  return REFUSALS.has(err.name) || (err as { syscall?: unknown }).syscall === 'listen';
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    // ConfigError by name: src/server/config.js is only loaded for `server`.
    if (
      (err instanceof Error && err.name === 'ConfigError') ||
      (err instanceof Error && 'code' in err && String((err as { code: unknown }).code).startsWith('ERR_PARSE_ARGS'))
    ) {
      process.stderr.write(`rollcall: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    // A founding refused by its peers (src/node/founding-guard.ts): its own code, so a
    // supervisor can stop restarting it and an operator can follow the runbook.
    if (err instanceof Error && err.name === 'MemberBootstrappedError') {
      process.stderr.write(`rollcall: ${err.message} (MEMBER_ALREADY_BOOTSTRAPPED)\n`);
      process.exitCode = 12;
      return;
    }
    // Our own refusals (storage format, cluster id, version gate, a port in use) are answers for
    // the operator, who needs the message and its code, not our stack; anything else is a bug.
    if (isRefusal(err)) {
      const code = (err as { code?: unknown }).code;
      process.stderr.write(`rollcall: ${err.message}${typeof code === 'string' ? ` (${code})` : ''}\n`);
    } else {
      process.stderr.write(`rollcall: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    }
    process.exitCode = 1;
  },
);
