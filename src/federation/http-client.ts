/**
 * Every connection this node opens to another datacenter: gossip (host.ts), `?dc=`
 * forwarding and cross-datacenter watches (forward.ts, watch-relay.ts through it), DNS
 * lookups of remote names (src/dns/remote.ts). One owner, so one set of TLS material
 * (`--federation-tls-ca`, `--federation-tls-cert`, `--federation-tls-key`) applies to all
 * of them and one SIGHUP reloads it.
 *
 * - Trust: with `--federation-tls-ca`, another datacenter's API certificate must chain to
 *   one of those CAs and name the host dialed (only them: the system's store is not used, as
 *   with `--peer-tls-ca`); without it, the system's store (and NODE_EXTRA_CA_CERTS, which
 *   Node adds to it). This node's own `--tls-client-ca` is not trusted implicitly: the CA of
 *   this datacenter's clients says nothing about who may serve another datacenter.
 * - Client certificate: `--federation-tls-cert`/`--federation-tls-key`, presented to an API
 *   that asks for one (`--tls-client-ca` there); none without them.
 * - Pools: node:http(s) keep-alive agents, one per kind of traffic, so a cross-datacenter
 *   watch that holds its connection for hours never takes a gossip message's place:
 *   `gossip` (at most 4 sockets per address: host.ts drops messages beyond that), `dns`
 *   (16: the remote directory's lookups are bounded and cached), `forward` (no limit, as
 *   fetch had: every forwarded request and watch stream its own connection when need be).
 * - Reload (SIGHUP, `reload`): the files are read and checked again; a good set gets new
 *   https agents for every new request. The old agents are retired, not destroyed: a request
 *   or watch stream under way keeps its connection to the end, and an idle keep-alive
 *   socket of theirs is closed instead of reused. A bad set keeps the old material, with an
 *   error line naming the file.
 * - `close()` destroys every socket (the node's shutdown).
 *
 * node:https rather than fetch: Node 20's global fetch takes a CA or a client certificate
 * only through an undici dispatcher from the `undici` package (a dependency of its own,
 * whose version must then agree with the fetch built into Node); node:https takes them per
 * agent, which the gossip and DNS paths already used.
 */
import { type ClientRequest, Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from 'node:https';
import type { Socket } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { Logger } from '../log/index.js';
import { FEDERATION_TLS_FLAGS } from '../security/settings.js';
import {
  type ClientTlsFiles,
  type ClientTlsMaterial,
  loadClientTlsMaterial,
  TlsMaterialError,
} from '../security/tls-files.js';
import { TlsStartError } from '../security/tls-reloader.js';

/** Which pool a request uses (see the file comment). */
export type FederationTraffic = 'gossip' | 'forward' | 'dns';

/** Sockets per address and pool. */
export const POOL_SIZES: { readonly [K in FederationTraffic]: number } = {
  gossip: 4,
  forward: Number.POSITIVE_INFINITY,
  dns: 16,
};

const TRAFFIC: readonly FederationTraffic[] = ['gossip', 'forward', 'dns'];

type Pools<A> = { readonly [K in FederationTraffic]: A };

/** The request options a caller may set (the client picks the agent and the TLS material). */
export type FederationRequestOptions = Omit<RequestOptions, 'agent' | 'ca' | 'cert' | 'key'>;

export class FederationHttpClient {
  readonly name = 'federation';
  #material: ClientTlsMaterial | null;
  readonly #http: Pools<HttpAgent>;
  #https: Pools<HttpsAgent>;
  /** https agents of earlier material that still carry a request; closed with the client. */
  readonly #retired = new Set<HttpsAgent>();
  #closed = false;

  /**
   * @param material null: the system's CAs and no client certificate.
   * @param keepAlive false: a connection per request (nothing is left open between requests).
   */
  constructor(
    material: ClientTlsMaterial | null = null,
    private readonly keepAlive = true,
  ) {
    this.#material = material;
    this.#http = pools((maxSockets) => new HttpAgent({ keepAlive, maxSockets }));
    this.#https = this.httpsPools(material);
  }

  /**
   * Reads and checks the files (`--federation-tls-*`); an unusable one is logged, naming its
   * flag and file, and thrown as TlsStartError, as a listener's certificate is at start.
   */
  static load(files: ClientTlsFiles, logger: Logger, now: Date = new Date()): FederationHttpClient {
    try {
      const material = loadClientTlsMaterial(files, now);
      logger.info({ tls: 'federation', ...describe(material) }, 'TLS for the links to other datacenters');
      return new FederationHttpClient(material);
    } catch (err) {
      if (!(err instanceof TlsMaterialError)) throw err;
      const setting = flagFor(files, err.file);
      logger.error(
        { tls: 'federation', setting, file: err.file, problem: err.problem },
        `TLS certificate refused: ${err.message}`,
      );
      throw new TlsStartError(setting, err);
    }
  }

  /** The material in force (null: the system's CAs, no client certificate). */
  get material(): ClientTlsMaterial | null {
    return this.#material;
  }

  /**
   * An HTTP(S) request to another datacenter through this client's pool for `traffic`; the
   * caller ends it and handles its events as with node:http's `request`.
   */
  request(
    traffic: FederationTraffic,
    url: URL,
    options: FederationRequestOptions,
    onResponse?: (res: IncomingMessage) => void,
  ): ClientRequest {
    if (this.#closed) throw new Error('the federation HTTP client is closed');
    if (url.protocol === 'https:') return httpsRequest(url, { ...options, agent: this.#https[traffic] }, onResponse);
    if (url.protocol === 'http:') return httpRequest(url, { ...options, agent: this.#http[traffic] }, onResponse);
    throw new Error(`${url.protocol} is not http: or https:`);
  }

  /**
   * SIGHUP: reads the files again; a good set is in force for every new request (see the
   * file comment), a bad one keeps the old. True when reloaded.
   */
  reload(logger: Logger, now: Date = new Date()): boolean {
    const files = this.#material?.files;
    if (files === undefined || this.#closed) return false;
    let material: ClientTlsMaterial;
    try {
      material = loadClientTlsMaterial(files, now);
      // What OpenSSL refuses although the files parsed: found before any request uses it.
      createSecureContext(contextOptions(material));
    } catch (err) {
      const file = err instanceof TlsMaterialError ? err.file : (files.cert ?? files.ca ?? '');
      logger.error(
        {
          tls: 'federation',
          setting: flagFor(files, file),
          file,
          problem: err instanceof TlsMaterialError ? err.problem : String(err),
        },
        `TLS reload refused, keeping the previous certificate: ${(err as Error).message}`,
      );
      return false;
    }
    const old = this.#https;
    this.#material = material;
    this.#https = this.httpsPools(material);
    for (const agent of TRAFFIC.map((t) => old[t])) this.retire(agent);
    logger.info({ tls: 'federation', ...describe(material) }, 'TLS certificate reloaded for federation');
    return true;
  }

  /** Destroys every socket, in use or idle, of every pool. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const t of TRAFFIC) {
      this.#http[t].destroy();
      this.#https[t].destroy();
    }
    for (const agent of this.#retired) agent.destroy();
    this.#retired.clear();
  }

  private httpsPools(material: ClientTlsMaterial | null): Pools<HttpsAgent> {
    const tls = material === null ? {} : contextOptions(material);
    return pools((maxSockets) => new HttpsAgent({ keepAlive: this.keepAlive, maxSockets, ...tls }));
  }

  /**
   * No new request goes to `agent`; its idle sockets close now, and the others once their
   * request ends (a keep-alive agent keeps a freed socket only while `keepAlive` is set).
   */
  private retire(agent: HttpsAgent): void {
    (agent as unknown as { keepAlive: boolean }).keepAlive = false;
    for (const sockets of Object.values(agent.freeSockets)) for (const s of sockets ?? []) s.destroy();
    if (busySockets(agent) === 0) {
      agent.destroy();
      return;
    }
    this.#retired.add(agent);
    const onFree = (socket: Socket) => {
      // The agent itself destroys the freed socket (keepAlive is off); once the last is gone, so is the agent.
      socket.once('close', () => {
        if (busySockets(agent) > 0) return;
        agent.off('free', onFree);
        this.#retired.delete(agent);
        agent.destroy();
      });
    };
    agent.on('free', onFree);
  }
}

function pools<A>(make: (maxSockets: number) => A): Pools<A> {
  return { gossip: make(POOL_SIZES.gossip), forward: make(POOL_SIZES.forward), dns: make(POOL_SIZES.dns) };
}

function busySockets(agent: HttpsAgent): number {
  let n = 0;
  for (const sockets of Object.values(agent.sockets)) n += sockets?.length ?? 0;
  return n;
}

function contextOptions(m: ClientTlsMaterial): { ca?: Buffer; cert?: Buffer; key?: Buffer } {
  return {
    ...(m.ca === null ? {} : { ca: m.ca }),
    ...(m.cert === null || m.key === null ? {} : { cert: m.cert, key: m.key }),
  };
}

/** The flag that named `file` (for the error a user sees). */
function flagFor(files: ClientTlsFiles, file: string): string {
  const { prefix, caFlag } = FEDERATION_TLS_FLAGS;
  if (file === files.cert) return `--${prefix}-cert`;
  if (file === files.key) return `--${prefix}-key`;
  return `--${caFlag}`;
}

/** For logs: what is in force, never the key. */
function describe(m: ClientTlsMaterial): Record<string, string | null> {
  return {
    ca: m.files.ca ?? 'the system store',
    cert: m.files.cert,
    subject: m.leaf?.subject.replace(/\n/g, ', ') ?? null,
    notAfter: m.leaf === null ? null : new Date(m.leaf.validTo).toISOString(),
    fingerprint256: m.leaf?.fingerprint256 ?? null,
  };
}

/**
 * Whether a failed request's error is about TLS (a certificate this side does not trust, or
 * the other side refusing ours): a configuration problem, worth a warning, not an outage.
 */
export function isTlsError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string') return false;
  return (
    code.startsWith('ERR_SSL_') ||
    code.startsWith('ERR_TLS_') ||
    code.includes('CERT') ||
    code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' ||
    code === 'UNABLE_TO_GET_ISSUER_CERT' ||
    code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'
  );
}
