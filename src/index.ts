/**
 * The `rollcall` package: the client SDK. The Raft core is `rollcall/raft`.
 *
 * @example
 * ```ts
 * import { RollcallClient } from 'rollcall';
 * const client = new RollcallClient({ endpoints: process.env.ROLLCALL_ENDPOINTS ?? 'http://127.0.0.1:8101' });
 * ```
 */
export * from './client/index.js';
