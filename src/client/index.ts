/**
 * The Rollcall client SDK: `import { RollcallClient } from 'rollcall'`.
 * See docs/client.md.
 */

export type { BalancerOptions } from './balancer.js';
export { Balancer } from './balancer.js';
export type { CacheSnapshot, CacheView, SelectOptions } from './cache.js';
export { ServiceCache, select } from './cache.js';
export type {
  AclTokenCreated,
  AclTokenInfo,
  AclTokenSelf,
  BlockingOptions,
  DatacenterOption,
  DiscoverOptions,
  DiscoverResult,
  HealthReport,
  InstancePatch,
  InstanceRef,
  MemberSpec,
  NodeHealth,
  PagedReadOptions,
  ReadOptions,
  RollcallClientOptions,
  ServiceListOptions,
  ServicesOptions,
} from './client.js';
export { RollcallClient } from './client.js';
export {
  ApiError,
  ClientClosedError,
  CompactedError,
  DatacenterUnreachableError,
  NoInstanceError,
  RollcallError,
  TimeoutError,
  UnavailableError,
  UnknownDatacenterError,
  UnsupportedError,
} from './errors.js';
export type { ClientTls } from './http.js';
export type { PageOptions } from './pages.js';
export { DEFAULT_PAGE_SIZE } from './pages.js';
export type { Picked, Picker, PickerName } from './pickers.js';
export { createPicker, LeastOutstandingPicker, RandomPicker, RoundRobinPicker, WeightedPicker } from './pickers.js';
export type { RegisterOptions, RegistrationEvents } from './registration.js';
export { Registration } from './registration.js';
export type { RoutingPolicy } from './routing.js';
export { DEFAULT_RESERVED_CLUSTERS, route } from './routing.js';
export type { SseMessage } from './sse.js';
export { SseParser } from './sse.js';
export type * from './types.js';
export type { WatchOptions } from './watch.js';
export { Watch } from './watch.js';
