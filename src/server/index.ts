/** The HTTP API of a node. */
export { type AppOptions, buildApp } from './app.js';
export { type Permission, type Principal, type Role, TokenAuthority, TokenFileError } from './auth.js';
export { ERROR_CATALOGUE, type ErrorCode, errorBody } from './errors.js';
export type { NodeApi } from './node-api.js';
export { type WatchFilter, WatchHub, type WatchHubOptions, type WatchSink, type WatchStats } from './watch/hub.js';
