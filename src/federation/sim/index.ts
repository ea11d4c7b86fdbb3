/** The deterministic federation simulator: a test kit for the gossip layer. */
export { FederationWorld, mix, type SimNode, type VerdictCounts, type WorldOptions } from './world.js';
export { dcName, runFederationSim, type FederationSimOptions, type FederationSimReport } from './scenarios.js';
