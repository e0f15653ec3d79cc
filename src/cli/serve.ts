/**
 * `coherence serve --config app.mjs [--port N] [--host H]`: serves what the module's default
 * export configures, until SIGTERM or SIGINT.
 *
 * The default export is the options of `serve` with the log to serve, `{ log, ...options }`, or
 * a function (async or not) returning them, called once; `--port` and `--host` override theirs
 * (host default 127.0.0.1). One line per request goes to stderr (method, path, status, ms; never
 * a body, a query string, a header or a token), and the URL to stdout once it listens. On SIGTERM
 * the server stops taking connections, the requests in flight finish, then the log closes.
 *
 * coherence/http is loaded here only (and from the package itself, as the config module loads
 * `coherence`, so both share one copy of the library): no other command pays for it.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Log } from '../index.ts';
import type { RequestLogEntry, ServeOptions } from 'coherence/http';
import { shownPath } from './secrets.ts';
import { CliError, UsageError } from './usage.ts';

/** What the config module gives: the log to serve and the options of `serve`. */
type Config = ServeOptions & { log: Log };

async function loadConfig(file: string): Promise<Config> {
  const path = resolve(file);
  if (!existsSync(path)) throw new UsageError(`--config: no file at ${shownPath(file)}`);
  const module = (await import(pathToFileURL(path).href)) as { default?: unknown };
  const exported = module.default;
  const config = typeof exported === 'function' ? await (exported as () => unknown)() : exported;
  if (typeof config !== 'object' || config === null || !('log' in config)) {
    throw new CliError(`${shownPath(file)}: expected a default export { log, authenticate, commands?, views?, ... } or a function returning one`);
  }
  return config as Config;
}

function port(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^[0-9]+$/.test(text) || Number(text) > 65535) throw new UsageError(`--port: expected a port from 0 to 65535, got ${JSON.stringify(text)}`);
  return Number(text);
}

function logLine({ method, path, status, ms }: RequestLogEntry): void {
  process.stderr.write(`${method} ${path} ${status} ${ms.toFixed(1)}ms\n`);
}

/** Runs the server until a signal; resolves with the exit code once the log is closed. */
export async function serveCommand(opts: { config: string; port?: string; host?: string }): Promise<number> {
  const listenPort = port(opts.port);
  const { serve } = await import('coherence/http');
  const { log, ...options } = await loadConfig(opts.config);
  let server;
  try {
    server = await serve(log, {
      ...options,
      ...(listenPort === undefined ? {} : { port: listenPort }),
      host: opts.host ?? options.host ?? '127.0.0.1',
      onResponse: (entry) => {
        options.onResponse?.(entry);
        logLine(entry);
      },
    });
  } catch (error) {
    await log.close();
    throw error;
  }
  process.stdout.write(`${server.url}\n`);
  process.stderr.write(`coherence: serving on ${server.url} (SIGTERM or Ctrl-C to stop)\n`);
  const signal = await new Promise<NodeJS.Signals>((done) => {
    process.once('SIGTERM', () => done('SIGTERM'));
    process.once('SIGINT', () => done('SIGINT'));
  });
  process.stderr.write(`coherence: ${signal}: finishing the requests in flight\n`);
  await server.close();
  await log.close();
  process.stderr.write('coherence: stopped\n');
  return 0;
}
