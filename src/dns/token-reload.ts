/**
 * `--dns-token-file` again on SIGHUP, as the TLS certificates are (src/security/tls-reloader.ts):
 * the file is read and checked as at start, and a good token is what DNS reads with from the
 * next question on. A file that cannot be read, does not hold one secret, or holds a token
 * that can never read (dnsTokenProblem) keeps the token in force, with an error line naming
 * the file and what is wrong, never the secret; send SIGHUP again once the file is right.
 */
import type { Logger } from '../log/index.js';
import type { Reloadable } from '../security/index.js';
import { type DnsAccess, type DnsAccessOptions, dnsTokenProblem } from './access.js';
import { DnsTokenFileError, readDnsTokenSync } from './settings.js';

export class DnsTokenReload implements Reloadable {
  readonly name = 'dns-token';
  #secret: string;

  /**
   * @param file the --dns-token-file path
   * @param secret the secret read from it at start
   * @param checks the node's token checks (--token-file, --acl), fixed while it runs
   */
  constructor(
    private readonly file: string,
    secret: string,
    private readonly checks: Pick<DnsAccessOptions, 'file' | 'acl'>,
    private readonly access: Pick<DnsAccess, 'setSecret'>,
  ) {
    this.#secret = secret;
  }

  /** Reads the file again; puts a usable token in force, or keeps the old one and logs why. True when it read a usable token. */
  reload(logger: Logger): boolean {
    const log = logger.child({ part: 'dns' });
    let secret: string;
    try {
      secret = readDnsTokenSync(this.file);
    } catch (err) {
      if (!(err instanceof DnsTokenFileError)) throw err;
      log.error(
        { flag: '--dns-token-file', file: this.file, problem: err.message },
        `DNS token reload refused, keeping the previous token: ${err.message}`,
      );
      return false;
    }
    const problem = dnsTokenProblem(secret, this.checks);
    if (problem !== null) {
      log.error(
        { flag: '--dns-token-file', file: this.file, problem },
        `DNS token reload refused, keeping the previous token: ${this.file} ${problem}`,
      );
      return false;
    }
    if (secret === this.#secret) {
      log.info({ flag: '--dns-token-file', file: this.file }, 'DNS token unchanged');
      return true;
    }
    this.#secret = secret;
    log.info({ flag: '--dns-token-file', file: this.file }, 'DNS token reloaded: the next question reads with it');
    this.access.setSecret(secret);
    return true;
  }
}
