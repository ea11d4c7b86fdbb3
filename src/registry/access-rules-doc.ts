// The access rules document's shapes (docs/api.md "Access rules"), apart from access.ts, which
// needs node:net: the SDK types (src/client/types.ts) and through them the monitoring page's
// browser code import these.

/** One allow or deny rule (docs/api.md "Access rules"): every field it gives must match. */
export interface AccessRule {
  readonly name?: string;
  readonly namespace?: string;
  readonly service?: string;
  /** An IPv4 or IPv6 address or range containing the instance's address. */
  readonly cidr?: string;
}

/** The access rules document (every field optional when sent; filled in with the defaults when read back). */
export interface AccessRulesDoc {
  /** The registry's environment label, or null. */
  readonly environment: string | null;
  /** True: instances must carry `metadata.environment`. */
  readonly requireEnvironment: boolean;
  readonly allow: readonly AccessRule[];
  readonly deny: readonly AccessRule[];
}
