/**
 * Rollcall's Raft core: a pure, deterministic consensus library.
 *
 * @example
 * ```ts
 * import { RawNode, MemoryStorage, SeededRandom } from 'rollcall/raft';
 * const storage = new MemoryStorage({ voters: ['a', 'b', 'c'], learners: [] });
 * const node = new RawNode({ id: 'a', storage, electionTick: 10, heartbeatTick: 1, random: new SeededRandom(1) });
 * // tick() on a timer, step() messages from peers, then:
 * if (node.hasReady()) {
 *   const rd = node.ready();
 *   send(rd.messages);
 *   storage.append(rd.entries); // and hard state, snapshot; fsync if rd.mustSync
 *   send(node.advance(rd));
 *   apply(rd.committedEntries); // conf entries through node.applyConfChange()
 *   const last = rd.committedEntries[rd.committedEntries.length - 1];
 *   if (last) node.appliedTo(last.index);
 * }
 * ```
 */

export { bootstrapEntries, bootstrapHardState } from './bootstrap.js';
export { applyChange } from './confchange.js';
export * from './errors.js';
export * from './messages.js';
export type { ProgressState } from './progress.js';
export type { RaftConfig } from './raft.js';
export * from './rand.js';
export * from './rawnode.js';
export type { StandaloneInput, StandalonePlan } from './standalone.js';
export { standalonePlan } from './standalone.js';
export * from './storage.js';
