/** Waiting on a federation of real clusters (test/*federation*.test.ts). */
import { http, waitFor } from './http.js';

/** The flags that make a LocalCluster one datacenter of a test federation: its name, the secret every datacenter shares, a fast gossip round, and the seeds to join through. */
export function federationArgs(
  dc: string,
  join: readonly string[],
  options: { readonly secret: string; readonly roundMs: number },
): string[] {
  return [
    '--datacenter',
    dc,
    '--federation-secret',
    options.secret,
    '--federation-interval-ms',
    String(options.roundMs),
    ...(join.length > 0 ? ['--federation-join', join.join(',')] : []),
  ];
}

/** Until every node at `urls` reports every datacenter in `names` alive in GET /v1/federation. */
export async function waitForDatacentersAlive(
  urls: readonly string[],
  names: readonly string[],
  timeoutMs = 30_000,
): Promise<void> {
  await waitFor(
    `every node sees ${names.join(', ')} alive`,
    async () => {
      const views = await Promise.all(
        urls.map(
          async (url) =>
            (await http<{ datacenters: { name: string; status: string }[] }>('GET', `${url}/v1/federation`)).body,
        ),
      );
      return views.every((v) => names.every((dc) => v.datacenters.some((d) => d.name === dc && d.status === 'alive')));
    },
    timeoutMs,
  );
}
