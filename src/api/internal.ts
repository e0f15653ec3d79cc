/**
 * What the parts above the log (commands, process managers, the testing kit, the gateway) need of
 * an open log that its public face does not show: the core behind it. Not exported from any entry.
 */
import { InvalidArgumentError } from '../errors.ts';
import type { LogCore } from '../log/log-core.ts';
import type { Log } from './log.ts';

const cores = new WeakMap<Log, LogCore>();

/** Records the core behind a log facade (the composition root does, once). */
export function registerCore(log: Log, core: LogCore): void {
  cores.set(log, core);
}

/**
 * The core behind a log.
 * @throws InvalidArgumentError when `log` is not a log opened by `openLog`.
 */
export function coreOf(log: unknown): LogCore {
  const core = typeof log === 'object' && log !== null ? cores.get(log as Log) : undefined;
  if (core === undefined) throw new InvalidArgumentError('log: expected a log opened by openLog, got something else');
  return core;
}
