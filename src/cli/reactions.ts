/**
 * `coherence processes <name>` and `coherence dead-letters <notifier>`: what the command line can
 * honestly do about the reactive parts, which it cannot run (their handlers are the
 * application's code). It reads what they stored, through a manager or notifier object made
 * with inert functions that never run (neither catchUp nor follow is ever called here):
 *
 * - `processes` prints a process manager's position, the head, its lag and its rejections
 *   (they are in the log).
 * - `dead-letters` lists a notifier's dead letters; `--redeliver` marks one for redelivery in
 *   the notifier's stored checkpoint, which the running notifier picks up (its follow within a
 *   second, or its next catch-up); `--discard` drops one, releasing what waits behind it.
 */
import { createCommandService, createNotifier, createProcessManager, decider, InvalidArgumentError, type Log } from '../index.ts';
import { toLine } from './ndjson.ts';
import { print, write } from './output.ts';
import { CliError, parseSeq } from './usage.ts';

const inert = decider<unknown>({ name: 'cli', aggregates: () => [['cli', 1]], decide: () => [] });
const never = (): never => {
  throw new Error('the command line does not run reactions');
};

/** Prints `{ name, position, head, lag, rejections }` of a process manager that has run here. */
export async function processes(log: Log, name: string): Promise<void> {
  const found = (await log.stats()).processManagers.find((manager) => manager.name === name);
  if (found === undefined) throw new CliError(`no process manager named ${JSON.stringify(name)} has run on this store`);
  const manager = createProcessManager(log, name, { instance: never, init: never, react: never, commands: createCommandService(log, { deciders: [inert] }) });
  const rejections = [];
  for await (const rejection of manager.rejections()) rejections.push(rejection);
  await print({ name, position: found.position, head: found.position + found.lag, lag: found.lag, rejections });
}

/** Lists a notifier's dead letters as NDJSON, or marks one for redelivery, or drops one. */
export async function deadLetters(log: Log, name: string, options: { redeliver?: string; discard?: string }): Promise<void> {
  if (!(await log.stats()).notifiers.some((notifier) => notifier.name === name)) throw new CliError(`no notifier named ${JSON.stringify(name)} has run on this store`);
  const notifier = createNotifier(log, name, { handle: never });
  const change = options.redeliver !== undefined ? { op: 'redeliver' as const, seq: parseSeq(options.redeliver, '--redeliver', 1) } : options.discard !== undefined ? { op: 'discard' as const, seq: parseSeq(options.discard, '--discard', 1) } : undefined;
  if (change === undefined) {
    for await (const letter of notifier.deadLetters()) await write(toLine(letter));
    return;
  }
  try {
    await notifier[change.op](change.seq);
  } catch (error) {
    // Not a dead letter (any more): a fact of the store, not a mistake in the command line.
    if (error instanceof InvalidArgumentError) throw new CliError(`${change.seq} is not a dead letter of ${JSON.stringify(name)}`);
    throw error;
  }
  process.stderr.write(change.op === 'redeliver'
    ? `dead letter ${change.seq} marked for redelivery: the running notifier delivers it (its follow within a second, or its next catch-up)\n`
    : `dead letter ${change.seq} discarded: the events waiting behind it go on at the notifier's next delivery\n`);
}
