/**
 * A child process for the multi-process tests: `node --import tsx <script> ...args`, its stdout
 * read line by line, its stdin written to, its end awaited or forced.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface Child {
  /** The next line the child prints (rejects if it ends first, with its stderr). */
  line(): Promise<string>;
  /** Writes a line to the child's stdin. */
  send(line: string): void;
  /** Closes the child's stdin. */
  end(): void;
  /** Sends a signal now. */
  kill(signal: NodeJS.Signals): void;
  /** How it ended, and what it wrote to stderr. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/** Starts `test/support/<script>` with the tsx loader. */
export function spawnChild(script: string, args: readonly string[]): Child {
  const child: ChildProcessWithoutNullStreams = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL(script, import.meta.url)), ...args], { cwd: ROOT });
  child.stdin.on('error', () => {}); // a child that died closes its stdin; `exited` says why
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr }));
  });
  const lines: string[] = [];
  const waiting: { resolve: (line: string) => void; reject: (e: Error) => void }[] = [];
  let ended = false;
  createInterface({ input: child.stdout }).on('line', (line) => {
    const next = waiting.shift();
    if (next === undefined) lines.push(line);
    else next.resolve(line);
  }).on('close', () => {
    ended = true;
    void exited.then(({ code, signal }) => {
      for (const next of waiting.splice(0)) next.reject(new Error(`${script} ended (${code ?? signal}) before printing a line: ${stderr}`));
    });
  });
  return {
    line: () => {
      const line = lines.shift();
      if (line !== undefined) return Promise.resolve(line);
      if (ended) return exited.then(({ code, signal }) => { throw new Error(`${script} ended (${code ?? signal}) before printing a line: ${stderr}`); });
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
    send: (line) => { child.stdin.write(`${line}\n`); },
    end: () => { child.stdin.end(); },
    kill: (signal) => { child.kill(signal); },
    exited,
  };
}
