import type { PeerAddress } from './types.js';

/** `HOST:PORT` (IPv6 hosts may be bracketed) → address; null when it is not one. */
export function parseHostPort(text: string): PeerAddress | null {
  const m = /^(.+):(\d{1,5})$/.exec(text.trim());
  if (!m) return null;
  const port = Number(m[2]);
  if (port > 65535) return null;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

export function formatHostPort(a: PeerAddress): string {
  return a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}
