/**
 * `GET /v1/acl/token/self` as Consul serves it: the calling token, shaped as Consul's
 * ACLToken, so `consul acl token read -self`, the Go `api.ACL().TokenReadSelf()` and tools
 * that ask "is my token valid, what may it do" work against Rollcall. The rest of Consul's
 * ACL system (policies, roles, token CRUD) is not served: tokens are made through the
 * Rollcall API (docs/security.md).
 *
 * - `SecretID` is `<hidden>`, Consul's own marker for a secret it does not show. Consul
 *   echoes the secret to its holder; Rollcall keeps only a digest, and echoing what the
 *   caller sent would put a secret in a response body (proxy logs, caches, debug dumps) for
 *   no gain: the caller has it.
 * - `Policies`: an admin token links Consul's built-in `global-management` policy (its
 *   well-known ID), so tools that look for it recognise an all-powerful token; a read or
 *   register token links a policy named after its role, `rollcall-read` or
 *   `rollcall-register`, which Consul's policy endpoints do not serve.
 * - `Local` is true for a `--token-file` token (it exists on this node only), false for a
 *   replicated one. `AccessorID` and `CreateIndex` are empty and 0 for a --token-file token.
 * - `Rollcall`: the native description (`GET /v1/acl/token/self`), scopes included: Consul's
 *   token shape has no field for a list of namespaces or service-name prefixes.
 * - Access control off on this listener: 401 `ACL support disabled`, as Consul answers.
 */
import { describeSelf } from '../server/routes/acl.js';
import { ConsulError } from './errors.js';
import type { ConsulContext } from './request.js';
import type { Routes } from './routing.js';

/** Consul's built-in management policy (structs.ACLPolicyGlobalManagementID). */
const GLOBAL_MANAGEMENT = { ID: '00000000-0000-0000-0000-000000000001', Name: 'global-management' } as const;

export function aclRoutes(routes: Routes, ctx: ConsulContext): void {
  routes.add({
    method: 'GET',
    url: '/v1/acl/token/self',
    access: 'token',
    namespaced: false,
    handler: async (req) => {
      if (ctx.tokens === null) throw new ConsulError(401, 'ACL support disabled');
      const p = req.principal;
      // authorize() identified the token before this ran; a revoke applied since makes it unknown.
      const self = p === null ? null : describeSelf(ctx.node.registry, p);
      if (self === null) throw new ConsulError(403, 'ACL not found');
      const policy =
        self.role === 'admin' ? GLOBAL_MANAGEMENT : { ID: `rollcall-${self.role}`, Name: `rollcall-${self.role}` };
      return {
        AccessorID: self.id ?? '',
        SecretID: '<hidden>',
        Description: self.name,
        Policies: [policy],
        Roles: [],
        ServiceIdentities: [],
        NodeIdentities: [],
        Local: self.source === 'token-file',
        CreateIndex: self.createRevision ?? 0,
        ModifyIndex: self.createRevision ?? 0,
        Rollcall: self,
      };
    },
  });
}
