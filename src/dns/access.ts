/**
 * What DNS may answer when access control is on (`--acl` or `--token-file`), as Consul's DNS
 * interface reads with the agent's DNS token (`acl.tokens.dns`, else its default token):
 * `--dns-token-file FILE` holds a token secret, and DNS answers only what that token may
 * read (docs/consul.md "DNS", Access).
 *
 * - In scope (a `read` or `admin` token whose namespaces and service-name prefixes cover the
 *   service, checked by the native API's rule, TokenAuthority.authorize): answered as ever.
 * - Out of scope, a `register` token, or no DNS token at all: the service name answers as if
 *   it did not exist (NXDOMAIN), as Consul's DNS does under a deny policy. So an absent and a
 *   hidden service look alike, and DNS says nothing about what it may not show.
 * - A DNS token this node does not know (revoked, a typo, not yet replicated to this member):
 *   every service question is SERVFAIL, as Consul answers when its DNS token is not found
 *   ("ACL not found" fails the lookup). Resolvers take it as this server failing; a hidden
 *   or absent name is not claimed either way, and the change is logged.
 *
 * The token is looked up on every question in the node's applied state (a map lookup by
 * the secret's digest, computed once), so a revoke takes effect on a node as soon as it is
 * applied there, like on the HTTP APIs. A --token-file token is found once, at start (the
 * file is read once too). The secret is never logged: the log names the token by its name
 * and id.
 */
import type { Logger } from '../log/index.js';
import type { AclToken } from '../registry/index.js';
import { principalOf, secretDigest } from '../server/acl.js';
import { type Principal, TokenAuthority } from '../server/auth.js';
import type { NodeApi } from '../server/node-api.js';

/** How DNS is asked to check access; absent or null on a node without --acl or --token-file: everything answers. */
export interface DnsAccessOptions {
  /** The DNS token's secret (--dns-token-file); null: none, so no service name answers. */
  readonly secret: string | null;
  /** --token-file tokens; null: none. */
  readonly file: TokenAuthority | null;
  /** --acl: replicated tokens are looked up too. */
  readonly acl: boolean;
}

export type TokenRegistry = Pick<NodeApi['registry'], 'tokenByHash'>;

/** What DNS reads with: the token's principal, none configured, or a token not known here. */
type Reader =
  | { readonly kind: 'token'; readonly principal: Principal }
  | { readonly kind: 'none' }
  | { readonly kind: 'invalid' };

const NONE: Reader = { kind: 'none' };
const INVALID: Reader = { kind: 'invalid' };

export class DnsAccess {
  readonly #digest: string | null;
  readonly #filePrincipal: Principal | null;
  readonly #fileReader: Reader | null;
  readonly #secretGiven: boolean;
  /** The replicated token last found and its principal, so a question allocates nothing while it stands. */
  #token: AclToken | null = null;
  #reader: Reader | null = null;
  /** What the last question read with, for one log line per change. */
  #loggedKind: Reader['kind'] | null = null;
  #loggedPrincipal: Principal | null = null;

  constructor(
    options: DnsAccessOptions,
    private readonly registry: TokenRegistry | null,
    private readonly logger: Logger,
  ) {
    const { secret } = options;
    this.#digest = secret === null || !options.acl ? null : secretDigest(secret).toString('hex');
    const fromFile = secret === null || options.file === null ? null : options.file.identify(`Bearer ${secret}`);
    this.#filePrincipal = fromFile?.ok === true ? fromFile.principal : null;
    this.#fileReader = this.#filePrincipal === null ? null : { kind: 'token', principal: this.#filePrincipal };
    this.#secretGiven = secret !== null;
  }

  /** Whether DNS can read at all now: false when a DNS token is configured but not known here (answer SERVFAIL). */
  usable(): boolean {
    return this.#current().kind !== 'invalid';
  }

  /** Whether the DNS token may read any service at all (not without one, nor with role register). */
  readsAny(): boolean {
    const r = this.#current();
    return r.kind === 'token' && r.principal.role !== 'register';
  }

  /** Whether the DNS token may read `service` in `namespace` (the names as registered). */
  mayRead(namespace: string, service: string): boolean {
    const r = this.#current();
    return r.kind === 'token' && TokenAuthority.authorize(r.principal, 'read', namespace, service).ok;
  }

  #current(): Reader {
    let r: Reader;
    if (this.#filePrincipal !== null) r = this.#fileReader!;
    else if (!this.#secretGiven) r = NONE;
    else {
      const t = this.#digest === null || this.registry === null ? undefined : this.registry.tokenByHash(this.#digest);
      if (t === undefined) r = INVALID;
      else {
        if (t !== this.#token) {
          this.#token = t;
          this.#reader = { kind: 'token', principal: principalOf(t) };
        }
        r = this.#reader!;
      }
    }
    this.#logChange(r);
    return r;
  }

  /** One line when what DNS reads with changes (a revoke applied, a token created late), never the secret. */
  #logChange(r: Reader): void {
    const principal = r.kind === 'token' ? r.principal : null;
    if (r.kind === this.#loggedKind && principal === this.#loggedPrincipal) return;
    this.#loggedKind = r.kind;
    this.#loggedPrincipal = principal;
    if (r.kind === 'invalid') {
      this.logger.warn(
        { flag: '--dns-token-file' },
        'the DNS token is not valid on this node (revoked, mistyped, or not replicated here yet): DNS answers SERVFAIL to every service name',
      );
      return;
    }
    if (r.kind === 'none') return; // said once at start (index.ts)
    const p = r.principal;
    const fields = {
      flag: '--dns-token-file',
      principal: p.name,
      tokenId: p.tokenId ?? null,
      role: p.role,
      namespaces: p.namespaces,
      servicePrefixes: p.servicePrefixes ?? null,
    };
    if (p.role === 'register')
      this.logger.warn(fields, 'the DNS token has role register, which may not read: DNS answers no service name');
    else this.logger.info(fields, 'DNS answers what its token may read');
  }
}
