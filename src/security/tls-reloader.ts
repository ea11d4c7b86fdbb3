/**
 * Loading TLS material at start and reloading it on SIGHUP.
 *
 * At start every configured set of files is read and checked (tls-files.ts); the first
 * unusable file stops the node with a log line that names it. On reload each set is read
 * and checked again and, if good, put in force through its target's `apply` (a server's
 * `setSecureContext`, the peer transport's next dials): connections already established
 * keep the context they were made with, new ones get the new one. A set that fails keeps
 * the material it had, with an error line naming the file, so a half-copied certificate
 * never takes a listener down.
 */
import type { Logger } from '../log/index.js';
import type { TlsSettings } from './settings.js';
import {
  describeCertificate,
  loadTlsMaterial,
  type TlsFiles,
  type TlsMaterial,
  TlsMaterialError,
} from './tls-files.js';

export type TlsTargetName = keyof TlsSettings;

export interface TlsTarget {
  readonly name: TlsTargetName;
  readonly files: TlsFiles;
  /** Puts new material in force for new connections; established ones keep theirs. */
  readonly apply: (material: TlsMaterial) => void;
}

export type LoadedTls = { readonly [K in TlsTargetName]: TlsMaterial | null };

const FLAG_PREFIX: Record<TlsTargetName, string> = {
  api: '--tls',
  consul: '--consul-tls',
  dns: '--dns-tls',
  peer: '--peer-tls',
};

/** The flag that named `file` for target `name` (for the error a user sees). */
export function tlsFlagFor(name: TlsTargetName, files: TlsFiles, file: string): string {
  const prefix = FLAG_PREFIX[name];
  if (file === files.cert) return `${prefix}-cert`;
  if (file === files.key) return `${prefix}-key`;
  return name === 'peer' ? `${prefix}-ca` : `${prefix}-client-ca`;
}

/** Thrown by `loadTlsAtStart`: which flag's file is unusable, and why. */
export class TlsStartError extends Error {
  override readonly name = 'TlsStartError';
  constructor(
    readonly setting: string,
    readonly problem: TlsMaterialError,
  ) {
    super(problem.message, { cause: problem });
  }
}

/** Reads every configured set; the first unusable file is logged (naming it) and thrown as TlsStartError. */
export function loadTlsAtStart(settings: TlsSettings, logger: Logger, now: Date = new Date()): LoadedTls {
  const load = (name: TlsTargetName): TlsMaterial | null => {
    const files = settings[name];
    if (files === null) return null;
    try {
      const material = loadTlsMaterial(files, now);
      logger.info(
        {
          tls: name,
          ...describeCertificate(material),
          clientCa: name === 'peer' ? undefined : (files.ca ?? undefined),
        },
        `TLS for ${name}`,
      );
      return material;
    } catch (err) {
      if (!(err instanceof TlsMaterialError)) throw err;
      const setting = tlsFlagFor(name, files, err.file);
      logger.error(
        { tls: name, setting, file: err.file, problem: err.problem },
        `TLS certificate refused: ${err.message}`,
      );
      throw new TlsStartError(setting, err);
    }
  };
  return { api: load('api'), consul: load('consul'), dns: load('dns'), peer: load('peer') };
}

export interface ReloadResult {
  readonly reloaded: readonly TlsTargetName[];
  readonly refused: readonly TlsTargetName[];
}

export class TlsReloader {
  private readonly targets: TlsTarget[] = [];

  constructor(
    private readonly logger: Logger,
    private readonly now: () => Date = () => new Date(),
  ) {}

  add(target: TlsTarget): void {
    this.targets.push(target);
  }

  get size(): number {
    return this.targets.length;
  }

  /** Re-reads every target's files and applies each good set; a bad set keeps what it had. */
  reload(): ReloadResult {
    const reloaded: TlsTargetName[] = [];
    const refused: TlsTargetName[] = [];
    if (this.targets.length === 0) {
      this.logger.info('SIGHUP: no TLS certificates to reload');
      return { reloaded, refused };
    }
    for (const target of this.targets) {
      let material: TlsMaterial;
      try {
        material = loadTlsMaterial(target.files, this.now());
      } catch (err) {
        const file = err instanceof TlsMaterialError ? err.file : undefined;
        const setting = file === undefined ? undefined : tlsFlagFor(target.name, target.files, file);
        this.logger.error(
          { tls: target.name, setting, file, problem: err instanceof TlsMaterialError ? err.problem : String(err) },
          `TLS reload refused, keeping the previous certificate: ${(err as Error).message}`,
        );
        refused.push(target.name);
        continue;
      }
      try {
        target.apply(material);
      } catch (err) {
        // E.g. a key and certificate OpenSSL will not pair although they parsed.
        this.logger.error(
          { tls: target.name, err, cert: target.files.cert },
          'TLS reload refused, keeping the previous certificate',
        );
        refused.push(target.name);
        continue;
      }
      this.logger.info(
        { tls: target.name, ...describeCertificate(material) },
        `TLS certificate reloaded for ${target.name}`,
      );
      reloaded.push(target.name);
    }
    return { reloaded, refused };
  }
}
