/**
 * Progress for long work, on a terminal only: piped or redirected output stays quiet.
 */

/** A progress reporter; a no-op when stderr is not a terminal. */
export interface Progress {
  update(done: number, total: number): void;
  stop(): void;
}

/**
 * Starts a progress bar on `stream` when it is a terminal. cli-progress is loaded only then, so a
 * piped command never pays for it.
 * @example
 * const progress = await startProgress('verifying');
 * progress.update(10, 100);
 * progress.stop();
 */
export async function startProgress(label: string, stream: NodeJS.WriteStream = process.stderr): Promise<Progress> {
  if (stream.isTTY !== true) return { update() {}, stop() {} };
  const { default: cliProgress } = await import('cli-progress');
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% | {value}/{total}`, stream, hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(done, total) {
      if (!started) {
        bar.start(total, done);
        started = true;
      } else {
        bar.setTotal(total);
        bar.update(done);
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}
