// The token the page sends, as the node describes it (GET /v1/acl/token/self): its name and
// role beside "forget token", and, for a token limited to namespaces, the one namespace the
// page lists, watches and reads reports of. Such a token may not list or watch across
// namespaces (403), so the page offers only its namespaces, one at a time.

import { getJson, token } from './api.js';
import { byId, h } from './dom.js';

/** GET /v1/acl/token/self (src/server/routes/acl.ts `TokenSelf`). */
interface TokenSelf {
  readonly id?: string;
  readonly name: string;
  readonly role: 'read' | 'register' | 'admin';
  readonly namespaces?: readonly string[];
  readonly servicePrefixes?: readonly string[];
  readonly source: 'replicated' | 'token-file';
}

/** The namespace chosen last in this tab, kept across the reload a new token causes. */
const NAMESPACE_KEY = 'rollcall.namespace';

let namespace: string | null = null;

/** `&namespace=NS` while the token is limited to namespaces; '' when it may read them all. */
export function namespaceParam(): string {
  return namespace === null ? '' : `&namespace=${encodeURIComponent(namespace)}`;
}

/**
 * Asks the node which token this is (when the page has one) and offers the token's
 * namespaces; `onChoose` runs when the person picks another. Resolves once known: a refusal
 * shows in the token form (api.ts), and a node that checks no tokens (409) changes nothing.
 */
export async function loadTokenScope(onChoose: () => void): Promise<void> {
  if (!token()) return;
  let self: TokenSelf;
  try {
    self = await getJson<TokenSelf>('/v1/acl/token/self');
  } catch {
    return;
  }
  const scope = [
    self.role,
    self.source === 'token-file' ? 'token file' : null,
    self.servicePrefixes ? `services ${self.servicePrefixes.map((p) => `${p}*`).join(', ')}` : null,
  ].filter((s) => s !== null);
  const who = byId('token-who');
  who.textContent = `${self.name} (${scope.join('; ')})`;
  who.removeAttribute('hidden');
  const allowed = self.namespaces;
  if (!allowed || allowed.length === 0) return;
  const saved = sessionStorage.getItem(NAMESPACE_KEY);
  namespace = saved !== null && allowed.includes(saved) ? saved : allowed[0]!;
  const select = byId<HTMLSelectElement>('namespace');
  select.replaceChildren(...allowed.map((ns) => h('option', { value: ns, text: ns })));
  select.value = namespace;
  select.addEventListener('change', () => {
    namespace = select.value;
    sessionStorage.setItem(NAMESPACE_KEY, namespace);
    onChoose();
  });
  byId('namespace-pick').removeAttribute('hidden');
}
