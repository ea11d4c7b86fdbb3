/**
 * Security: TLS material (read, checked, reloaded on SIGHUP) and how a peer certificate
 * names its node. See docs/security.md.
 */

export {
  describeHandshakeFailure,
  type HandshakeFailure,
  type HandshakeRefusal,
  HandshakeRefusals,
  onRefusedHandshake,
  type TlsListenerName,
} from './handshake-refusals.js';
export { httpsRelayFetch, type RelayTls } from './https-relay.js';
export { certificateNodeIds, NODE_ID_URI_PREFIX, nodeIdUri } from './node-identity.js';
export {
  FEDERATION_TLS_FLAGS,
  NO_TLS,
  readFederationTlsFiles,
  readTlsFiles,
  readTlsSettings,
  TLS_ENV,
  TLS_FLAGS,
  type TlsListenerFlags,
  type TlsSettings,
  type TlsTargetName,
} from './settings.js';
export {
  type ClientTlsFiles,
  type ClientTlsMaterial,
  checkValidity,
  describeCertificate,
  loadClientTlsMaterial,
  loadTlsMaterial,
  secureContextOptions,
  serverTlsOptions,
  type TlsFiles,
  type TlsMaterial,
  TlsMaterialError,
} from './tls-files.js';
export {
  type LoadedTls,
  loadTlsAtStart,
  type Reloadable,
  ReloadableTls,
  type ReloadResult,
  startMaterial,
  type TlsApply,
  TlsReloader,
  TlsStartError,
  tlsFlagFor,
} from './tls-reloader.js';
