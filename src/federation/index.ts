/**
 * Federation between Rollcall clusters: each cluster is one datacenter; datacenters find each
 * other and watch each other's health by gossip. This module is the gossip and
 * failure-detection core, with no I/O of its own (see engine.ts); the node wires it to HTTP,
 * durable storage and `?dc=` forwarding. docs/federation.md explains the model.
 */

export { DATACENTER_NAME, DEFAULT_TUNING, type GossipTuning, isDatacenterName } from './config.js';
export { FederationEngine, type FederationOptions } from './engine.js';
export { ENVELOPE_VERSION } from './envelope.js';
export { compareDescriptors, type Descriptor, type Liveness, makeDescriptor, mergeLiveness } from './merge.js';
export { type SuspicionBounds, suspicionBounds, suspicionTimeoutMs } from './suspicion.js';
export type {
  DatacenterSnapshot,
  DatacenterStatus,
  DescriptorVersion,
  FederationEvent,
  FederationKnowledge,
  FederationSnapshot,
  FederationStats,
  KnownDatacenter,
  LocalView,
  MemberInfo,
  MemberRef,
  MemberRole,
  MemberSnapshot,
  MemberStatus,
  ReceiveResult,
  RefusalReason,
  Route,
} from './types.js';
