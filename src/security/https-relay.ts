/**
 * How a node asks another node's HTTPS API (a follower relaying GET /v1/health/reports to
 * the leader, whose address it knows from the members' gossip). It trusts the CAs this
 * node was given (--peer-tls-ca, --tls-client-ca; the system's when it has neither) and
 * presents its own API certificate, so a leader that requires client certificates
 * (--tls-client-ca) takes it like any client of that CA. A fresh connection per request
 * (the relay is rare: the monitoring page polls every few seconds), so there is no pool to
 * close and a reload applies to the next request.
 */
import { request } from 'node:https';
import type { RelayFetch } from '../server/routes/health.js';

export interface RelayTls {
  /** PEM CA certificates the other node's certificate must chain to; empty: the system's. */
  readonly ca: readonly Buffer[];
  /** This node's certificate and key, presented when asked for one. */
  readonly cert: Buffer;
  readonly key: Buffer;
}

/** A RelayFetch over HTTPS with the material `current()` returns at each request. */
export function httpsRelayFetch(current: () => RelayTls): RelayFetch {
  return (url, init) =>
    new Promise((resolve, reject) => {
      const tls = current();
      const req = request(
        url,
        {
          method: 'GET',
          headers: init.headers,
          signal: init.signal,
          agent: false,
          cert: tls.cert,
          key: tls.key,
          ...(tls.ca.length === 0 ? {} : { ca: [...tls.ca] }),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            resolve({ status: res.statusCode ?? 0, json: async () => JSON.parse(text) as unknown });
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
}
