/**
 * The Consul listener never logs a token, including one sent as Consul lets a client send it,
 * in the query string (`?token=`), at any log level: over a real Registry in one process,
 * with every log line captured at debug.
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { buildConsulApp, type ConsulApp } from '../src/consul/index.js';
import { createLogger } from '../src/log/index.js';
import { TokenAuthority } from '../src/server/auth.js';
import { InMemoryNodeApi } from './in-memory-node-api.js';

const SECRET = 'query-string-secret-0123456789';

describe('Consul listener logs', () => {
  let consul: ConsulApp | undefined;
  afterEach(async () => {
    await consul?.app.close();
  });

  it('a ?token= query is not logged on a member marked corrupt (token_in_query_logged)', async () => {
    const node = await InMemoryNodeApi.create();
    const lines: string[] = [];
    const logger = createLogger({
      level: 'debug',
      destination: new Writable({
        write(chunk, _enc, cb) {
          lines.push(String(chunk));
          cb();
        },
      }),
    });
    const tokens = TokenAuthority.parse(JSON.stringify([{ token: SECRET, role: 'read', name: 'reader' }]));
    consul = buildConsulApp({ node, logger, tokens });
    node.integrity.selfCorruption = { by: 'n1', detail: 'hash differs at index 7', at: 0 };
    const r = await consul.app.inject({ method: 'GET', url: `/v1/catalog/services?token=${SECRET}&stale` });
    expect(r.statusCode).toBe(500);
    // The refusal was logged (so the test reads the line that could hold it), without the secret.
    expect(lines.some((l) => l.includes('this member is marked corrupt'))).toBe(true);
    expect(lines.filter((l) => l.includes(SECRET))).toEqual([]);
  });
});
