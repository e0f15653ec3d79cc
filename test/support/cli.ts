/**
 * Running the `coherence` command as a real child process, the way a user does.
 */
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The package's `bin`. */
export const binPath = fileURLToPath(new URL('../../bin/coherence.cjs', import.meta.url));

export interface CliOptions {
  /** Sets COHERENCE_STORE (the environment is otherwise cleared of coherence's variables). */
  store?: string;
  /** Sets COHERENCE_MASTER_KEY. */
  masterKey?: string;
  /** Written to stdin, which is then closed (closed at once when omitted). */
  input?: string;
}

export interface CliRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The environment of a run: ours, without the caller's own COHERENCE_* settings. */
function environment(options: CliOptions): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.COHERENCE_STORE;
  delete env.COHERENCE_MASTER_KEY;
  if (options.store !== undefined) env.COHERENCE_STORE = options.store;
  if (options.masterKey !== undefined) env.COHERENCE_MASTER_KEY = options.masterKey;
  return env;
}

function run(command: string, args: string[], options: CliOptions): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: environment(options), stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk; });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    // A command that exits without reading stdin (--help, a usage error) closes the pipe under us.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

/**
 * Runs `coherence ...args` to completion, with stdout and stderr piped. Asynchronous, so that
 * independent runs can overlap (each one pays Node's start-up).
 */
export function cli(args: string[], options: CliOptions = {}): Promise<CliRun> {
  return run(process.execPath, [binPath, ...args], options);
}

/** Runs the tasks, at most `limit` at a time, and returns their results in order. */
export async function inParallel<const T extends readonly (() => Promise<unknown>)[]>(tasks: T, limit = 4): Promise<{ -readonly [K in keyof T]: Awaited<ReturnType<T[K]>> }> {
  const results: unknown[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const index = next++;
      results[index] = await (tasks[index] as () => Promise<unknown>)();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return results as { -readonly [K in keyof T]: Awaited<ReturnType<T[K]>> };
}

/** Parses NDJSON output, one value per non-empty line. */
export function ndjson(text: string): unknown[] {
  return text.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as unknown);
}

/** Events as NDJSON lines, as `append` reads them. */
export function toNdjson(values: unknown[]): string {
  return values.map((value) => `${JSON.stringify(value)}\n`).join('');
}

/** A long-running command (`read --follow`) whose output is watched line by line. */
export interface RunningCli {
  /** Every complete stdout line so far, parsed. */
  readonly lines: unknown[];
  /** Resolves once a line satisfies `predicate` (checking the lines seen so far too). */
  waitFor(predicate: (line: unknown) => boolean, timeoutMs?: number): Promise<unknown>;
  /** Sends `signal` and resolves with how the process ended. */
  stop(signal: NodeJS.Signals, timeoutMs?: number): Promise<CliRun>;
}

/** Starts `coherence ...args` and leaves it running. */
export function startCli(args: string[], options: CliOptions = {}): RunningCli {
  const child = spawn(process.execPath, [binPath, ...args], { env: environment(options), stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: unknown[] = [];
  let stdout = '';
  let stderr = '';
  let pending = '';
  const waiters = new Set<() => void>();
  const ended = new Promise<CliRun>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status, signal) => {
      resolve({ status, signal, stdout, stderr });
      for (const wake of waiters) wake();
    });
  });
  let exited = false;
  void ended.then(() => { exited = true; });
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    pending += chunk;
    let newline: number;
    while ((newline = pending.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(pending.slice(0, newline)) as unknown);
      pending = pending.slice(newline + 1);
    }
    for (const wake of waiters) wake();
  });
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });

  return {
    lines,
    waitFor(predicate, timeoutMs = 30_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const found = lines.find(predicate);
          if (found !== undefined) done(() => resolve(found));
          else if (exited) done(() => reject(new Error(`the command ended before the line arrived; stderr: ${stderr}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`no such line within ${timeoutMs} ms; got ${JSON.stringify(lines)}; stderr: ${stderr}`))), timeoutMs);
        const done = (settle: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        waiters.add(check);
        check();
      });
    },
    async stop(signal, timeoutMs = 15_000) {
      child.kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`still running ${timeoutMs} ms after ${signal}`));
        }, timeoutMs);
      });
      try {
        return await Promise.race([ended, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/**
 * Runs `coherence ...args` and closes its stdout as soon as the first line has arrived, the way
 * `coherence read | head -n 1` does; returns that line as `stdout`.
 */
export function cliUntilFirstLine(args: string[], options: CliOptions = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binPath, ...args], { env: environment(options), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (child.stdout.destroyed) return;
      stdout += chunk;
      const newline = stdout.indexOf('\n');
      if (newline >= 0) {
        stdout = stdout.slice(0, newline + 1);
        child.stdout.destroy();
      }
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    child.on('error', reject);
    child.on('close', (status, signal) => resolve({ status, signal, stdout, stderr }));
  });
}

/** Whether util-linux `script` is there to give a command a pseudo-terminal. */
export const hasScript = spawnSync('script', ['--version'], { stdio: 'ignore' }).status === 0;

function shellQuote(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/**
 * Runs `coherence ...args` on a pseudo-terminal (`script -qec`): stdout and stderr are a TTY, and
 * what the command wrote to either comes back in `stdout`.
 */
export function cliInTerminal(args: string[], options: CliOptions = {}): Promise<CliRun> {
  const command = [process.execPath, binPath, ...args].map(shellQuote).join(' ');
  return run('script', ['-qec', command, '/dev/null'], options);
}

/** What {@link cliCountingLines} saw of a run whose stdout is too large to keep. */
export interface CountedRun {
  status: number | null;
  stderr: string;
  /** Lines of stdout. */
  lines: number;
  /** The first `keep` lines, parsed. */
  first: unknown[];
  /** The last line, parsed. */
  last: unknown;
}

/**
 * Runs `coherence ...args` and reads its stdout as it streams, counting lines and keeping only
 * the first `keep` and the last: for output larger than a string can hold.
 */
export function cliCountingLines(args: string[], options: CliOptions = {}, keep = 3): Promise<CountedRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [binPath, ...args], { env: environment(options), stdio: ['ignore', 'pipe', 'pipe'] });
    let lines = 0;
    let pending = '';
    let last = '';
    const first: unknown[] = [];
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      pending += chunk;
      let newline: number;
      let start = 0;
      while ((newline = pending.indexOf('\n', start)) >= 0) {
        const line = pending.slice(start, newline);
        if (first.length < keep) first.push(JSON.parse(line) as unknown);
        last = line;
        lines++;
        start = newline + 1;
      }
      pending = pending.slice(start);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stderr, lines, first, last: last === '' ? undefined : JSON.parse(last) as unknown }));
  });
}
