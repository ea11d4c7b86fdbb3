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
 * applied there, like on the HTTP APIs. A --token-file token is found when the secret is
 * set: at start, and when SIGHUP reloads --dns-token-file (setSecret; the token file itself
 * is read once). The secret is never logged: the log names the token by its name and id.
 *
 * A DNS token that can never read (`dnsTokenProblem`) stops the node at start and is refused
 * by a reload; one that may yet become valid (a replicated token's secret this node does not
 * know, perhaps not replicated here yet) is taken, with one warning.
 */
import type { Logger } from '../log/index.js';
import type { AclToken } from '../registry/index.js';
import { principalOf, REPLICATED_SECRET_FORM, secretDigest } from '../server/acl.js';
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

/**
 * Why `secret` can never be a DNS token that reads anything under these token checks, or null
 * when it is one or may become one. Decided from the flags and the --token-file alone (both
 * fixed while the node runs), never from the replicated state, which may be behind:
 *
 * - in the --token-file: a `read` or `admin` entry is fine; a `register` entry may never read
 *   (a file token is found before a replicated one, so nothing else can make it read);
 * - not in it, without --acl: no other token exists;
 * - not in it, with --acl: only a secret of the form POST /v1/acl/tokens makes
 *   (REPLICATED_SECRET_FORM) can ever be a replicated token. One of that form that this node
 *   does not know may be created elsewhere and not be applied here yet: it is taken, and DNS
 *   answers SERVFAIL until it is (with one warning).
 */
export function dnsTokenProblem(secret: string, checks: Pick<DnsAccessOptions, 'file' | 'acl'>): string | null {
  if (checks.file === null && !checks.acl) return 'needs --acl or --token-file: without them DNS checks no token';
  const fromFile = checks.file?.identify(`Bearer ${secret}`);
  if (fromFile?.ok === true) {
    const p = fromFile.principal;
    return p.role === 'register'
      ? `the token ${p.name} in --token-file has role register, which may not read: DNS would answer no service name; give it a read token`
      : null;
  }
  if (!checks.acl)
    return 'holds none of the --token-file tokens, and without --acl there is no other token: DNS would answer no service name';
  if (!REPLICATED_SECRET_FORM.test(secret))
    return 'holds none of the --token-file tokens, nor a replicated token secret (rc_ and 43 characters, as POST /v1/acl/tokens makes them): no node can ever accept it';
  return null;
}

export class DnsAccess {
  #digest: string | null = null;
  #filePrincipal: Principal | null = null;
  #fileReader: Reader | null = null;
  #secretGiven = false;
  /** The replicated token last found and its principal, so a question allocates nothing while it stands. */
  #token: AclToken | null = null;
  #reader: Reader | null = null;
  /** What the last question read with, for one log line per change. */
  #loggedKind: Reader['kind'] | null = null;
  #loggedPrincipal: Principal | null = null;

  constructor(
    private readonly options: DnsAccessOptions,
    private readonly registry: TokenRegistry | null,
    private readonly logger: Logger,
  ) {
    this.#take(options.secret);
  }

  /**
   * Reads with `secret` from the next question on (a SIGHUP reload of --dns-token-file), and
   * logs at once what DNS now reads with (its name and scopes, or that it is not valid here).
   */
  setSecret(secret: string): void {
    this.#take(secret);
    this.announce();
  }

  /** Logs what DNS reads with now, if that changed since it was last said (at start: once). */
  announce(): void {
    this.#current();
  }

  #take(secret: string | null): void {
    const { file, acl } = this.options;
    this.#digest = secret === null || !acl ? null : secretDigest(secret).toString('hex');
    const fromFile = secret === null || file === null ? null : file.identify(`Bearer ${secret}`);
    this.#filePrincipal = fromFile?.ok === true ? fromFile.principal : null;
    this.#fileReader = this.#filePrincipal === null ? null : { kind: 'token', principal: this.#filePrincipal };
    this.#secretGiven = secret !== null;
    this.#token = null;
    this.#reader = null;
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

  /**
   * Whether some service that `namespace` and `service` name in any case (as a name matches,
   * lookup.ts, remote.ts) may be in the DNS token's scope. False: none is, whichever of them
   * a datacenter has, so it need not be asked. Sound because the names a registry takes and a
   * token's namespaces and prefixes are ASCII, which lower-cases letter by letter.
   */
  mayReadSomeCase(namespace: string, service: string): boolean {
    const r = this.#current();
    if (r.kind !== 'token' || r.principal.role === 'register') return false;
    const { namespaces, servicePrefixes } = r.principal;
    if (namespaces !== null) {
      const ns = namespace.toLowerCase();
      if (!namespaces.some((n) => n.toLowerCase() === ns)) return false;
    }
    if (servicePrefixes != null) {
      const svc = service.toLowerCase();
      if (!servicePrefixes.some((p) => svc.startsWith(p.toLowerCase()))) return false;
    }
    return true;
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
        'the DNS token is not valid on this node (revoked, mistyped, or not replicated here yet): DNS answers SERVFAIL to every service name until it is',
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
