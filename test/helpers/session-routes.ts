/**
 * Sessions and their routes in an in-process app (test/api-helpers.ts), for the tests of
 * which token may act on which session: sessions opened and instances bound straight
 * through the node (past the API and its access checks), the registry's state to compare
 * before and after a refusal, and the session routes called as a given caller.
 */
import type { Command } from '../../src/registry/index.js';
import type { TestApp } from '../api-helpers.js';

/**
 * `app()` is read at each call (the app is built in a beforeAll); `headers(who)` are the
 * request headers of caller `who` (its bearer token).
 */
export function sessionRoutes<Who>(app: () => TestApp, headers: (who: Who) => Record<string, string>) {
  return {
    /** Opens session `id` with a 60-s TTL. */
    open: (id: string) => app().node.apply({ type: 'openSession', sessionId: id, ttlMs: 60_000, now: 1 } as Command),
    /** Registers instance `id` of `namespace`/`service` under session `sessionId`. */
    bind: (namespace: string, service: string, id: string, sessionId: string) =>
      app().node.apply({
        type: 'register',
        namespace,
        service,
        id,
        address: '10.0.0.1',
        port: 80,
        sessionId,
      } as Command),
    /** The registry's state but its applied index and term: equal before and after, nothing changed. */
    state: () => {
      const { appliedIndex: _i, appliedTerm: _t, ...rest } = app().node.registry.dump();
      return JSON.stringify(rest);
    },
    keepalive: (id: string, who: Who, body?: Record<string, unknown>) =>
      app().req({
        method: 'PUT',
        url: `/v1/sessions/${encodeURIComponent(id)}/keepalive`,
        headers: headers(who),
        ...(body === undefined ? {} : { payload: body }),
      }),
    close: (id: string, who: Who) =>
      app().req({ method: 'DELETE', url: `/v1/sessions/${encodeURIComponent(id)}`, headers: headers(who) }),
    /** Registers instance `id` of `namespace`/`service` under `sessionId` through the API. */
    register: (namespace: string, service: string, id: string, sessionId: string, who: Who) =>
      app().req({
        method: 'PUT',
        url: `/v1/namespaces/${namespace}/services/${service}/instances/${id}`,
        headers: headers(who),
        payload: { address: '10.0.0.2', port: 81, sessionId },
      }),
  };
}
