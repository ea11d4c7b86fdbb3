/** Waiting on a federation of real clusters (test/*federation*.test.ts). */
import { http, waitFor } from './http.js';

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
