/** The deterministic federation simulator: a test kit for the gossip layer. */

export { dcName, type FederationSimOptions, type FederationSimReport, runFederationSim } from './scenarios.js';
export { FederationWorld, mix, type SimNode, type VerdictCounts, type WorldOptions } from './world.js';
