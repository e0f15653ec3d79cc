/**
 * Writing to stdout: with back-pressure, and quietly stopping once the reader has gone away
 * (`coherence read | head -n 1`).
 */

/**
 * The reader of stdout went away: stop quietly, exit 0.
 * @example
 * catch (e) { if (e instanceof OutputClosed) return 0; }
 */
export class OutputClosed extends Error {}

let closed = false;

/**
 * Starts watching stdout for EPIPE; afterwards {@link write} rejects with OutputClosed.
 * @example
 * watchOutput();
 */
export function watchOutput(): void {
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') closed = true;
  });
}

/**
 * Whether the reader of stdout has gone away.
 * @example
 * if (outputClosed()) return exitCode;
 */
export function outputClosed(): boolean {
  return closed;
}

/**
 * Writes to stdout, waiting when the pipe is full.
 * @throws OutputClosed once the reader is gone.
 * @example
 * await write('42\n');
 */
export function write(text: string): Promise<void> {
  if (closed) return Promise.reject(new OutputClosed());
  return new Promise((resolve, reject) => {
    if (process.stdout.write(text)) return resolve();
    const onDrain = () => { process.stdout.off('error', onError); resolve(); };
    const onError = () => { process.stdout.off('drain', onDrain); reject(new OutputClosed()); };
    process.stdout.once('drain', onDrain).once('error', onError);
  });
}

/**
 * Writes a value as indented JSON.
 * @example
 * await print({ ok: true });
 */
export function print(value: unknown): Promise<void> {
  return write(`${JSON.stringify(value, null, 2)}\n`);
}
