/**
 * What the HTTP fuzzer sends: requests built from the node's own route table (its
 * /openapi.json), mostly aimed at a real route with nearly valid parameters and bodies so
 * they get past the first check, mixed with what a hostile or broken client sends: other
 * methods, odd and unicode path segments, unknown and repeated query parameters, headers
 * no library would send (too large, bad characters, no Host), bad JSON, wrong framing
 * (short, long, chunked, both lengths), bodies over the limit.
 *
 * Generated values come from small pools most of the time (a few namespaces, services,
 * instance and session ids), so requests meet what earlier requests created.
 *
 * Two choices keep the node's state free of changes nobody asked for, so that "a refused
 * request changes nothing" can be checked by the revision alone (run.ts): sessions opened
 * by the fuzzer live at least 4 hours (no expiry during a run), and PUT /v1/health/policy
 * always carries a stale If-Match (the policy that turns health checks off stays; the
 * document is still validated first). The node's own id (n1) is never removed, and no
 * member is added unless `membership` is on (memberBody).
 */
import fc from 'fast-check';

export interface RouteSpec {
  readonly method: string;
  /** OpenAPI form: /v1/sessions/{id}/keepalive */
  readonly template: string;
  readonly pathParams: readonly string[];
  readonly query: readonly string[];
  readonly headers: readonly string[];
  /** The JSON schema of the body, or null when the route takes none. */
  readonly body: Readonly<Record<string, unknown>> | null;
}

/** The route table of a node, from its OpenAPI document. */
export function routeTable(openapi: {
  paths: Record<
    string,
    Record<
      string,
      {
        parameters?: { name: string; in: string }[];
        requestBody?: { content?: Record<string, { schema?: Record<string, unknown> }> };
      }
    >
  >;
}): RouteSpec[] {
  const out: RouteSpec[] = [];
  for (const [template, ops] of Object.entries(openapi.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const params = op.parameters ?? [];
      const of = (where: string): string[] => params.filter((p) => p.in === where).map((p) => p.name);
      out.push({
        method: method.toUpperCase(),
        template,
        pathParams: of('path'),
        query: of('query'),
        headers: of('header'),
        body: op.requestBody?.content?.['application/json']?.schema ?? null,
      });
    }
  }
  return out;
}

export interface FuzzRequest {
  /** For reports: method and target as sent (cut), and what was odd about it. */
  readonly summary: string;
  /** The request line and headers as sent (cut), for reports. */
  readonly head: string;
  readonly method: string;
  readonly route: RouteSpec | null;
  readonly chunks: readonly Buffer[];
  readonly halfClose: boolean;
  readonly isHead: boolean;
  readonly bodyBytes: number;
}

export interface Tokens {
  readonly admin: string;
  readonly read: string;
  /** register, limited to namespace `fz`. */
  readonly registerFz: string;
  /** register, every namespace. */
  readonly register: string;
}

/** The node never removed from under the fuzzer. */
export const SELF_ID = 'n1';
/** Namespaces, services, instance and session ids requests aim at. */
export const NAMESPACES = ['fz', 'prod', 'other'] as const;
const SERVICES = ['web', 'api'];
const INSTANCES = ['i1', 'i2', 'i3', 'x:y@z'];
const SESSIONS = ['s1', 's2', 's3', 'orders-7f3a', 'a.b:c@d'];
const MEMBERS = ['n2', 'n9', 'learner-1'];
const FOUR_HOURS = 4 * 3_600_000;
const DAY = 86_400_000;
/** A policy revision no run reaches: PUT /v1/health/policy is validated, then refused (412). */
export const STALE_POLICY_REVISION = '"4000000000"';

const pick = <T>(xs: readonly T[]): fc.Arbitrary<T> => fc.constantFrom(...xs);
/** `map[key]` for the map's own keys only: generated names include `__proto__` and `constructor`. */
const own = <T>(map: Readonly<Record<string, T>>, key: string): T | undefined =>
  Object.hasOwn(map, key) ? map[key] : undefined;
const weighted = <T>(...arbs: [number, fc.Arbitrary<T>][]): fc.Arbitrary<T> =>
  fc.oneof(...arbs.map(([weight, arbitrary]) => ({ weight, arbitrary })));

/** Path segments that are odd: empty, dot segments, bad or dangerous percent-encoding, long, unicode, raw bytes. */
const oddSegment: fc.Arbitrary<string> = weighted(
  [
    6,
    pick([
      '',
      '.',
      '..',
      '%',
      '%2F',
      '%00',
      '%ZZ',
      '%2e%2e',
      '*',
      '-x',
      '_x',
      '%C3%A9',
      '%F0%9F%A6%84',
      'x%20y',
      '%C0%AF',
      '%E0%A4%A',
      'n1%00',
      'x?y',
      'x#y',
    ]),
  ],
  [2, pick(['a'.repeat(300), 'b'.repeat(1100), 'é', 'ü/x', '🦄', 'a b', '\u0000', 'a\tb'])],
  [2, fc.string({ unit: 'binary', maxLength: 24 }).map(encodeURIComponent)],
  [1, fc.string({ unit: 'grapheme', maxLength: 12 })],
);

function poolFor(template: string, name: string): readonly string[] {
  if (name === 'ns') return NAMESPACES;
  if (name === 'svc') return SERVICES;
  if (name === 'name') return ['app-js', 'store-js', 'nope', 'app.js'];
  if (template.startsWith('/v1/sessions')) return SESSIONS;
  if (template.startsWith('/v1/cluster/members')) return MEMBERS;
  return INSTANCES;
}

function segment(template: string, name: string): fc.Arbitrary<string> {
  const pool = poolFor(template, name);
  return weighted([12, pick(pool).map(encodeURIComponent)], [2, oddSegment]).map((v) => {
    // Never remove this node: the run would end in a cluster without a voter.
    if (template.startsWith('/v1/cluster/members')) {
      let decoded = v;
      try {
        decoded = decodeURIComponent(v);
      } catch {
        /* not decodable: cannot name n1 */
      }
      if (decoded.trim().replace(/\0/g, '') === SELF_ID) return 'n2';
    }
    return v;
  });
}

const bool = weighted([4, pick(['true', 'false'])], [1, pick(['1', 'yes', 'TRUE', ''])]);
const name = weighted([6, pick([...NAMESPACES, ...SERVICES, 'default', 'vip'])], [1, oddSegment]);
const smallInt = weighted(
  [6, pick(['0', '1', '2', '3', '5', '10'])],
  [2, pick(['-1', '1.5', '1e3', 'abc', '', '9007199254740993', '0x10', ' 1'])],
  [1, fc.integer().map(String)],
);
const QUERY_VALUES: Readonly<Record<string, fc.Arbitrary<string>>> = {
  consistency: weighted([4, pick(['linearizable', 'serializable'])], [1, pick(['strong', '', 'SERIALIZABLE'])]),
  cluster: name,
  namespace: name,
  service: name,
  includeDisabled: bool,
  instances: bool,
  local: bool,
  health: weighted([4, pick(['healthy', 'usable', 'all'])], [1, pick(['down', ''])]),
  // Far-future revisions make the read wait its full timeout (5 s): rare.
  minRevision: weighted([60, smallInt], [1, pick(['999999999'])]),
  fromRevision: weighted([4, pick(['1', '2', '5'])], [1, smallInt], [1, pick(['999999999'])]),
  index: smallInt,
  // Blocking queries wait as long as `wait`: only short ones, and odd ones that are refused.
  wait: weighted([4, pick(['0ms', '1ms', '50ms', '100ms'])], [1, pick(['10h', '5', '-1s', '', '1s'])]),
  limit: weighted([4, pick(['1', '2', '10', '10000'])], [1, pick(['0', '-1', 'abc', '1000000000', '1e2'])]),
  continue: weighted(
    [2, fc.base64String({ maxLength: 40 })],
    [1, pick(['', 'abc', 'x'.repeat(9000)])],
    [1, fc.string({ maxLength: 20 })],
  ),
};

function queryString(route: RouteSpec | null): fc.Arbitrary<string> {
  const known = route?.query ?? [];
  const key =
    known.length > 0
      ? weighted([6, pick(known)], [1, pick(['colour', 'x', '__proto__'])], [1, fc.string({ maxLength: 8 })])
      : weighted([1, pick(['x', 'limit'])], [1, fc.string({ maxLength: 8 })]);
  const pair = key.chain((k) =>
    (own(QUERY_VALUES, k) ?? weighted([3, smallInt], [1, fc.string({ maxLength: 12 })])).map((v) => [k, v] as const),
  );
  return weighted([3, fc.constant([] as (readonly [string, string])[])], [4, fc.array(pair, { maxLength: 4 })]).map(
    (pairs) => {
      const kv = [...pairs];
      // A blocking query never waits long: give it a short wait unless one is there.
      if (kv.some(([k]) => k === 'index') && !kv.some(([k]) => k === 'wait')) kv.push(['wait', '50ms']);
      return kv.length === 0
        ? ''
        : `?${kv.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')}`;
    },
  );
}

/** Nearly valid values for a JSON schema, by field name first (pools), then by type; sometimes anything. */
function valueFor(
  field: string,
  schema: Readonly<Record<string, unknown>> | undefined,
  depth: number,
): fc.Arbitrary<unknown> {
  const special = own(SPECIAL_FIELDS, field);
  // ttlMs keeps to its own values: a random number could open a session that expires mid-run.
  if (field === 'ttlMs' && special !== undefined) return special;
  const typed = special ?? bySchema(schema, depth);
  return weighted([8, typed], [1, fc.jsonValue({ maxDepth: 2 })]);
}

const SPECIAL_FIELDS: Readonly<Record<string, fc.Arbitrary<unknown>>> = {
  ttlMs: weighted(
    [6, fc.integer({ min: FOUR_HOURS, max: DAY })],
    [2, pick([0, 999, 1000.5, DAY + 1, -1, '5000', null])],
  ),
  sessionId: weighted([6, pick(SESSIONS)], [1, pick(['', '_x', 'a b', 'x'.repeat(129), 'é'])]),
  address: weighted([4, fc.ipV4()], [1, pick(['', 'host.example', 'a\nb', 'x'.repeat(256), '::1'])]),
  port: weighted([4, fc.integer({ min: 1, max: 65535 })], [1, pick([0, 65536, -1, '80', 80.5])]),
  id: weighted([4, pick(MEMBERS)], [1, pick(['', 'a b', 'x'.repeat(65)])]),
  to: pick([SELF_ID, 'n2', 'n9', '', 5]),
  report: fc.record(
    {
      successRatio: fc.oneof(fc.double({ min: 0, max: 1, noNaN: true }), fc.constant(2)),
      p99Ms: fc.nat(),
      cpu: fc.double({ min: 0, max: 1, noNaN: true }),
      bogus: fc.nat(),
    },
    { requiredKeys: [] },
  ),
  environment: weighted([3, pick(['prod', 'test'])], [1, pick(['pr od', ''])]),
  allow: fc.array(
    fc.record(
      {
        namespace: pick([...NAMESPACES, '*']),
        service: pick([...SERVICES, '*']),
        cidr: pick(['10.0.0.0/8', '::1/128', '1.2.3.4', '10.0.0.0/33']),
      },
      { requiredKeys: [] },
    ),
    { maxLength: 2 },
  ),
  deny: fc.array(
    fc.record(
      { namespace: pick([...NAMESPACES, '*']), cidr: pick(['192.168.0.0/16', 'example.com/8']) },
      { requiredKeys: [] },
    ),
    { maxLength: 2 },
  ),
  // The health policy: a few plausible documents, and junk.
  defaults: fc.record(
    {
      health: fc.record(
        {
          cpu: fc.record({
            subhealthy: fc.record({
              enter: fc.double({ min: 0, max: 1, noNaN: true }),
              exit: fc.double({ min: 0, max: 1, noNaN: true }),
            }),
          }),
          degradeAfter: fc.integer({ min: 0, max: 200 }),
        },
        { requiredKeys: [] },
      ),
    },
    { requiredKeys: [] },
  ),
};

function bySchema(schema: Readonly<Record<string, unknown>> | undefined, depth: number): fc.Arbitrary<unknown> {
  if (schema === undefined || depth > 3) return fc.jsonValue({ maxDepth: 1 });
  const type = schema['type'];
  const types = Array.isArray(type) ? type : [type];
  if (Array.isArray(schema['enum'])) return pick(schema['enum'] as unknown[]);
  if (types.includes('object')) {
    const props = (schema['properties'] ?? {}) as Record<string, Record<string, unknown>>;
    const keys = Object.keys(props);
    if (keys.length === 0)
      return fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 3 });
    const shape = Object.fromEntries(keys.map((k) => [k, valueFor(k, props[k], depth + 1)]));
    return fc.record(shape, { requiredKeys: [] });
  }
  if (types.includes('array'))
    return fc.array(bySchema(schema['items'] as Record<string, unknown> | undefined, depth + 1), { maxLength: 3 });
  if (types.includes('integer'))
    return weighted([4, fc.integer({ min: 0, max: 200 })], [1, pick([-1, 10_001, 1.5, 2 ** 53])]);
  if (types.includes('number')) return fc.double({ noNaN: true });
  if (types.includes('boolean')) return fc.boolean();
  if (types.includes('string'))
    return weighted(
      [4, pick(['a', 'web', 'fz', 'zone-a', 'v1'])],
      [1, fc.string({ unit: 'grapheme', maxLength: 12 })],
      [1, pick(['', 'x'.repeat(5000)])],
    );
  return fc.jsonValue({ maxDepth: 2 });
}

/**
 * POST /v1/cluster/members. With `membership` off, no member is ever added: a valid address
 * is only ever this node's own, under its own id (an idempotent "already a member"). With it
 * on, members that do not exist are added too (run.ts removes them again at once).
 */
function memberBody(options: GeneratorOptions): fc.Arbitrary<unknown> {
  const invalid = ['a b:80', '[::1]:7x', '::1:80', 'x:0', 'h:99999', 'http://x:80', '', '[nope]:1', 'a b/c:80'];
  const address = options.membership
    ? weighted([1, pick(['127.0.0.1:9', 'phantom.invalid:7000', '[::1]:7'])], [2, pick(invalid)])
    : weighted([1, fc.constant(options.selfPeerAddress)], [2, pick(invalid)]);
  return fc.record({ id: SPECIAL_FIELDS['id']!, peerAddress: address }, { requiredKeys: [] }).map((b) => {
    if (!options.membership && b.peerAddress === options.selfPeerAddress) return { ...b, id: SELF_ID };
    return b;
  });
}

function bodyValue(route: RouteSpec | null, options: GeneratorOptions): fc.Arbitrary<unknown> {
  if (route?.template === '/v1/cluster/members' && route.method === 'POST') return memberBody(options);
  if (route?.template === '/v1/health/policy') {
    return weighted<unknown>(
      [
        3,
        fc.record(
          {
            defaults: SPECIAL_FIELDS['defaults']!,
            cluster: fc.record({ maxLagEntries: fc.integer({ min: -1, max: 1000 }) }),
          },
          { requiredKeys: [] },
        ),
      ],
      [1, fc.jsonValue({ maxDepth: 2 })],
    );
  }
  if (route?.body) return bySchema(route.body, 0);
  if (route?.template === '/v1/sessions/{id}/keepalive')
    return weighted<unknown>([3, fc.record({ report: SPECIAL_FIELDS['report']! })], [1, fc.jsonValue({ maxDepth: 2 })]);
  return fc.jsonValue({ maxDepth: 2 });
}

type BodyKind =
  | 'none'
  | 'json'
  | 'truncated'
  | 'bom'
  | 'proto'
  | 'deep'
  | 'badutf8'
  | 'text'
  | 'padded'
  | 'over'
  | 'huge';

function bodyBytes(kind: BodyKind, value: unknown, hugeBytes: number): Buffer | null {
  const json = JSON.stringify(value) ?? 'null';
  switch (kind) {
    case 'none':
      return null;
    case 'json':
      return Buffer.from(json);
    case 'truncated':
      return Buffer.from(json.slice(0, Math.max(1, Math.floor(json.length / 2))));
    case 'bom':
      return Buffer.from(`\ufeff${json}`);
    case 'proto':
      return Buffer.from(`{"__proto__": {"polluted": true}, "constructor": {"prototype": {"x": 1}}, "v": ${json}}`);
    case 'deep':
      return Buffer.from(`${'['.repeat(20_000)}${']'.repeat(20_000)}`);
    case 'badutf8':
      return Buffer.concat([
        Buffer.from('{"address": "'),
        Buffer.from([0xff, 0xfe, 0xc0, 0x80]),
        Buffer.from('", "port": 80}'),
      ]);
    case 'text':
      return Buffer.from('ttl=5000&x=1');
    case 'padded':
      return Buffer.from(JSON.stringify({ v: value, pad: 'p'.repeat(200 * 1024) }));
    case 'over':
      return Buffer.from(JSON.stringify({ v: value, pad: 'p'.repeat(300 * 1024) }));
    case 'huge':
      return Buffer.alloc(hugeBytes, 0x61);
  }
}

type Framing = 'length' | 'chunked' | 'short' | 'long' | 'both' | 'badchunk' | 'none';

const CONTENT_TYPES = [
  'application/json; charset=utf-8',
  'application/json; charset=latin1',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  '',
  'application/jsonx',
  'APPLICATION/JSON',
  '*/*',
  'application/json, text/plain',
];

/** Extra header lines, odd ones: each is [name, value] or a raw line. */
const oddHeader: fc.Arbitrary<string | [string, string] | 'no-host'> = pick<string | [string, string] | 'no-host'>([
  ['x-big', 'a'.repeat(20_000)],
  'many',
  'Bad Header: x',
  'X-\u0001: y',
  'X-V: a\u0000b',
  'X-F: a\r\n b',
  ['expect', '100-continue'],
  ['expect', 'something-else'],
  ['connection', 'close'],
  ['connection', 'upgrade'],
  ['upgrade', 'websocket'],
  ['content-encoding', 'gzip'],
  ['x-u', 'é'],
  ['accept', 'text/event-stream'],
  ['x-http-method-override', 'DELETE'],
  ['host', 'evil.example'],
  'no-host',
  ['x-rollcall-client-id', 'c'.repeat(200)],
  ['last-event-id', '99999999999999999999'],
]);

const HEADER_VALUES: Readonly<Record<string, fc.Arbitrary<string>>> = {
  'if-match': weighted(
    [3, pick(['1', '"1"', 'W/"2"', '0'])],
    [1, pick(['*', '', 'abc', '"1", "2"', STALE_POLICY_REVISION])],
  ),
  'x-rollcall-client-id': weighted(
    [3, pick(['c1', 'c2'])],
    [1, fc.string({ maxLength: 10 }).filter((s) => /^[\x20-\x7e]*$/.test(s))],
  ),
  'x-rollcall-seq': weighted([3, pick(['1', '2', '3'])], [1, pick(['0', '-1', '1.5', 'abc', ''])]),
  'last-event-id': pick(['0', '1', '5', 'abc', '']),
  'x-rollcall-session-id': weighted([6, pick(SESSIONS)], [1, pick(['', '_x', 'a b', 'x'.repeat(129), '%C3%A9'])]),
};

export interface GeneratorOptions {
  readonly tokens: Tokens | null;
  /** Size of the rare huge body (default 2 MiB). */
  readonly hugeBytes?: number;
  /** This node's peer address (HOST:PORT), the one valid address when `membership` is off. */
  readonly selfPeerAddress: string;
  /** Also add members that do not exist (default off; see memberBody). */
  readonly membership?: boolean;
}

/** Fills a route's path template; `{x}` by its pool, an odd segment now and then. */
function pathFor(route: RouteSpec): fc.Arbitrary<string> {
  const parts = route.template.split(/(\{[^}]+\})/).filter((p) => p.length > 0);
  return fc
    .tuple(...parts.map((p) => (p.startsWith('{') ? segment(route.template, p.slice(1, -1)) : fc.constant(p))))
    .map((xs) => xs.join(''));
}

const targetMutation = weighted<(path: string) => string>(
  [20, fc.constant((p: string) => p)],
  [
    1,
    pick([
      (p: string) => `http://127.0.0.1${p}`,
      () => '*',
      (p: string) => p.replace(/\//g, '//'),
      (p: string) => `${p}/`,
      (p: string) => p.replace('/v1/', '/v1/./'),
      (p: string) => `${p}#frag`,
      (p: string) => p.toUpperCase(),
      (p: string) => `/v1/../${p.slice(1)}`,
    ]),
  ],
);

/** One request, as bytes. */
export function requestArbitrary(routes: readonly RouteSpec[], options: GeneratorOptions): fc.Arbitrary<FuzzRequest> {
  const hugeBytes = options.hugeBytes ?? 2 * 1024 * 1024;
  const routed = fc.integer({ min: 0, max: routes.length - 1 }).map((i) => routes[i]!);
  const anyPath = fc
    .array(
      weighted([3, pick(['v1', 'sessions', 'namespaces', 'fz', 'services', 'cluster', 'ui', 'x'])], [1, oddSegment]),
      { maxLength: 6 },
    )
    .map((s) => `/${s.join('/')}`);
  const auth: fc.Arbitrary<string | null> =
    options.tokens === null
      ? fc.constant(null)
      : weighted<string | null>(
          [8, fc.constant(`Bearer ${options.tokens.admin}`)],
          [1, fc.constant(`Bearer ${options.tokens.read}`)],
          [1, fc.constant(`Bearer ${options.tokens.registerFz}`)],
          [1, fc.constant(`Bearer ${options.tokens.register}`)],
          [1, fc.constant(null)],
          [
            1,
            pick(['Bearer not-a-token-0000000000', 'Basic YTpi', 'Bearer', `Bearer ${'t'.repeat(600)}`, 'bearer  x']),
          ],
        );

  return fc
    .record({
      route: weighted<RouteSpec | null>([9, routed], [1, fc.constant(null)]),
      methodChoice: weighted<string | null>(
        [16, fc.constant(null)],
        [2, pick(['GET', 'PUT', 'POST', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'])],
        [1, pick(['TRACE', 'PROPFIND', 'M-SEARCH', 'get', 'FOO', 'CONNECT', ''])],
      ),
      version: weighted(
        [30, fc.constant('HTTP/1.1')],
        [1, pick(['HTTP/1.0', 'HTTP/2.0', 'HTTP/1.2', 'HTTP/0.9', 'http/1.1'])],
      ),
      anyPath,
      mutate: targetMutation,
      auth,
    })
    .chain((base) => {
      const route = base.route;
      const method = base.methodChoice ?? route?.method ?? 'GET';
      const headerNames = route?.headers ?? [];
      const bodyKinds: [number, fc.Arbitrary<BodyKind>][] =
        route?.body || route?.template === '/v1/sessions/{id}/keepalive'
          ? [
              [14, fc.constant('json')],
              [1, fc.constant('none')],
              [1, pick<BodyKind>(['truncated', 'bom', 'proto', 'deep', 'badutf8', 'text'])],
              [1, pick<BodyKind>(['padded', 'over'])],
              [1, fc.constant<BodyKind>('huge')],
            ]
          : [
              [12, fc.constant('none')],
              [1, pick<BodyKind>(['json', 'truncated', 'text'])],
              [1, pick<BodyKind>(['over', 'huge'])],
            ];
      return fc
        .record({
          path: route ? pathFor(route) : fc.constant(base.anyPath),
          query: queryString(route),
          body: bodyValue(route, options),
          bodyKind: weighted(...bodyKinds),
          framing: weighted<Framing>(
            [20, fc.constant('length')],
            [2, fc.constant('chunked')],
            [1, pick<Framing>(['short', 'long', 'both', 'badchunk', 'none'])],
          ),
          contentType: weighted(
            [12, fc.constant('application/json')],
            [2, pick(CONTENT_TYPES)],
            [1, fc.constant(null)],
          ),
          routeHeaders: fc
            .array(
              weighted(
                ...(headerNames.length > 0
                  ? [[1, pick(headerNames)] as [number, fc.Arbitrary<string>]]
                  : [[1, pick(Object.keys(HEADER_VALUES))] as [number, fc.Arbitrary<string>]]),
              ),
              { maxLength: 2 },
            )
            .chain((names) =>
              fc.tuple(
                ...names.map((n) =>
                  (own(HEADER_VALUES, n) ?? fc.string({ maxLength: 8 })).map((v) => [n, v] as [string, string]),
                ),
              ),
            ),
          odd: weighted(
            [6, fc.constant([] as (string | [string, string] | 'no-host')[])],
            [1, fc.array(oddHeader, { minLength: 1, maxLength: 2 })],
          ),
        })
        .map((r) => build({ ...base, ...r, route, method, hugeBytes }));
    });
}

interface Parts {
  readonly route: RouteSpec | null;
  readonly method: string;
  readonly version: string;
  readonly path: string;
  readonly query: string;
  readonly mutate: (p: string) => string;
  readonly auth: string | null;
  readonly body: unknown;
  readonly bodyKind: BodyKind;
  readonly framing: Framing;
  readonly contentType: string | null;
  readonly routeHeaders: readonly [string, string][];
  readonly odd: readonly (string | [string, string] | 'no-host')[];
  readonly hugeBytes: number;
}

function build(p: Parts): FuzzRequest {
  const target = p.mutate(`${p.path}${p.query}`);
  const body = bodyBytes(p.bodyKind, p.body, p.hugeBytes);
  const lines: string[] = [`${p.method} ${target} ${p.version}`];
  const headers: [string, string][] = [];
  if (!p.odd.includes('no-host')) headers.push(['host', '127.0.0.1']);
  if (p.auth !== null) headers.push(['authorization', p.auth]);
  for (const h of p.routeHeaders) headers.push(h);
  // The health policy stays as the run set it (see the file comment).
  if (p.route?.template === '/v1/health/policy' && p.method === 'PUT') {
    for (let i = headers.length - 1; i >= 0; i--) if (headers[i]![0] === 'if-match') headers.splice(i, 1);
    headers.push(['if-match', STALE_POLICY_REVISION]);
  }
  const odd: string[] = [];
  for (const o of p.odd) {
    if (o === 'no-host') continue;
    if (o === 'many') for (let i = 0; i < 300; i++) headers.push([`x-n-${i}`, 'v']);
    else if (typeof o === 'string') odd.push(o);
    else headers.push(o);
  }
  // Our side stays open unless the server must learn that a promised body will not come:
  // Node takes a half-close after a complete request for a client that went away.
  let halfClose = false;
  let payload: Buffer[] = [];
  if (body !== null) {
    if (p.contentType !== null) headers.push(['content-type', p.contentType]);
    switch (p.framing) {
      case 'length':
        headers.push(['content-length', String(body.length)]);
        payload = [body];
        break;
      case 'chunked': {
        headers.push(['transfer-encoding', 'chunked']);
        const cut = Math.floor(body.length / 2);
        payload = [body.subarray(0, cut), body.subarray(cut)]
          .filter((c) => c.length > 0)
          .flatMap((c) => [Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n')]);
        payload.push(Buffer.from('0\r\n\r\n'));
        break;
      }
      case 'short':
        headers.push(['content-length', String(Math.max(0, body.length - 3))]);
        payload = [body];
        break;
      case 'long':
        // More announced than sent: end our side so the server sees it will never come.
        headers.push(['content-length', String(body.length + 10)]);
        payload = [body];
        halfClose = true;
        break;
      case 'both':
        headers.push(['content-length', String(body.length)], ['transfer-encoding', 'chunked']);
        payload = [body];
        break;
      case 'badchunk':
        headers.push(['transfer-encoding', 'chunked']);
        payload = [Buffer.from('zz\r\n'), body, Buffer.from('\r\n0\r\n\r\n')];
        break;
      case 'none':
        payload = [body];
        break;
    }
  }
  for (const [n, v] of headers) lines.push(`${n}: ${v}`);
  lines.push(...odd);
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'utf8');
  const bodyNote = body === null ? '' : ` body=${p.bodyKind}/${p.framing}/${body.length}B`;
  const oddNote =
    p.odd.length === 0 ? '' : ` odd=${p.odd.map((o) => (typeof o === 'string' ? o.slice(0, 12) : o[0])).join(',')}`;
  return {
    summary: `${p.method} ${target.slice(0, 160)} ${p.version}${bodyNote}${oddNote}`,
    head: JSON.stringify(head.subarray(0, 800).toString('latin1')),
    method: p.method,
    route: p.route,
    chunks: [head, ...payload],
    halfClose,
    isHead: p.method === 'HEAD',
    bodyBytes: body?.length ?? 0,
  };
}
