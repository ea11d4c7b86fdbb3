/**
 * `rollcall acl bootstrap | token create|list|revoke|self`: replicated access tokens (`--acl`,
 * docs/security.md "Access control"). A secret is printed once, when it is made: the
 * cluster keeps only its digest.
 */
import type { AclTokenCreated, AclTokenInfo, AclTokenSelf } from '../../client/index.js';
import { type Command, withClient } from './command.js';
import { EXIT } from './exit-codes.js';
import { GLOBAL_HELP, parse, UsageError } from './flags.js';
import { help } from './instances.js';
import { type Io, jsonOut, table } from './output.js';

const ROLES = ['read', 'register', 'admin'] as const;
/** Tokens per request of `token list` (the server caps a page at its --list-max-items). */
const TOKEN_PAGE = 1_000;

export const acl: Command = {
  name: 'acl',
  summary: 'replicated access tokens: bootstrap, token create|list|revoke|self',
  help: `Usage: rollcall acl bootstrap [--name NAME]
       rollcall acl token create --name NAME --role read|register|admin [--namespace NS]... [--service-prefix P]...
       rollcall acl token list
       rollcall acl token revoke ID
       rollcall acl token self

  bootstrap      makes the cluster's first admin token (once per cluster; needs no token)
  token create   makes a token (admin); --namespace and --service-prefix limit it (repeat them)
  token list     every token: id, name, role, scopes (never a secret)
  token revoke   revokes a token by id: every node refuses it once it has applied the revoke
  token self     the token this command sends (ROLLCALL_TOKEN, --token), described: any role
                 may ask; works for --token-file tokens too (no id or revision then)

A secret is printed once, when it is made; keep it (the cluster stores only its SHA-256).
The nodes must run with --acl (docs/security.md).

${GLOBAL_HELP}

Examples:
  rollcall acl bootstrap
  export ROLLCALL_TOKEN=rc_...
  rollcall acl token create --name orders --role register --namespace prod --service-prefix orders
  rollcall acl token revoke 3f6c1d9e-...
  rollcall acl token self --json
`,
  async run(argv, io) {
    const { values, positionals, globals } = parse(
      argv,
      {
        name: { type: 'string' },
        role: { type: 'string' },
        namespace: { type: 'string', multiple: true },
        'service-prefix': { type: 'string', multiple: true },
      },
      true,
    );
    if (globals.help) return help(io, this);
    const [sub, action, arg, ...extra] = positionals;
    if (extra.length > 0) throw new UsageError(`unexpected ${JSON.stringify(extra[0])}`);
    if (sub === 'bootstrap') {
      if (action !== undefined) throw new UsageError(`unexpected ${JSON.stringify(action)}`);
      return withClient(io, globals, async (client) => {
        const t = await client.aclBootstrap(values.name);
        showCreated(io, t, globals.json);
        return EXIT.OK;
      });
    }
    if (sub !== 'token') throw new UsageError(`unknown acl subcommand ${JSON.stringify(sub ?? '')} (bootstrap, token)`);
    switch (action) {
      case 'create': {
        if (arg !== undefined) throw new UsageError(`unexpected ${JSON.stringify(arg)}`);
        if (values.name === undefined) throw new UsageError('--name is required');
        const role = values.role;
        if (role === undefined || !(ROLES as readonly string[]).includes(role))
          throw new UsageError('--role must be read, register or admin');
        const spec = {
          name: values.name,
          role: role as (typeof ROLES)[number],
          ...(values.namespace === undefined ? {} : { namespaces: values.namespace }),
          ...(values['service-prefix'] === undefined ? {} : { servicePrefixes: values['service-prefix'] }),
        };
        return withClient(io, globals, async (client) => {
          showCreated(io, await client.createToken(spec), globals.json);
          return EXIT.OK;
        });
      }
      case 'list':
        if (arg !== undefined) throw new UsageError(`unexpected ${JSON.stringify(arg)}`);
        return withClient(io, globals, async (client) => {
          // Every page (GET /v1/acl/tokens is paginated like every listing).
          const first = await client.listTokens({ limit: TOKEN_PAGE });
          const tokens = [...first.tokens];
          for (let next = first.continue; next !== undefined; ) {
            const page = await client.listTokens({ limit: TOKEN_PAGE, continue: next });
            tokens.push(...page.tokens);
            next = page.continue;
          }
          if (globals.json) jsonOut(io, { revision: first.revision, tokens });
          else io.out(table(['ID', 'NAME', 'ROLE', 'NAMESPACES', 'SERVICE PREFIXES', 'CREATED'], tokens.map(row)));
          return EXIT.OK;
        });
      case 'revoke':
        if (arg === undefined) throw new UsageError('acl token revoke needs the token id (rollcall acl token list)');
        return withClient(io, globals, async (client) => {
          const r = await client.revokeToken(arg);
          if (globals.json) jsonOut(io, r);
          else io.out(`revoked ${arg} at revision ${r.revision}\n`);
          return EXIT.OK;
        });
      case 'self':
        if (arg !== undefined) throw new UsageError(`unexpected ${JSON.stringify(arg)}`);
        return withClient(io, globals, async (client) => {
          const me = await client.tokenSelf();
          if (globals.json) jsonOut(io, me);
          else
            io.out(table(['ID', 'NAME', 'ROLE', 'NAMESPACES', 'SERVICE PREFIXES', 'CREATED', 'SOURCE'], [selfRow(me)]));
          return EXIT.OK;
        });
      default:
        throw new UsageError(
          `unknown acl token subcommand ${JSON.stringify(action ?? '')} (create, list, revoke, self)`,
        );
    }
  },
};

function row(t: AclTokenInfo): string[] {
  return [
    t.id,
    t.name,
    t.role,
    t.namespaces?.join(',') ?? '*',
    t.servicePrefixes?.join(',') ?? '*',
    String(t.createRevision),
  ];
}

/** A --token-file token has no id or revision: shown as `-`. */
function selfRow(t: AclTokenSelf): string[] {
  return [
    t.id ?? '-',
    t.name,
    t.role,
    t.namespaces?.join(',') ?? '*',
    t.servicePrefixes?.join(',') ?? '*',
    t.createRevision === undefined ? '-' : String(t.createRevision),
    t.source,
  ];
}

function showCreated(io: Io, t: AclTokenCreated, json: boolean): void {
  if (json) return jsonOut(io, t);
  io.out(
    `${table(['ID', 'NAME', 'ROLE', 'NAMESPACES', 'SERVICE PREFIXES', 'CREATED'], [row(t)])}secret: ${t.secret}\n(shown only now: the cluster keeps only its digest)\n`,
  );
}
