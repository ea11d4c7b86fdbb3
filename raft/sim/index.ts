/**
 * The Raft test kit (`rollcall/raft/sim`): the deterministic simulator, the data-driven
 * interaction environment, and the pieces every harness shares (the safety checker,
 * network cuts, the host's Ready chores).
 */
export type { AppliedEntry, LogView, TermAt } from './checker.js';
export { bytesKey, durableLog, InvariantViolation, SafetyChecker } from './checker.js';
export type { CmdArg, DataDrivenResult, TestData } from './datadriven.js';
export { parseDirective, runDataDriven } from './datadriven.js';
export { describeConf, describeEntry, describeMessage, describeReady } from './describe.js';
export { EventQueue } from './event-queue.js';
export type { RecordingStateMachine } from './host.js';
export { decodeRecording, encodeRecording, persistReady, recordedEntry } from './host.js';
export type { InteractionNode } from './interaction.js';
export { InteractionEnv } from './interaction.js';
export type { LinkFaults } from './network.js';
export { LinkCuts, reliableLink, SimNetwork } from './network.js';
export { SimNode } from './node.js';
export type { SimAction } from './schedule.js';
export { applyAction, runSchedule } from './schedule.js';
export type { SimStats, SimulatorOptions } from './simulator.js';
export { Simulator } from './simulator.js';
