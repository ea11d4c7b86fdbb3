/**
 * The answer to one question, as sections of records: a pure function of the question, the
 * node's registry and a source of randomness (for the shuffle), so it is tested without
 * sockets. What goes where follows Consul (hashicorp/consul agent/dns/router.go):
 *
 * - A / AAAA / ANY on a service: one record per usable instance of that address family,
 *   named as asked; instances at a host name answer with one CNAME when no address does.
 * - SRV: one record per instance (priority 1, weight, port, target) and, for an instance
 *   at an IP address, its A/AAAA record under the target name in the additional section.
 * - A name that does not exist, or a service with no usable instance: NXDOMAIN, with the
 *   SOA in the authority section. A name that exists without records of the asked type:
 *   NOERROR with the SOA (NODATA).
 * - A name outside the domain: REFUSED (Rollcall does not recurse).
 * - A service whose endpoint cache is still being read, with nothing for this name yet:
 *   SERVFAIL, so the resolver retries (lookup.ts).
 * - A service name in another datacenter (`.<dc>.dc`, or Consul's older `.<dc>` form): asked
 *   of a live member there (remote.ts), so the answer may come later (a promise); a
 *   datacenter the federation does not know is NXDOMAIN, one that does not answer SERVFAIL.
 *   SRV targets are then `<hex>.addr.<that dc>.<domain>`.
 * - On a member a corruption check marked corrupt: SERVFAIL for every question, names outside
 *   the domain included, so resolvers go to another server (docs/operations.md).
 *
 * Answers are shuffled on every query, so clients that take the first record spread load.
 */
import type { Answer } from 'dns-packet';
import { type Endpoint, endpointLimit, type RegistryView, type ServiceDirectory, shuffle } from './lookup.js';
import { type DnsName, parseName } from './names.js';
import { addressKind, addressRecord, cnameRecord, soaRecord, srvRecord, srvTarget } from './records.js';
import type { RemoteAnswer, RemoteDirectory } from './remote.js';

export type Rcode = 'NOERROR' | 'NXDOMAIN' | 'REFUSED' | 'SERVFAIL';

export const RCODE: Readonly<Record<Rcode | 'FORMERR' | 'SERVFAIL' | 'NOTIMP', number>> = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
};

export interface Reply {
  readonly rcode: Rcode;
  /** Set for every name inside the domain: this node is the authority for it. */
  readonly authoritative: boolean;
  readonly answers: Answer[];
  readonly authorities: Answer[];
  readonly additionals: Answer[];
}

export interface AnswerContext {
  readonly directory: ServiceDirectory;
  readonly registry: Pick<RegistryView, 'revision'>;
  /** Lower case, no trailing dot. */
  readonly domain: string;
  readonly datacenter: string;
  /** The Rollcall namespace a name without `.ns` looks in (--consul-namespace). */
  readonly namespace: string;
  readonly ttl: number;
  readonly random: () => number;
  /** Other datacenters' services (federation on); absent: a name in another datacenter is NXDOMAIN. */
  readonly remote?: Pick<RemoteDirectory, 'lookup'>;
  /**
   * Whether a corruption check marked this member corrupt (src/ops/corruption-check.ts): then
   * every question is SERVFAIL, as the native API refuses reads with 503 CORRUPT, so resolvers
   * ask another server rather than trust this member's state. Absent: never.
   */
  readonly markedCorrupt?: () => boolean;
}

/** The question as dns-packet decodes it: `type` is a name (`A`, `SRV`, `UNKNOWN_65`). */
export interface Asked {
  readonly name: string;
  readonly type: string;
}

/** The reply: at once from this node's registry, or later (a promise) for another datacenter's service. */
export function answerQuestion(q: Asked, ctx: AnswerContext): Reply | Promise<Reply> {
  if (ctx.markedCorrupt?.() === true)
    return { rcode: 'SERVFAIL', authoritative: false, answers: [], authorities: [], additionals: [] };
  const name = parseName(q.name, ctx.domain);
  switch (name.kind) {
    case 'foreign':
      return { rcode: 'REFUSED', authoritative: false, answers: [], authorities: [], additionals: [] };
    case 'unknown':
      return negative('NXDOMAIN', ctx);
    case 'apex':
      return q.type === 'SOA' || q.type === 'ANY'
        ? positive([soaRecord(ctx.domain, ctx.registry.revision)])
        : negative('NOERROR', ctx);
    case 'addr':
      return answerAddr(q, name, ctx);
    case 'service':
      return answerService(q, name, ctx);
  }
}

function positive(answers: Answer[], additionals: Answer[] = []): Reply {
  return { rcode: 'NOERROR', authoritative: true, answers, authorities: [], additionals };
}

/** NXDOMAIN, or NODATA (NOERROR without answers): the SOA says for how long to believe it. */
function negative(rcode: 'NOERROR' | 'NXDOMAIN', ctx: AnswerContext): Reply {
  return {
    rcode,
    authoritative: true,
    answers: [],
    authorities: [soaRecord(ctx.domain, ctx.registry.revision)],
    additionals: [],
  };
}

function wantsFamily(type: string, family: 4 | 6): boolean {
  return type === 'ANY' || type === (family === 4 ? 'A' : 'AAAA');
}

function answerAddr(q: Asked, name: Extract<DnsName, { kind: 'addr' }>, ctx: AnswerContext): Reply {
  // The datacenter label of an addr name is ignored, as Consul does: the name only encodes an address.
  if (!wantsFamily(q.type, name.family)) return negative('NOERROR', ctx);
  return positive([addressRecord(q.name, name.address, name.family, ctx.ttl)]);
}

function answerService(
  q: Asked,
  name: Extract<DnsName, { kind: 'service' }>,
  ctx: AnswerContext,
): Reply | Promise<Reply> {
  if (name.datacenter !== null && name.datacenter.toLowerCase() !== ctx.datacenter.toLowerCase()) {
    // Another datacenter: without federation there is none, so the name does not exist.
    if (ctx.remote === undefined) return negative('NXDOMAIN', ctx);
    const answer = ctx.remote.lookup(name.datacenter, name.namespace ?? ctx.namespace, name.service);
    return answer instanceof Promise
      ? answer.then((a) => remoteReply(q, name, a, ctx))
      : remoteReply(q, name, answer, ctx);
  }
  const endpoints = ctx.directory.endpoints(
    name.namespace ?? ctx.namespace,
    name.service,
    name.tag,
    ctx.random,
    endpointLimit(q.type),
  );
  // The service's cache is still being read and has nothing for this name yet (lookup.ts): not known, so not NXDOMAIN.
  if (endpoints === 'pending')
    return { rcode: 'SERVFAIL', authoritative: false, answers: [], authorities: [], additionals: [] };
  return endpointsReply(q, endpoints, ctx.datacenter, ctx);
}

/** The records of `endpoints` (shuffled here), in datacenter `dc`; NXDOMAIN when there are none. */
function endpointsReply(q: Asked, endpoints: Endpoint[], dc: string, ctx: AnswerContext): Reply {
  if (endpoints.length === 0) return negative('NXDOMAIN', ctx);
  shuffle(endpoints, ctx.random);
  const reply = q.type === 'SRV' ? srvAnswers(q.name, endpoints, dc, ctx) : addressAnswers(q, endpoints, ctx);
  return reply.answers.length > 0 ? reply : negative('NOERROR', ctx);
}

/** Another datacenter's answer: its usable endpoints with the tag, a uniform sample of the type's limit. */
function remoteReply(
  q: Asked,
  name: Extract<DnsName, { kind: 'service' }>,
  answer: RemoteAnswer,
  ctx: AnswerContext,
): Reply {
  switch (answer.kind) {
    case 'unknown-datacenter':
      return negative('NXDOMAIN', ctx);
    case 'unreachable':
      return { rcode: 'SERVFAIL', authoritative: false, answers: [], authorities: [], additionals: [] };
    case 'endpoints': {
      const tag = name.tag?.toLowerCase() ?? null;
      const matching: Endpoint[] = [];
      for (const e of answer.endpoints) if (tag === null || e.tags.includes(tag)) matching.push(e.endpoint);
      // More than an answer holds: shuffled whole, then cut (a uniform sample; the list holds a few thousand at most).
      const limit = endpointLimit(q.type);
      const sample = matching.length > limit ? shuffle(matching, ctx.random).slice(0, limit) : matching;
      return endpointsReply(q, sample, answer.datacenter, ctx);
    }
  }
}

function srvAnswers(qname: string, endpoints: readonly Endpoint[], dc: string, ctx: AnswerContext): Reply {
  const answers: Answer[] = [];
  const additionals: Answer[] = [];
  const seen = new Set<string>();
  const resolved = new Set<string>();
  for (const e of endpoints) {
    const key = `${e.address}\u0000${e.port}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const kind = addressKind(e.address);
    const target = srvTarget(e.address, kind, dc, ctx.domain);
    answers.push(srvRecord(qname, target, e.port, e.weight, ctx.ttl));
    if (kind !== 'host' && !resolved.has(target)) {
      resolved.add(target);
      additionals.push(addressRecord(target, e.address, kind === 'ipv4' ? 4 : 6, ctx.ttl));
    }
  }
  return positive(answers, additionals);
}

function addressAnswers(q: Asked, endpoints: readonly Endpoint[], ctx: AnswerContext): Reply {
  const answers: Answer[] = [];
  const seen = new Set<string>();
  let alias: string | null = null;
  for (const e of endpoints) {
    const kind = addressKind(e.address);
    if (kind === 'host') {
      alias ??= e.address;
      continue;
    }
    const family = kind === 'ipv4' ? 4 : 6;
    if (!wantsFamily(q.type, family) || seen.has(e.address)) continue;
    seen.add(e.address);
    answers.push(addressRecord(q.name, e.address, family, ctx.ttl));
  }
  // Consul's rule: a CNAME only when no address answers (a name cannot be both).
  if (
    answers.length === 0 &&
    alias !== null &&
    (q.type === 'A' || q.type === 'AAAA' || q.type === 'ANY' || q.type === 'CNAME')
  )
    answers.push(cnameRecord(q.name, alias, ctx.ttl));
  return positive(answers);
}
