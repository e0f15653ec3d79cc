/**
 * The `coherence` command: a thin layer over the public API, working on one store directory.
 *
 * Exit codes: 0 ok, 1 error, 2 bad usage, 3 the append was refused (conflict or invalid base;
 * the report is printed as NDJSON on stdout, see report.ts).
 *
 * Only `append` and `keys create` create a store; every other command needs one to exist, so a
 * mistyped --store fails with "no store at ..." instead of quietly making an empty store.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
import pkg from '../../package.json' with { type: 'json' };
import { InvalidArgumentError, InvalidEventError, openLog, type Log, type ReadOptions } from '../index.ts';
import { readEvents, toLine } from './ndjson.ts';
import { OutputClosed, outputClosed, print, watchOutput, write } from './output.ts';
import { startProgress } from './progress.ts';
import { printRefusal } from './report.ts';
import { masterKey, redactKeys, refuseKeyArguments, shownPath } from './secrets.ts';
import { asFlags, CliError, formatIdentity, parseDate, parseDuration, parseIdentity, parseSeq, UsageError } from './usage.ts';

const EXIT_OK = 0;
const EXIT_ERROR = 1;
const EXIT_USAGE = 2;
const EXIT_REFUSED = 3;

interface GlobalOptions {
  store?: string;
  masterKeyFile?: string;
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Whether `dir` holds a store (the LMDB engine keeps its data file there). */
function isStore(dir: string): boolean {
  return existsSync(join(dir, 'data.mdb'));
}

const HELP_AFTER = `
Exit codes: 0 ok, 1 error, 2 bad usage, 3 the append was refused (the report is NDJSON on stdout).
Only append and keys create create a store; every other command exits 1 with "no store at <dir>"
when there is none. The master key comes from --master-key-file or COHERENCE_MASTER_KEY, never
from an argument.`;

/** Builds the program; `run` receives each command's work with the opened log. */
function program(exit: { code: number }): Command {
  const cli = new Command('coherence')
    .description('An embedded, conflict-aware patch log with encrypted payloads and crypto-shredding.')
    .addOption(new Option('-s, --store <dir>', 'the store directory').env('COHERENCE_STORE'))
    .option('--master-key-file <file>', 'file holding the master key (64 hex characters or 32 bytes); or set COHERENCE_MASTER_KEY')
    .version(pkg.version, '-V, --version', 'print the version')
    .showHelpAfterError('(run with --help for usage)')
    .addHelpText('after', HELP_AFTER)
    .configureOutput({ outputError: (text, out) => out(redactKeys(text)) })
    .exitOverride();

  /**
   * The action of a command that works on the log. `creates`: whether the command may create
   * the store (only the commands that put something in it).
   */
  const withLog = (work: (log: Log, ...args: any[]) => Promise<number | void>, creates = false) =>
    async (...args: any[]) => {
      const options = cli.opts<GlobalOptions>();
      if (options.store === undefined) throw new UsageError('expected --store <dir> (or COHERENCE_STORE)');
      if (!creates && !isStore(options.store)) throw new CliError(`no store at ${shownPath(options.store)}`);
      const key = masterKey(options.masterKeyFile, process.env);
      const log = await openLog({ path: options.store, ...(key === undefined ? {} : { masterKey: key }) });
      try {
        exit.code = (await work(log, ...args)) ?? EXIT_OK;
      } finally {
        await log.close();
      }
    };

  cli.command('append')
    .description('append NDJSON events (one NewEvent per line, as `read` prints them) from a file or stdin, all or nothing; creates the store if needed')
    .argument('[file]', 'NDJSON file, or - for stdin', '-')
    .option('--base <seq>', 'the highest seq your view includes (default: the head now)')
    .option('--resolved <seqs>', 'comma-separated seqs you have seen and resolved')
    .option('--merge <mode>', 'none or disjoint-paths', 'none')
    .option('--dry-run', 'check and report, write nothing')
    .option('--idempotency-key <key>', 'the batch takes effect at most once under this key; a repeat writes nothing and reports the events the first one wrote')
    .addHelpText('after', `
When the append is refused it exits 3 and prints NDJSON on stdout: a first line
{"status":"invalid-base","head":N}, or {"status":"conflict","conflicts":N,"accepted":M}
followed by one {"line":L,"ours":{...},"theirs":{...}} per conflict (L: the input line of ours).`)
    .action(withLog(async (log, file: string, opts: { base?: string; resolved?: string; merge: string; dryRun?: boolean; idempotencyKey?: string }) => {
      const base = opts.base === undefined ? await log.head() : parseSeq(opts.base, '--base');
      const resolved = opts.resolved === undefined ? [] : opts.resolved.split(',').map((s) => parseSeq(s.trim(), '--resolved', 1));
      const input = file === '-' ? 'stdin' : shownPath(file);
      const size = file === '-' || !existsSync(file) ? 0 : statSync(file).size;
      const progress = await startProgress('reading');
      const { events, lines } = await readEvents(file, input, (bytes) => { if (size > 0) progress.update(bytes, size); });
      progress.stop();
      if (events.length === 0) throw new UsageError(`${input}: expected at least one event, got none`);
      let result;
      try {
        result = await log.append(events, {
          base, resolved, merge: opts.merge as 'none', dryRun: opts.dryRun === true,
          ...(opts.idempotencyKey === undefined ? {} : { idempotencyKey: opts.idempotencyKey }),
        });
      } catch (error) {
        if (!(error instanceof InvalidEventError)) throw error;
        // Name the line of the file, not the position in the batch.
        throw new UsageError(`${input} line ${lines[error.index]}: ${error.message.replace(/^events\[\d+\]\.?/, '')}`);
      }
      if (result.status === 'conflict' || result.status === 'invalid-base') {
        await printRefusal(result, lines);
        return EXIT_REFUSED;
      }
      const last = result.events.at(-1)?.seq;
      if (result.status === 'duplicate') {
        process.stderr.write(`already appended under this idempotency key: ${result.events.length} event(s), up to seq ${last}; nothing written\n`);
        return;
      }
      process.stderr.write(`${opts.dryRun === true ? 'would append' : 'appended'} ${result.events.length} event(s), up to seq ${last}\n`);
    }, true));

  cli.command('read')
    .description('print events as NDJSON, in ascending seq')
    .option('--from <seq>', 'first seq', '1')
    .option('--kind <kind>', 'only aggregates of this kind (repeatable)', collect)
    .option('--aggregate <kind:id>', 'only this aggregate (repeatable)', collect)
    .option('--no-replay', 'do not replay actions an effect at or after --from affects')
    .option('--raw', 'print stored envelopes instead of decrypting')
    .option('--follow', 'keep printing new events as they are appended (until interrupted)')
    .action(withLog(async (log, opts: { from: string; kind?: string[]; aggregate?: string[]; replay: boolean; raw?: boolean; follow?: boolean }) => {
      const options: ReadOptions = { from: parseSeq(opts.from, '--from', 1), replay: opts.replay, raw: opts.raw === true };
      if (opts.kind !== undefined) options.kinds = opts.kind;
      if (opts.aggregate !== undefined) options.aggregates = opts.aggregate.map((a) => parseIdentity(a, '--aggregate'));
      let last = (options.from ?? 1) - 1;
      const head = await log.head();
      for await (const event of log.read(options)) {
        await write(toLine(event));
        last = Math.max(last, event.seq);
      }
      last = Math.max(last, head);
      if (opts.follow !== true) return;
      let stopped = false;
      process.once('SIGINT', () => { stopped = true; });
      process.once('SIGTERM', () => { stopped = true; });
      while (!stopped) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        // Read only up to the head seen now, then move past it even if no event matched the
        // filters, so a poll never scans the same events twice. Replay stays as asked, so a
        // follower sees what an effect changed just as a later `read` would.
        const head = await log.head();
        if (head <= last) continue;
        for await (const event of log.read({ ...options, from: last + 1 })) {
          if (event.seq > head) break;
          await write(toLine(event));
        }
        last = head;
      }
    }));

  cli.command('head')
    .description('print the highest seq (0 when empty)')
    .action(withLog(async (log) => write(`${await log.head()}\n`)));

  cli.command('state')
    .description("print an aggregate's state and the head it was read at")
    .argument('<aggregate>', 'kind:id, e.g. book:Neuromancer or order:7')
    .action(withLog(async (log, aggregate: string) => print(await log.state(parseIdentity(aggregate, 'aggregate')))));

  cli.command('conflicts')
    .description('print what an append on <aggregate> based on --base would conflict with')
    .argument('<aggregate>', 'kind:id')
    .requiredOption('--base <seq>', 'the highest seq your view includes')
    .action(withLog(async (log, aggregate: string, opts: { base: string }) => {
      for (const event of await log.conflicts(parseSeq(opts.base, '--base'), parseIdentity(aggregate, 'aggregate'))) await write(toLine(event));
    }));

  const keys = cli.command('keys').description('the key ring: list, create, shred and expire keys');
  keys.command('list')
    .description('print keys as NDJSON')
    .addOption(new Option('--destroyed', 'only destroyed keys').conflicts('live'))
    .option('--live', 'only live keys')
    .action(withLog(async (log, opts: { destroyed?: boolean; live?: boolean }) => {
      const filter = opts.destroyed === true ? { destroyed: true } : opts.live === true ? { destroyed: false } : {};
      for await (const info of log.keys.list(filter)) await write(toLine(info));
    }));
  keys.command('create')
    .description('create a key; creates the store if needed')
    .argument('<key>', 'kind:id, e.g. customer:42')
    .addOption(new Option('--ttl <duration>', 'lifetime: 30d, 12h, 1y6mo, or {"days":30}').conflicts('expiresAt'))
    .option('--expires-at <date>', 'expiry as an ISO 8601 date')
    .action(withLog(async (log, key: string, opts: { ttl?: string; expiresAt?: string }) => {
      const options: { ttl?: Record<string, number>; expiresAt?: Date } = {};
      if (opts.ttl !== undefined) options.ttl = parseDuration(opts.ttl);
      if (opts.expiresAt !== undefined) options.expiresAt = parseDate(opts.expiresAt, '--expires-at');
      const id = parseIdentity(key, 'key');
      await print(await asFlags({ 'options.expiresAt': '--expires-at', 'options.ttl': '--ttl' }, () => log.keys.create(id, options)));
    }, true));
  keys.command('shred')
    .description('destroy a key and append its effect, atomically (a key that never existed is recorded as destroyed, so it can never be created)')
    .argument('<key>', 'kind:id')
    .option('--reason <reason>', 'the effect reason', 'shredded')
    .option('--source <source>', 'the effect source', 'keystore')
    .action(withLog(async (log, key: string, opts: { reason: string; source: string }) => {
      const id = parseIdentity(key, 'key');
      const existed = (await log.keys.get(id)) !== undefined;
      const effect = await asFlags({ 'options.reason': '--reason', 'options.source': '--source' }, () => log.keys.shred(id, opts));
      if (!existed) process.stderr.write(`key ${formatIdentity(id)} did not exist; recorded as destroyed so it can never be created\n`);
      await print(effect);
    }));
  keys.command('expire')
    .description('shred every key past its expiry (for a cron job; or open with autoExpire)')
    .option('--now <date>', 'the time to expire at, ISO 8601 (default: now)')
    .action(withLog(async (log, opts: { now?: string }) => {
      for (const effect of await log.keys.expire(opts.now === undefined ? undefined : parseDate(opts.now, '--now'))) await write(toLine(effect));
    }));

  const projectionCommand = (name: string, description: string, rebuild: boolean) =>
    cli.command(name)
      .description(description)
      .argument('<name>', 'the projection name')
      .option('--kind <kind>', 'only aggregates of this kind (repeatable)', collect)
      .option('--aggregate <kind:id>', 'only this aggregate (repeatable)', collect)
      .option('--from <seq>', 'first seq for a new projection', '1')
      .option('--entries', 'then print every [aggregate, state] as NDJSON')
      .action(withLog(async (log, projectionName: string, opts: { kind?: string[]; aggregate?: string[]; from: string; entries?: boolean }) => {
        const projection = log.projection(projectionName, {
          from: parseSeq(opts.from, '--from', 1),
          ...(opts.kind === undefined ? {} : { kinds: opts.kind }),
          ...(opts.aggregate === undefined ? {} : { aggregates: opts.aggregate.map((a) => parseIdentity(a, '--aggregate')) }),
        });
        const progress = await startProgress(rebuild ? 'rebuilding' : 'catching up');
        const onProgress = (position: number, head: number) => progress.update(position, head);
        const result = rebuild ? await projection.rebuild({ onProgress }) : await projection.catchUp({ onProgress });
        progress.stop();
        process.stderr.write(`${projectionName}: at seq ${result.to}, ${result.actions} action(s) applied, ${result.replayed} replayed\n`);
        if (opts.entries === true) for await (const entry of projection.entries()) await write(toLine(entry));
      }));
  projectionCommand('project', 'catch a projection (JSON Patch fold per aggregate) up to the head', false);
  projectionCommand('rebuild', 'forget a projection and build it again from its first seq', true);

  cli.command('verify')
    .description('check the hash chain and the indexes; exit 1 naming the first bad seq')
    .action(withLog(async (log) => {
      const progress = await startProgress('verifying');
      const result = await log.verify({ onProgress: (seq, head) => progress.update(seq, head) });
      progress.stop();
      await print(result);
      return result.ok ? EXIT_OK : EXIT_ERROR;
    }));

  cli.command('compact')
    .description('rewrite the store without free pages (needs the store to itself)')
    .action(withLog(async (log) => {
      const progress = await startProgress('compacting');
      await log.compact({ onProgress: (copied, total) => progress.update(copied, total) });
      progress.stop();
      process.stderr.write('compacted\n');
    }));

  cli.command('serve')
    .description('serve a log over HTTP as the config module\'s default export says ({ log, authenticate, commands, views, ... }); stops on SIGTERM')
    .requiredOption('--config <file>', 'an ES module whose default export is { log, ...serve options } or a function returning it')
    .option('--port <port>', 'the port (default: the config\'s, else any free one)')
    .option('--host <host>', 'the address to listen on (default: the config\'s, else 127.0.0.1)')
    .action(async (opts: { config: string; port?: string; host?: string }) => {
      // Loaded only for serve: the gateway and its framework cost every other command nothing.
      const { serveCommand } = await import('./serve.ts');
      exit.code = await serveCommand(opts);
    });

  cli.command('processes')
    .description("print a process manager's position, lag and rejections (from what it stored; nothing runs)")
    .argument('<name>', 'the process manager name')
    .action(withLog(async (log, name: string) => (await import('./reactions.ts')).processes(log, name)));

  cli.command('dead-letters')
    .description("list a notifier's dead letters as NDJSON, or mark one for redelivery, or drop one")
    .argument('<notifier>', 'the notifier name')
    .addOption(new Option('--redeliver <seq>', 'mark this dead letter for redelivery: the running notifier (its follow, within a second, or its next catch-up) delivers it, then what waits behind it').conflicts('discard'))
    .option('--discard <seq>', 'drop this dead letter: the events waiting behind it go on')
    .addHelpText('after', `
The command line never runs a notifier's handler: --redeliver only marks the dead letter in the
notifier's stored checkpoint, for whichever process runs the notifier to deliver.`)
    .action(withLog(async (log, name: string, opts: { redeliver?: string; discard?: string }) => (await import('./reactions.ts')).deadLetters(log, name, opts)));

  cli.command('stats')
    .description('print events, aggregates, keys, file size, projections, process managers and notifiers with their lag')
    .action(withLog(async (log) => print(await log.stats())));

  return cli;
}

/**
 * Runs the command line with `argv` (without node and the script) and returns the exit code.
 * @example
 * process.exitCode = await main(process.argv.slice(2));
 */
export async function main(argv: string[]): Promise<number> {
  const exit = { code: EXIT_OK };
  watchOutput();
  try {
    refuseKeyArguments(argv);
    await program(exit).parseAsync(argv, { from: 'user' });
    return exit.code;
  } catch (error) {
    if (error instanceof OutputClosed || outputClosed()) return exit.code;
    if (error instanceof CommanderError) {
      // --help and --version end here too, with exit code 0.
      return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`coherence: ${redactKeys(message)}\n`);
    return error instanceof UsageError || error instanceof InvalidArgumentError ? EXIT_USAGE : EXIT_ERROR;
  }
}
