/**
 * The master key on the command line: where it may come from, and how no message ever shows it
 * (nor anything that looks like it, such as a key pasted where a path belongs).
 */
import { readFileSync } from 'node:fs';
import { CliError, UsageError } from './usage.ts';

/** 32 or more hex digits in a row: a key (or a key's half) as text. Never printed. */
const KEY_LIKE = /[0-9a-fA-F]{32,}/g;

/** How a key-like run of text is shown instead. */
const HIDDEN = '<hidden: looks like a key>';

/**
 * `text` with every run that looks like a key replaced, for anything written to stderr.
 * @example
 * redactKeys(`no store at ${'ab'.repeat(32)}`); // 'no store at <hidden: looks like a key>'
 */
export function redactKeys(text: string): string {
  return text.replace(KEY_LIKE, HIDDEN);
}

/** Whether `text` holds a run that looks like a key. */
function looksLikeKey(text: string): boolean {
  return text.match(KEY_LIKE) !== null;
}

/**
 * A path as messages show it: as given, unless it looks like a key.
 * @example
 * `no store at ${shownPath(dir)}`
 */
export function shownPath(path: string): string {
  return looksLikeKey(path) ? 'a path that looks like a key (not shown)' : path;
}

const WHERE_A_KEY_COMES_FROM = 'put the key (64 hex characters or 32 bytes) in a file and pass --master-key-file <file>, or set COHERENCE_MASTER_KEY';

const FILE_ERRORS: Record<string, string> = {
  ENOENT: 'no such file',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  ENAMETOOLONG: 'the name is too long',
};

/**
 * Why a file could not be read, in words, from the error's code only (its message holds the path).
 * @example
 * fileProblem(Object.assign(new Error(), { code: 'ENOENT' })); // 'no such file'
 */
export function fileProblem(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return (code !== undefined ? FILE_ERRORS[code] : undefined) ?? (code ?? 'unknown error');
}

/**
 * The master key: from `--master-key-file` (64 hex characters, or 32 raw bytes), else from
 * COHERENCE_MASTER_KEY, else none.
 * @throws CliError when the file cannot be read; the message never holds the path given, which
 *   may be a key pasted by mistake.
 * @example
 * const key = masterKey(cli.opts().masterKeyFile, process.env);
 */
export function masterKey(file: string | undefined, env: NodeJS.ProcessEnv): string | Uint8Array | undefined {
  if (file !== undefined) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(file);
    } catch (error) {
      const pasted = looksLikeKey(file) ? '; what was given looks like a key itself: keys never go in arguments (they show in the process list and the shell history)' : '';
      throw new CliError(`--master-key-file: cannot read the file (${fileProblem(error)})${pasted}; ${WHERE_A_KEY_COMES_FROM}`);
    }
    const text = bytes.toString('utf8').trim();
    return /^[0-9a-fA-F]{64}$/.test(text) ? text : new Uint8Array(bytes);
  }
  const fromEnv = env.COHERENCE_MASTER_KEY;
  return fromEnv === undefined || fromEnv === '' ? undefined : fromEnv.trim();
}

/**
 * Refuses a master key given as an option (`--master-key <key>` or `--master-key=<key>`), before
 * the parser can echo it, and says where a key comes from instead.
 * @throws UsageError naming the option only.
 * @example
 * refuseKeyArguments(process.argv.slice(2));
 */
export function refuseKeyArguments(argv: readonly string[]): void {
  for (const arg of argv) {
    if (arg === '--') return;
    if (arg === '--master-key' || arg.startsWith('--master-key=')) {
      throw new UsageError(`unknown option '--master-key': a master key is never an argument; ${WHERE_A_KEY_COMES_FROM}`);
    }
  }
}
