/**
 * The state-machine version gate on this node (src/registry/version.ts): a build never
 * starts on, nor applies past, a cluster version higher than the one it implements, since
 * applying on would diverge from the members that do implement it.
 */
import { buildStateMachineVersion, StateMachineVersionError } from '../registry/index.js';

/** The version this build implements: `configured` (tests lower it), else the build's own. */
export function buildVersionOf(configured: number | undefined): number {
  return configured ?? buildStateMachineVersion();
}

/** Throws StateMachineVersionError when the cluster runs a version past `buildVersion`. */
export function assertClusterVersionSupported(clusterVersion: number, buildVersion: number): void {
  if (clusterVersion > buildVersion) throw new StateMachineVersionError(buildVersion, clusterVersion);
}
