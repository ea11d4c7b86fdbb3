/** The deterministic simulator: a test kit for the Raft core. */
export { EventQueue } from './event-queue.js';
export type { LinkFaults } from './network.js';
export { reliableLink, SimNetwork } from './network.js';
export { SimNode } from './node.js';
export type { SimAction } from './schedule.js';
export { applyAction, runSchedule } from './schedule.js';
export type { SimStats, SimulatorOptions } from './simulator.js';
export { InvariantViolation, Simulator } from './simulator.js';
