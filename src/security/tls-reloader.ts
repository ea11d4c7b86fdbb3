/**
 * A listener's TLS material, loaded at start and reloaded on SIGHUP: `ReloadableTls` is
 * one listener's flags (settings.ts) turned into checked material that stays current, and
 * `TlsReloader` reloads every one of them when the node gets SIGHUP.
 *
 * At start every configured set of files is read and checked (tls-files.ts); the first
 * unusable file stops the node with a log line that names its flag and file. On reload each
 * set is read and checked again and, if good, handed to whoever serves with it (a server's
 * `setSecureContext`, the peer transport's next dials, the probe listener's thread):
 * connections already established keep the context they were made with, new ones get the
 * new one. A set that fails keeps the material it had, with an error line naming the file,
 * so a half-copied certificate never takes a listener down.
 */
import { createSecureContext } from 'node:tls';
import type { Logger } from '../log/index.js';
import { TLS_FLAGS, type TlsSettings, type TlsTargetName } from './settings.js';
import {
  describeCertificate,
  loadTlsMaterial,
  secureContextOptions,
  type TlsFiles,
  type TlsMaterial,
  TlsMaterialError,
} from './tls-files.js';

export type { TlsTargetName } from './settings.js';

/** The flag that named `file` for target `name` (for the error a user sees). */
export function tlsFlagFor(name: TlsTargetName, files: TlsFiles, file: string): string {
  const flags = TLS_FLAGS[name];
  if (file === files.cert) return `--${flags.prefix}-cert`;
  if (file === files.key) return `--${flags.prefix}-key`;
  return `--${flags.caFlag}`;
}

/** Thrown by `ReloadableTls.load`: which flag's file is unusable, and why. */
export class TlsStartError extends Error {
  override readonly name = 'TlsStartError';
  constructor(
    readonly setting: string,
    readonly problem: TlsMaterialError,
  ) {
    super(problem.message, { cause: problem });
  }
}

/** Puts new material in force for new connections; established ones keep theirs. May throw to refuse it. */
export type TlsApply = (material: TlsMaterial) => void;

/**
 * One listener's TLS: the files its flags name and the material in force, which `reload()`
 * replaces and hands to every `onReload` subscriber. Several listeners may serve one set
 * (the HTTP API and an https:// probe listener share the API's).
 */
export class ReloadableTls {
  #material: TlsMaterial;
  readonly #subscribers: TlsApply[] = [];

  constructor(
    readonly name: TlsTargetName,
    readonly files: TlsFiles,
    material: TlsMaterial,
  ) {
    this.#material = material;
  }

  /** Reads and checks the files; an unusable one is logged (naming its flag and file) and thrown as TlsStartError. */
  static load(name: TlsTargetName, files: TlsFiles, logger: Logger, now: Date = new Date()): ReloadableTls {
    try {
      const material = loadTlsMaterial(files, now);
      logger.info(
        {
          tls: name,
          ...describeCertificate(material),
          clientCa: TLS_FLAGS[name].caRequired ? undefined : (files.ca ?? undefined),
        },
        `TLS for ${name}`,
      );
      return new ReloadableTls(name, files, material);
    } catch (err) {
      if (!(err instanceof TlsMaterialError)) throw err;
      const setting = tlsFlagFor(name, files, err.file);
      logger.error(
        { tls: name, setting, file: err.file, problem: err.problem },
        `TLS certificate refused: ${err.message}`,
      );
      throw new TlsStartError(setting, err);
    }
  }

  /** The material in force now. */
  get material(): TlsMaterial {
    return this.#material;
  }

  /** `apply` gets every set a reload puts in force. */
  onReload(apply: TlsApply): void {
    this.#subscribers.push(apply);
  }

  /** Reads the files again; puts a good set in force and hands it on; a bad one keeps the old. True when reloaded. */
  reload(logger: Logger, now: Date = new Date()): boolean {
    let material: TlsMaterial;
    try {
      material = loadTlsMaterial(this.files, now);
      // What OpenSSL refuses although the files parsed (a key and certificate it will not
      // pair): found before any subscriber has the set, so none is left with it alone.
      createSecureContext(secureContextOptions(material));
    } catch (err) {
      const file = err instanceof TlsMaterialError ? err.file : undefined;
      const setting = file === undefined ? undefined : tlsFlagFor(this.name, this.files, file);
      logger.error(
        {
          tls: this.name,
          setting,
          file: file ?? this.files.cert,
          problem: err instanceof TlsMaterialError ? err.problem : String(err),
        },
        `TLS reload refused, keeping the previous certificate: ${(err as Error).message}`,
      );
      return false;
    }
    this.#material = material;
    for (const apply of this.#subscribers) {
      try {
        apply(material);
      } catch (err) {
        logger.error(
          { tls: this.name, err, cert: this.files.cert },
          'TLS reload: a listener refused the new certificate',
        );
        return false;
      }
    }
    logger.info({ tls: this.name, ...describeCertificate(material) }, `TLS certificate reloaded for ${this.name}`);
    return true;
  }
}

export type LoadedTls = { readonly [K in TlsTargetName]: ReloadableTls | null };

/** The material each listener starts with. */
export function startMaterial(loaded: LoadedTls): { readonly [K in TlsTargetName]: TlsMaterial | null } {
  return {
    api: loaded.api?.material ?? null,
    consul: loaded.consul?.material ?? null,
    dns: loaded.dns?.material ?? null,
    peer: loaded.peer?.material ?? null,
  };
}

/** Loads every configured listener's TLS (ReloadableTls.load); the first unusable file throws TlsStartError. */
export function loadTlsAtStart(settings: TlsSettings, logger: Logger, now: Date = new Date()): LoadedTls {
  const load = (name: TlsTargetName): ReloadableTls | null => {
    const files = settings[name];
    return files === null ? null : ReloadableTls.load(name, files, logger, now);
  };
  return { api: load('api'), consul: load('consul'), dns: load('dns'), peer: load('peer') };
}

export interface ReloadResult {
  readonly reloaded: readonly string[];
  readonly refused: readonly string[];
}

/**
 * Whatever SIGHUP reloads: a listener's ReloadableTls, or a client side's material (the
 * federation links, src/federation/http-client.ts). `reload` keeps the old material when
 * the new one is unusable, logs why, and says whether it reloaded.
 */
export interface Reloadable {
  readonly name: string;
  reload(logger: Logger, now?: Date): boolean;
}

/** Reloads every listener's TLS at once (SIGHUP). */
export class TlsReloader {
  readonly #targets: Reloadable[];

  constructor(
    private readonly logger: Logger,
    targets: LoadedTls | readonly (Reloadable | null)[],
    private readonly now: () => Date = () => new Date(),
  ) {
    const all: readonly (Reloadable | null)[] = Array.isArray(targets) ? targets : Object.values(targets as LoadedTls);
    this.#targets = all.filter((t): t is Reloadable => t !== null);
  }

  get size(): number {
    return this.#targets.length;
  }

  /** Re-reads every target's files and puts each good set in force; a bad set keeps what it had. */
  reload(): ReloadResult {
    const reloaded: string[] = [];
    const refused: string[] = [];
    if (this.#targets.length === 0) {
      this.logger.info('SIGHUP: no TLS certificates to reload');
      return { reloaded, refused };
    }
    for (const target of this.#targets) (target.reload(this.logger, this.now()) ? reloaded : refused).push(target.name);
    return { reloaded, refused };
  }
}
