/**
 * TLS on a real 3-node cluster (issue 19): separate `rollcall server` processes on
 * loopback with the HTTP API over HTTPS requiring client certificates (--tls-client-ca),
 * the Consul API over HTTPS, the probe listener over HTTPS (an https:// --probe-listen: the
 * API's certificate and client CA), and mutual TLS between the nodes, all with certificates from
 * a throwaway CA made here (scripts/tls-certs.ts, what `npm start -- --tls` uses).
 * Clients: the SDK, the CLI, node:https, and the npm `consul` client with a CA in its agent.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import Consul from 'consul';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_PATH, freePort, LocalCluster } from '../scripts/local-cluster.js';
import { type CertFiles, CertificateAuthority, type ClusterTls, createClusterTls } from '../scripts/tls-certs.js';
import { RollcallClient } from '../src/client/index.js';
import { waitFor } from './helpers/wait.js';

interface Answer {
  readonly status: number;
  readonly body: any;
  /** The certificate the server presented on this request's connection. */
  readonly fingerprint: string;
  readonly reusedSocket: boolean;
}

interface TlsClientFiles {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly agent?: Agent;
}

/** One HTTPS request with exactly the TLS material given (nothing from the system's store). */
function https(url: string, tls: TlsClientFiles, method = 'GET', body?: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      url,
      {
        method,
        headers: text === undefined ? {} : { 'content-type': 'application/json' },
        timeout: 5000,
        ...(tls.agent === undefined
          ? { agent: false as const, ca: tls.ca, cert: tls.cert, key: tls.key }
          : { agent: tls.agent }),
      },
      (res) => {
        const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const raw = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown = raw;
          try {
            parsed = JSON.parse(raw);
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, body: parsed, fingerprint, reusedSocket: req.reusedSocket });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(text);
  });
}

async function fingerprintOf(file: string): Promise<string> {
  const { X509Certificate } = await import('node:crypto');
  return new X509Certificate(await readFile(file)).fingerprint256;
}

/** Runs the rollcall CLI to completion. */
function cli(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc: ChildProcess = spawn(process.execPath, [CLI_PATH, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    proc.stderr!.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    proc.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('a 3-node cluster over HTTPS (client certificates required) and mutual-TLS peers', () => {
  let dir: string;
  let pki: ClusterTls;
  let cluster: LocalCluster;
  let consulPorts: number[];
  let probePorts: number[];
  let ca: Buffer;
  let client: { cert: Buffer; key: Buffer };
  const logs = new Map<string, string[]>();
  const logOf = (id: string) => logs.get(id) ?? [];
  const url = (id: string) => cluster.node(id).url;
  const withClientCert = (): TlsClientFiles => ({ ca, ...client });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'rollcall-tls-cluster-'));
    pki = await createClusterTls(path.join(dir, 'tls'), ['n1', 'n2', 'n3']);
    ca = await readFile(pki.ca);
    client = { cert: await readFile(pki.client.cert), key: await readFile(pki.client.key) };
    consulPorts = [await freePort(), await freePort(), await freePort()];
    probePorts = [await freePort(), await freePort(), await freePort()];
    cluster = await LocalCluster.start({
      size: 3,
      tls: { ...pki, requireClientCerts: true },
      logLevel: 'info',
      nodeEnv: (id) => ({
        ROLLCALL_CONSUL_LISTEN: `127.0.0.1:${consulPorts[Number(id.slice(1)) - 1]}`,
        ROLLCALL_CONSUL_TLS_CERT: pki.nodes[id]!.cert,
        ROLLCALL_CONSUL_TLS_KEY: pki.nodes[id]!.key,
        ROLLCALL_PROBE_LISTEN: `https://127.0.0.1:${probePorts[Number(id.slice(1)) - 1]}`,
      }),
      onLog: (id, line) => {
        const lines = logs.get(id) ?? [];
        lines.push(line);
        logs.set(id, lines);
      },
    });
  }, 120_000);

  afterAll(async () => {
    await cluster?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function leader(): Promise<string> {
    return waitFor('a leader every node agrees on', async () => {
      const views = await Promise.all(
        cluster
          .running()
          .map((n) => https(`${n.url}/v1/cluster`, withClientCert()).then((r) => r.body.leader as string | null)),
      );
      return views[0] && views.every((v) => v === views[0]) ? views[0] : undefined;
    });
  }

  it('takes writes and linearizable reads through followers (SDK and CLI)', async () => {
    const lead = await leader();
    const [f1, f2] = ['n1', 'n2', 'n3'].filter((id) => id !== lead) as [string, string];
    const writer = new RollcallClient({ endpoints: [url(f1)], followMembers: false, tls: { ca, ...client } });
    const reader = new RollcallClient({ endpoints: [url(f2)], followMembers: false, tls: { ca, ...client } });
    try {
      await writer.putInstance({ namespace: 'prod', service: 'orders', id: 'o1', address: '10.0.0.2', port: 9000 });
      const listed = await reader.list({ namespace: 'prod', service: 'orders' });
      expect(listed.instances.map((i) => i.id)).toEqual(['o1']);
    } finally {
      await writer.close();
      await reader.close();
    }
    // The CLI, with curl's flag names as environment variables.
    const run = await cli(['list', '--namespace', 'prod', '--service', 'orders', '--json'], {
      ROLLCALL_ENDPOINTS: url(f2),
      ROLLCALL_CACERT: pki.ca,
      ROLLCALL_CERT: pki.client.cert,
      ROLLCALL_KEY: pki.client.key,
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout).instances.map((i: { id: string }) => i.id)).toEqual(['o1']);
  });

  it('serves the monitoring page on the HTTPS listener, and a follower relays health reports to the leader over HTTPS', async () => {
    const lead = await leader();
    const follower = ['n1', 'n2', 'n3'].find((id) => id !== lead)!;
    const page = await https(`${url(follower)}/ui`, withClientCert());
    expect(page.status).toBe(200);
    expect(String(page.body)).toContain('<html');
    // The follower's relay of the leader's reports connects on its own schedule: until then
    // it answers 200 with available: false. Waited on, not assumed.
    const reports = await waitFor("the follower relaying the leader's health reports", async () => {
      const r = await https(`${url(follower)}/v1/health/reports`, withClientCert());
      return r.status === 200 && (r.body as { available?: boolean }).available ? r : undefined;
    });
    expect(reports.body).toMatchObject({ available: true, from: lead });
  });

  it('refuses a client without the CA, a client without a certificate, and plain HTTP', async () => {
    const target = `${url('n1')}/v1/cluster`;
    await expect(https(target, { ...client })).rejects.toMatchObject({
      code: expect.stringMatching(/SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/),
    });
    await expect(https(target, { ca })).rejects.toThrow();
    await expect(fetch(target.replace('https:', 'http:'), { signal: AbortSignal.timeout(5000) })).rejects.toThrow();
    const noCert = new RollcallClient({
      endpoints: [url('n1')],
      followMembers: false,
      tls: { ca },
      requestTimeoutMs: 2000,
    });
    try {
      await expect(noCert.clusterStatus()).rejects.toThrow();
    } finally {
      await noCert.close();
    }
    // The right CA and a client certificate of it: in.
    expect((await https(target, withClientCert())).status).toBe(200);
  });

  it('serves the probes over HTTPS with the API certificate, requiring a client certificate as the API does', async () => {
    const probes = `https://127.0.0.1:${probePorts[0]}`;
    const health = await https(`${probes}/healthz`, withClientCert());
    expect(health.status).toBe(200);
    expect(health.body).toMatchObject({ ok: true, node: 'n1' });
    expect(health.fingerprint).toBe(await fingerprintOf(pki.nodes.n1!.cert));
    await waitFor(
      'n1 ready on the probe port',
      async () => (await https(`${probes}/readyz`, withClientCert())).status === 200,
    );
    await expect(https(`${probes}/healthz`, { ca })).rejects.toThrow();
    await expect(
      fetch(`http://127.0.0.1:${probePorts[0]}/healthz`, { signal: AbortSignal.timeout(5000) }),
    ).rejects.toThrow();
  });

  it('serves the Consul API over HTTPS to the npm consul client (a CA in its agent)', async () => {
    const agent = new Agent({ ca });
    const consul = new Consul({
      host: '127.0.0.1',
      port: consulPorts[1]!,
      secure: true,
      agent,
    } as ConstructorParameters<typeof Consul>[0]);
    try {
      await consul.agent.service.register({ name: 'web', id: 'web-1', address: '10.0.0.7', port: 8080 } as never);
      const services = (await consul.catalog.service.list()) as Record<string, string[]>;
      expect(Object.keys(services)).toContain('web');
    } finally {
      agent.destroy();
    }
    const plain = new Consul({
      host: '127.0.0.1',
      port: consulPorts[1]!,
      secure: true,
      agent: new Agent(),
    } as ConstructorParameters<typeof Consul>[0]);
    await expect(plain.catalog.service.list()).rejects.toThrow();
  });

  it("refuses a node that presents another node's certificate, says so in the log, and carries on", async () => {
    await cluster.kill('n3');
    // n3 comes back holding n2's (valid, same-CA) certificate on its peer port.
    await cluster.spawnNode(cluster.node('n3'), [
      '--peer-tls-cert',
      pki.nodes.n2!.cert,
      '--peer-tls-key',
      pki.nodes.n2!.key,
    ]);
    await waitFor('a peer refuses n3 for its certificate', () =>
      ['n1', 'n2'].some((id) =>
        logOf(id).some(
          (l) => l.includes('refused peer connection') && l.includes('TLS_IDENTITY') && l.includes('"claimedId":"n3"'),
        ),
      ),
    );
    // n1 and n2 are a majority without n3: writes go on.
    const lead = await waitFor('a leader among n1, n2', async () => {
      const r = await https(`${url('n1')}/v1/cluster`, withClientCert());
      return r.body.leader === 'n1' || r.body.leader === 'n2' ? (r.body.leader as string) : undefined;
    });
    const put = await https(`${url(lead)}/v1/namespaces/prod/services/orders/instances/o2`, withClientCert(), 'PUT', {
      address: '10.0.0.3',
      port: 9000,
    });
    expect(put.status).toBe(200);
    const onN3 = await https(
      `${url('n3')}/v1/namespaces/prod/services/orders/instances?consistency=serializable`,
      withClientCert(),
    );
    expect(onN3.body.instances.map((i: { id: string }) => i.id)).not.toContain('o2');

    // With its own certificate n3 is let in again and catches up.
    await cluster.kill('n3');
    await cluster.restart('n3');
    await waitFor(
      'n3 caught up',
      async () => {
        const r = await https(
          `${url('n3')}/v1/namespaces/prod/services/orders/instances?consistency=serializable`,
          withClientCert(),
        );
        return r.body.instances?.some((i: { id: string }) => i.id === 'o2');
      },
      30_000,
    );
  });

  it('reloads certificates on SIGHUP under writes: none fails, established connections go on, new ones get the new certificate; a bad file is refused', async () => {
    const n1 = pki.nodes.n1!;
    const oldFingerprint = await fingerprintOf(n1.cert);
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca, ...client });
    try {
      const before = await https(`${url('n1')}/v1/cluster`, { agent });
      expect(before.fingerprint).toBe(oldFingerprint);

      const authority = await CertificateAuthority.load(pki.dir);
      const renewed: CertFiles = await authority.issue(
        'n1-renewed',
        { nodeId: 'n1', dnsNames: ['localhost'], ips: ['127.0.0.1'] },
        path.join(dir, 'renewed'),
      );
      await copyFile(renewed.cert, n1.cert);
      await copyFile(renewed.key, n1.key);
      // Writes through n1 on their own keep-alive connection all along the reload: none may fail.
      const writerAgent = new Agent({ keepAlive: true, maxSockets: 1, ca, ...client });
      let writing = true;
      const outcomes: string[] = [];
      const writer = (async () => {
        for (let i = 0; writing; i++) {
          try {
            const r = await https(
              `${url('n1')}/v1/namespaces/load/services/w/instances/i${i % 50}`,
              { agent: writerAgent },
              'PUT',
              { address: '10.9.0.1', port: 1000 + i },
            );
            outcomes.push(String(r.status));
          } catch (err) {
            outcomes.push(`error ${(err as Error).message}`);
          }
        }
      })();
      await waitFor('writes under way', () => outcomes.length >= 5);
      const reloadsBefore = logOf('n1').filter((l) => l.includes('TLS certificate reloaded')).length;
      cluster.node('n1').proc!.kill('SIGHUP');
      // api and peer (the Consul API has its own certificate files here: the same ones).
      await waitFor(
        'n1 reloaded its certificates',
        () => logOf('n1').filter((l) => l.includes('TLS certificate reloaded')).length >= reloadsBefore + 3,
      );
      const afterReload = outcomes.length;
      await waitFor('more writes after the reload', () => outcomes.length >= afterReload + 5);
      writing = false;
      await writer;
      writerAgent.destroy();
      expect(outcomes.filter((o) => o !== '200')).toEqual([]);

      const kept = await https(`${url('n1')}/v1/cluster`, { agent });
      expect(kept.status).toBe(200);
      expect(kept.reusedSocket).toBe(true);
      expect(kept.fingerprint).toBe(oldFingerprint);
      const fresh = await https(`${url('n1')}/v1/cluster`, withClientCert());
      expect(fresh.fingerprint).toBe(await fingerprintOf(renewed.cert));
      // The probe listener serves the API's certificate: reloaded with it, in its own thread.
      await waitFor('the renewed certificate on the probe port', async () => {
        const probe = await https(`https://127.0.0.1:${probePorts[0]}/healthz`, withClientCert());
        return probe.fingerprint === fresh.fingerprint;
      });
      // The peers still talk to n1 (established streams, and new ones with the new certificate).
      const lead = await leader();
      const put = await https(`${url(lead)}/v1/namespaces/prod/services/orders/instances/o3`, withClientCert(), 'PUT', {
        address: '10.0.0.4',
        port: 9000,
      });
      expect(put.status).toBe(200);

      // An expired certificate dropped in place is refused, with the file named; n1 keeps the renewed one.
      const expired = await authority.issue(
        'n1-expired',
        {
          nodeId: 'n1',
          ips: ['127.0.0.1'],
          notBefore: new Date(Date.now() - 3 * 86_400_000),
          notAfter: new Date(Date.now() - 86_400_000),
        },
        path.join(dir, 'expired'),
      );
      await copyFile(expired.cert, n1.cert);
      await copyFile(expired.key, n1.key);
      cluster.node('n1').proc!.kill('SIGHUP');
      await waitFor('n1 refuses the expired certificate, naming the file', () =>
        logOf('n1').some(
          (l) =>
            l.includes('TLS reload refused') &&
            l.includes(`"file":${JSON.stringify(n1.cert)}`) &&
            l.includes('expired'),
        ),
      );
      expect((await https(`${url('n1')}/v1/cluster`, withClientCert())).fingerprint).toBe(
        await fingerprintOf(renewed.cert),
      );
    } finally {
      agent.destroy();
    }
  });

  it('refuses to start with an expired certificate, naming the file', async () => {
    const authority = await CertificateAuthority.load(pki.dir);
    const expired = await authority.issue(
      'expired',
      { nodeId: 'n9', notBefore: new Date(Date.now() - 3 * 86_400_000), notAfter: new Date(Date.now() - 86_400_000) },
      path.join(dir, 'start'),
    );
    const run = await cli(
      [
        'server',
        '--id',
        'n9',
        '--data',
        path.join(dir, 'n9'),
        '--listen',
        '127.0.0.1:0',
        '--peers',
        'n9=127.0.0.1:0',
        '--cluster-secret',
        'local-cluster-secret',
        '--tls-cert',
        expired.cert,
        '--tls-key',
        expired.key,
      ],
      {},
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(`--tls-cert: ${expired.cert}: the certificate for CN=n9 expired at`);
    const logLine = run.stdout.split('\n').find((l) => l.includes('TLS certificate refused'));
    expect(logLine).toBeDefined();
    expect(JSON.parse(logLine!)).toMatchObject({ level: 50, file: expired.cert, setting: '--tls-cert' });
  });
});
