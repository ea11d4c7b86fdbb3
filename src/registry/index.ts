/** The registry state machine: replicated commands, their deterministic apply, reads, history and expiry logic. */

export type { AccessRule, AccessRulesDoc, ParsedRules, RulesInForce, Verdict } from './access.js';
export {
  CompiledRules,
  EMPTY_RULES,
  ENVIRONMENT_KEY,
  MAX_RULES,
  metadataVerdict,
  parseAccessRules,
  parseCidr,
  registerVerdict,
  rulesInForce,
  updateVerdict,
} from './access.js';
export type {
  BootstrapAcl,
  ClearSuspect,
  ClientCommand,
  ClientRef,
  CloseSession,
  Command,
  CommandError,
  CommandOk,
  CommandResult,
  CommandType,
  CreateToken,
  ErrorCode,
  Expire,
  InstancePatch,
  LeaderCommand,
  MarkSuspect,
  MemberCommand,
  OpenSession,
  RecordMemberStarted,
  Register,
  RevokeToken,
  SetAccessRules,
  SetCheckHealth,
  SetClusterVersion,
  SetHealth,
  SetHealthPolicy,
  TokenFields,
  Unregister,
  Update,
} from './commands.js';
export { DEFAULT_MAX_CLIENTS } from './dedup.js';
export type { HistoryListener, HistoryNotice } from './history.js';
export { DEFAULT_HISTORY_SIZE, EventHistory } from './history.js';
export type {
  AccessRules,
  AclToken,
  ConfState,
  DeleteEvent,
  EventCause,
  Health,
  Instance,
  PutEvent,
  RegistryEvent,
  ServiceSummary,
  Session,
  SettableHealth,
  StoredAccessRules,
  StoredHealthPolicy,
} from './model.js';
export { DEFAULT_CLUSTER, DEFAULT_WEIGHT, HEALTH_STATES } from './model.js';
export type { BatchOp, SmStore } from './persistence.js';
export {
  CorruptStateError,
  META_APPLIED_KEY,
  META_CLUSTER_VERSION_KEY,
  META_CONF_KEY,
  META_REVISION_KEY,
  META_STARTED_MEMBERS_KEY,
} from './persistence.js';
export type {
  AppliedEntry,
  ApplyOutcome,
  InstanceFilter,
  InstanceList,
  RegistryDump,
  RegistryOptions,
} from './registry.js';
export { Registry } from './registry.js';
export type { Due, KeepaliveOutcome, ProtectedService, SessionTrackerOptions, TrackerView } from './session-tracker.js';
export { commandsFor, DEFAULT_TRACKER_OPTIONS, SessionTracker } from './session-tracker.js';
export { LIMITS, parseCommand, RESERVED_METADATA_KEY } from './validate.js';
export {
  BASE_CLUSTER_VERSION,
  buildStateMachineVersion,
  INTRODUCED_IN,
  MEMBER_ADDRESSES_SINCE,
  MEMBER_STARTED_SINCE,
  RECORD_KEY_UNCOUNTED_SINCE,
  STATE_MACHINE_VERSION,
  StateMachineVersionError,
} from './version.js';
