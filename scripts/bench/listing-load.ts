/**
 * The pieces of the listing-stall scenario (issue 22, item 1), shared by
 * test/cluster-listing-stall.test.ts and scripts/bench-listing.ts: load a registry fast,
 * list it in a loop from several clients, and read what the leader's metrics and terms say.
 */
import http from 'node:http';

export interface LoadOptions {
  readonly instances: number;
  /** Concurrent writers, each with its own exactly-once client id. */
  readonly writers: number;
  readonly namespace: string;
  readonly services: number;
  /** Metadata labels per instance (as a Kubernetes pod carries labels). */
  readonly labels: number;
}

export const DEFAULT_LOAD: LoadOptions = {
  instances: 30_000,
  writers: 128,
  namespace: 'prod',
  services: 20,
  labels: 10,
};

/** One keep-alive HTTP request; resolves with the status and body text. */
export function request(
  agent: http.Agent,
  url: string,
  method: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method,
        agent,
        headers:
          body === undefined
            ? headers
            : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.setTimeout(30_000, () => req.destroy(new Error(`no answer from ${method} ${url} in 30 s`)));
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Registers `o.instances` persistent instances through `url` (the leader: followers only
 * forward), `o.writers` at a time, each writer with its own client id and seq, so a retry
 * after a lost answer applies once. Resolves with the writes per second.
 */
export async function bulkRegister(url: string, o: LoadOptions, onProgress?: (done: number) => void): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.writers });
  const started = performance.now();
  let next = 0;
  let done = 0;
  try {
    await Promise.all(
      Array.from({ length: o.writers }, async (_, w) => {
        const clientId = `bulk-${w}-${Date.now()}`;
        let seq = 0;
        for (;;) {
          const i = next++;
          if (i >= o.instances) return;
          const body = JSON.stringify(instanceBody(i, o.labels));
          const headers = { 'x-rollcall-client-id': clientId, 'x-rollcall-seq': String(++seq) };
          const path = `${url}/v1/namespaces/${o.namespace}/services/svc-${i % o.services}/instances/i-${i}`;
          for (let attempt = 1; ; attempt++) {
            const r = await request(agent, path, 'PUT', body, headers).catch((err: Error) => ({
              status: 0,
              text: err.message,
            }));
            if (r.status === 200) break;
            if (attempt >= 20) throw new Error(`registering i-${i}: ${r.status} ${r.text.slice(0, 300)}`);
            await new Promise((res) => setTimeout(res, 100 * attempt));
          }
          if (++done % 5000 === 0) onProgress?.(done);
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  return o.instances / ((performance.now() - started) / 1000);
}

function instanceBody(i: number, labels: number): Record<string, unknown> {
  const metadata: Record<string, string> = { zone: `zone-${i % 4}`, version: '1.4.2' };
  for (let k = 0; k < labels; k++) metadata[`label-${k}`] = `value-${k}-${i % 97}`;
  return {
    address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`,
    port: 8000 + (i % 1000),
    cluster: i % 3 === 0 ? 'vip' : 'default',
    tags: ['v1', 'blue'],
    metadata,
  };
}

/** The kinds of listing the clients take turns at. */
export const LISTINGS = [
  /** What the monitoring page asked for before it paginated: one answer with every instance. */
  {
    name: 'page-unpaginated',
    path: (ns: string) => `/v1/services?instances=true&consistency=serializable&namespace=${ns}`,
    pages: false,
  },
  /** What it asks for now: pages of 2,000, at one revision. */
  {
    name: 'page-paginated',
    path: (ns: string) => `/v1/services?instances=true&consistency=serializable&namespace=${ns}&limit=2000`,
    pages: true,
  },
  /** The SDK's listNamespace: pages, linearizable. */
  { name: 'namespace-paginated', path: (ns: string) => `/v1/namespaces/${ns}/instances?limit=5000`, pages: true },
  /** One service, unpaginated (under the cap). */
  { name: 'service', path: (ns: string) => `/v1/namespaces/${ns}/services/svc-1/instances`, pages: false },
] as const;

export interface ListingStats {
  /** Requests answered, by listing and status. */
  readonly answers: Record<string, Record<number, number>>;
  /** Requests that failed without an answer. */
  readonly failures: number;
  readonly firstFailure: string | null;
  /** The longest wait for one answer, ms. */
  readonly slowestMs: number;
}

/** The `continue` at the end of a page, without parsing the page. */
function continueOf(text: string): string | undefined {
  const m = /"continue":"([^"]+)"\}$/.exec(text.slice(-2048));
  return m?.[1];
}

/** `clients` loops, each going round LISTINGS, against `url` until `ms` have passed. */
export async function listingLoop(url: string, namespace: string, clients: number, ms: number): Promise<ListingStats> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: clients });
  const answers: Record<string, Record<number, number>> = {};
  let failures = 0;
  let firstFailure: string | null = null;
  let slowestMs = 0;
  const end = Date.now() + ms;
  const one = async (name: string, path: string) => {
    const started = performance.now();
    const r = await request(agent, `${url}${path}`, 'GET');
    slowestMs = Math.max(slowestMs, performance.now() - started);
    const byStatus = (answers[name] ??= {});
    byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
    return r;
  };
  try {
    await Promise.all(
      Array.from({ length: clients }, async (_, c) => {
        for (let k = c; Date.now() < end; k++) {
          const l = LISTINGS[k % LISTINGS.length]!;
          try {
            let r = await one(l.name, l.path(namespace));
            for (
              let token = l.pages && r.status === 200 ? continueOf(r.text) : undefined;
              token !== undefined && Date.now() < end;
              token = continueOf(r.text)
            ) {
              r = await one(l.name, `${l.path(namespace)}&continue=${encodeURIComponent(token)}`);
              if (r.status !== 200) break;
            }
          } catch (err) {
            failures++;
            firstFailure ??= `${l.name}: ${err instanceof Error ? err.message : String(err)}`;
          }
        }
      }),
    );
  } finally {
    agent.destroy();
  }
  return { answers, failures, firstFailure, slowestMs };
}

/** Every instance of a namespace, read in pages: how many, and at how many revisions (1 when consistent). */
export async function countByPages(
  url: string,
  namespace: string,
  limit: number,
): Promise<{ instances: number; revisions: number; pages: number }> {
  const agent = new http.Agent({ keepAlive: true });
  let instances = 0;
  let pages = 0;
  const revisions = new Set<number>();
  try {
    let token: string | undefined;
    do {
      const r = await request(
        agent,
        `${url}/v1/namespaces/${namespace}/instances?limit=${limit}${token ? `&continue=${encodeURIComponent(token)}` : ''}`,
        'GET',
      );
      if (r.status !== 200) throw new Error(`listing ${namespace}: ${r.status} ${r.text.slice(0, 300)}`);
      const body = JSON.parse(r.text) as { revision: number; instances: unknown[]; continue?: string };
      instances += body.instances.length;
      revisions.add(body.revision);
      pages++;
      token = body.continue;
    } while (token !== undefined);
  } finally {
    agent.destroy();
  }
  return { instances, revisions: revisions.size, pages };
}

/** The event-loop delay a node reports (seconds): p50, p99 and max over its window; null if it exports none. */
export async function loopDelay(
  url: string,
): Promise<{ p50: number; p99: number; max: number; cpuP99: number; cpuMax: number } | null> {
  const text = await (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text();
  const q = (metric: string, quantile: string) => {
    const m = new RegExp(`^${metric}\\{quantile="${quantile}"\\} (\\S+)$`, 'm').exec(text);
    return m ? Number(m[1]) : null;
  };
  const max = /^rollcall_event_loop_delay_max_seconds (\S+)$/m.exec(text);
  const cpuMax = /^rollcall_event_loop_turn_cpu_max_seconds (\S+)$/m.exec(text);
  const p50 = q('rollcall_event_loop_delay_seconds', '0.5');
  const p99 = q('rollcall_event_loop_delay_seconds', '0.99');
  const cpuP99 = q('rollcall_event_loop_turn_cpu_seconds', '0.99');
  if (p50 === null || p99 === null || cpuP99 === null || !max || !cpuMax) return null;
  return { p50, p99, max: Number(max[1]), cpuP99, cpuMax: Number(cpuMax[1]) };
}

/** Each node's term as it reports it (null when it does not answer). */
export async function terms(urls: readonly string[]): Promise<(number | null)[]> {
  return Promise.all(
    urls.map(async (u) => {
      try {
        const body = (await (await fetch(`${u}/v1/cluster`, { signal: AbortSignal.timeout(5000) })).json()) as {
          term?: number;
        };
        return body.term ?? null;
      } catch {
        return null;
      }
    }),
  );
}
