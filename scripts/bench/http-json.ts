/**
 * One JSON request of the benchmark's control path (who is leader, the revision, health),
 * over plain HTTP or HTTPS with the throwaway CA. fetch cannot take a CA in Node 20
 * without undici's Agent, so HTTPS goes through node:https; plain HTTP keeps fetch. Each
 * call is its own connection: these are a few requests a second, not the measured load.
 */
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import type { ClientTls } from './loadgen.js';

/** What a client of an HTTPS API holds, read from PEM files: the CA, and a client certificate if one is required. */
export function clientTlsOf(files: { readonly ca: string; readonly cert?: string; readonly key?: string }): ClientTls {
  return {
    ca: readFileSync(files.ca),
    ...(files.cert ? { cert: readFileSync(files.cert) } : {}),
    ...(files.key ? { key: readFileSync(files.key) } : {}),
  };
}

export interface JsonAnswer<T> {
  readonly status: number;
  /** The parsed body, or null when it is empty or not JSON. */
  readonly body: T | null;
}

function parse<T>(text: string): T | null {
  try {
    return text ? (JSON.parse(text) as T) : null;
  } catch {
    return null;
  }
}

/** GET (or `init.method`) `url`; rejects on a network error or after `timeoutMs`. */
export async function requestJson<T>(
  url: string,
  init: { readonly method?: string; readonly body?: string } = {},
  timeoutMs = 2000,
  tls?: ClientTls,
): Promise<JsonAnswer<T>> {
  if (!url.startsWith('https:')) {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, body: parse<T>(await res.text()) };
  }
  if (!tls) throw new Error(`${url}: an https URL needs the client TLS options (the CA)`);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: init.method ?? 'GET',
        ca: tls.ca,
        ...(tls.cert ? { cert: tls.cert } : {}),
        ...(tls.key ? { key: tls.key } : {}),
        agent: false,
        timeout: timeoutMs,
        headers: init.body !== undefined ? { 'content-type': 'application/json' } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: parse<T>(Buffer.concat(chunks).toString('utf8')) }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${url}: no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(init.body);
  });
}
