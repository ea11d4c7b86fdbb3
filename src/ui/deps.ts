/**
 * What the monitoring routes need from a node: a structural slice of RollcallNode (the
 * in-process FakeNode of the API tests satisfies it too), plus the health parts that the
 * node offers (its leader's health tracker and the replicated health policy).
 */
import type { HealthPolicy, TrackedHealth, WebhookPoster } from '../health/index.js';
import type { Logger } from '../log/index.js';
import type { RollcallNode } from '../node/index.js';
import type { ClientRef, CommandResult, StoredHealthPolicy } from '../registry/index.js';

export interface PolicyWriteOptions {
  readonly expectedRevision?: number;
  readonly client?: ClientRef;
}

export type MonitorNode = Pick<RollcallNode, 'id' | 'leader' | 'status' | 'readBarrier' | 'registry'>;

export interface UiDeps {
  readonly node: MonitorNode;
  /** Deadline of a linearizable read (default 5000 ms). */
  readonly timeoutMs?: number;
  /** The most items one listing answer may hold (default 10,000; see src/server/listing/serve.ts). */
  readonly listMaxItems?: number | undefined;
}

/** A fetch as the relay of health reports uses it (injected in tests). */
export type RelayFetch = (url: string, init: { headers: Record<string, string>; signal: AbortSignal }) => Promise<{ readonly status: number; json(): Promise<unknown> }>;

export interface HealthDeps {
  readonly node: MonitorNode;
  readonly logger?: Logger;
  /**
   * The leader's health tracker (RollcallNode.healthReports): what it holds when this node
   * leads, null when it does not. Absent: this node keeps no reports at all.
   */
  readonly reports?: () => readonly TrackedHealth[] | null;
  /** The replicated policy in force and the revision that stored it (null: defaults only). */
  readonly policy?: () => StoredHealthPolicy | null;
  /**
   * Stores a new policy through the log (with `expectedRevision`: only if the stored one is
   * still at that revision; with `client`: exactly once) and resolves with the applied
   * result; a node failure (no leader, timeout) rejects with a NodeError. Absent: PUT
   * /v1/health/policy is not served.
   */
  readonly setPolicy?: (policy: HealthPolicy, options: PolicyWriteOptions) => Promise<CommandResult>;
  /** Where alerts go (the leader posts; followers never do). */
  readonly webhook?: WebhookPoster | null;
  /** How often alerts are evaluated (default 1000 ms). */
  readonly alertIntervalMs?: number;
  /** How a follower asks the leader for reports (default: global fetch). */
  readonly relayFetch?: RelayFetch;
  readonly timeoutMs?: number;
}
