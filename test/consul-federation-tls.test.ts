/**
 * The Consul API's `?dc=` over federation links that require client certificates, with real
 * processes: two single-node datacenters whose HTTP API serves HTTPS and requires client
 * certificates of one throwaway CA (scripts/tls-certs.ts), federated with
 * --federation-tls-ca/-cert/-key. dc-a's Consul listener (plain HTTP) answers reads of dc-b:
 * one service, a namespace's list, and a blocking query that wakes on a change there. Each
 * goes through the federation host's connections, so it presents dc-a's certificate; without
 * it dc-b refuses the handshake and the read is 500 `rpc error`.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, LocalCluster } from '../scripts/local-cluster.js';
import { type ClusterTls, createClusterTls } from '../scripts/tls-certs.js';
import { httpsJson } from './helpers/https.js';
import { waitFor } from './helpers/wait.js';

const SECRET = 'consul-federation-tls-secret';
const ROUND_MS = 300;

let dir: string;
let pki: ClusterTls;
let client: { ca: Buffer; cert: Buffer; key: Buffer };
let a: LocalCluster;
let b: LocalCluster;
let consulA = '';

/** One HTTPS request as a client of these datacenters: their CA, the client certificate. */
const https = (method: string, url: string, body?: unknown) => httpsJson(client, method, url, body);

async function consul(pathAndQuery: string): Promise<{ status: number; index: number; text: string }> {
  const res = await fetch(`${consulA}${pathAndQuery}`, { signal: AbortSignal.timeout(30_000) });
  return { status: res.status, index: Number(res.headers.get('x-consul-index')), text: await res.text() };
}

async function startDatacenter(dc: string, env: NodeJS.ProcessEnv, join?: string): Promise<LocalCluster> {
  const own = { ca: pki.ca, cert: pki.nodes.n1!.cert, key: pki.nodes.n1!.key };
  const cluster = await LocalCluster.start({
    size: 1,
    tls: { ...pki, requireClientCerts: true },
    extraArgs: [
      '--datacenter',
      dc,
      '--federation-secret',
      SECRET,
      '--federation-interval-ms',
      String(ROUND_MS),
      '--federation-tls-ca',
      own.ca,
      '--federation-tls-cert',
      own.cert,
      '--federation-tls-key',
      own.key,
      ...(join === undefined ? [] : ['--federation-join', join]),
    ],
    env,
    logLevel: 'warn',
  });
  await waitFor(
    `${dc} has a leader`,
    async () =>
      ((await https('GET', `${cluster.nodes[0]!.url}/v1/cluster`)).body as { leader?: unknown }).leader != null,
    60_000,
    100,
  );
  return cluster;
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'rollcall-consul-federation-tls-'));
  // One CA for both datacenters; a node's certificate serves its API and is its client certificate.
  pki = await createClusterTls(path.join(dir, 'tls'), ['n1']);
  client = {
    ca: await readFile(pki.ca),
    cert: await readFile(pki.client.cert),
    key: await readFile(pki.client.key),
  };
  const consulPort = await freePort();
  consulA = `http://127.0.0.1:${consulPort}`;
  a = await startDatacenter('dc-a', { ROLLCALL_CONSUL_LISTEN: `127.0.0.1:${consulPort}` });
  b = await startDatacenter('dc-b', {}, a.nodes[0]!.url);
  await waitFor(
    'dc-b alive as dc-a sees it',
    async () => {
      const f = (await https('GET', `${a.nodes[0]!.url}/v1/federation`)).body as {
        datacenters: { name: string; status: string }[];
      };
      return f.datacenters.some((d) => d.name === 'dc-b' && d.status === 'alive');
    },
    30_000,
    100,
  );
  const put = await https('PUT', `${b.nodes[0]!.url}/v1/namespaces/default/services/web/instances/w1`, {
    address: '10.9.0.1',
    port: 8080,
    tags: ['v1'],
  });
  expect(put.status).toBe(200);
}, 180_000);

afterAll(async () => {
  await Promise.all([a?.close(), b?.close()]);
  await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('Consul API ?dc= over federation links that require client certificates', () => {
  it("reads one service and a namespace's list of dc-b, and blocks there, with dc-a's client certificate", async () => {
    const service = await consul('/v1/health/service/web?dc=dc-b');
    expect([service.status, service.text]).toEqual([200, expect.stringContaining('"ID":"w1"')]);
    const services = await consul('/v1/catalog/services?dc=dc-b');
    expect([services.status, services.text]).toEqual([200, '{"web":["v1"]}']);
    // dc-a itself holds nothing: the answers came from dc-b.
    expect((await consul('/v1/catalog/services')).text).toBe('{}');

    const parked = consul(`/v1/catalog/services?dc=dc-b&index=${services.index}&wait=20s`);
    const early = await Promise.race([parked.then(() => 'answered'), new Promise((r) => setTimeout(r, 500, 'parked'))]);
    expect(early).toBe('parked');
    const put = await https('PUT', `${b.nodes[0]!.url}/v1/namespaces/default/services/api/instances/a1`, {
      address: '10.9.0.2',
      port: 9090,
    });
    expect(put.status).toBe(200);
    const woken = await parked;
    expect(woken.status).toBe(200);
    expect(woken.index).toBeGreaterThan(services.index);
    expect(woken.text).toBe('{"api":[],"web":["v1"]}');
  });
});
