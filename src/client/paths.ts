/** The HTTP API's URL paths, with every caller-supplied segment percent-encoded. */

/** Percent-encodes one path segment. */
export const seg = (s: string): string => encodeURIComponent(s);

/** The instances of one service: `/v1/namespaces/{namespace}/services/{service}/instances`. */
export function servicePath(namespace: string, service: string): string {
  return `/v1/namespaces/${seg(namespace)}/services/${seg(service)}/instances`;
}
