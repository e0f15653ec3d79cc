/**
 * `coherence serve --config`: the compiled command serving what a config module's default export
 * gives (the library example, and a test config), one stderr line per request without tokens or
 * bodies, and a graceful stop on SIGTERM: the request in flight is answered, then the log closes.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { openLog } from '../src/index.ts';
import { binPath, cli } from './support/cli.ts';
import { tempDir } from './support/temp-log.ts';

const exampleConfig = fileURLToPath(new URL('../examples/library-server.mjs', import.meta.url));
const testConfig = fileURLToPath(new URL('./support/serve-config.mjs', import.meta.url));

/** Starts `coherence serve ...args`; resolves once it prints its URL. */
async function start(args: string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [binPath, 'serve', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
  const ended = new Promise<{ code: number | null }>((resolve) => child.on('close', (code) => resolve({ code })));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const line = /^(http:\/\/\S+)\n/.exec(stdout);
      if (line !== null) resolve(line[1] as string);
    });
    void ended.then(({ code }) => reject(new Error(`serve ended (${code}) before listening: ${stderr}`)));
  });
  return { url, pid: child.pid as number, ended, stderr: () => stderr, kill: (signal: NodeJS.Signals) => child.kill(signal) };
}

describe('coherence serve', () => {
  it('serves the library example\'s config, logs each request on stderr, and stops on SIGTERM', async () => {
    const store = tempDir();
    const secret = 'a secret for the command line test, 32+ bytes';
    const server = await start(['--config', exampleConfig, '--port', '0'], { LIBRARY_STORE: store, LIBRARY_JWT_SECRET: secret });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const librarian = await new SignJWT({ roles: ['librarian'] }).setProtectedHeader({ alg: 'HS256' }).setSubject('ada').setExpirationTime('5m').sign(new TextEncoder().encode(secret));
    const acquired = await fetch(`${server.url}/commands/acquire`, { method: 'POST', headers: { authorization: `Bearer ${librarian}`, 'content-type': 'application/json' }, body: JSON.stringify({ isbn: 'N', title: 'Neuromancer', copies: 1 }) });
    expect(acquired.status).toBe(200);
    expect((await fetch(`${server.url}/commands/acquire?token=x`, { method: 'POST' })).status).toBe(401);
    server.kill('SIGTERM');
    expect((await server.ended).code).toBe(0);
    const lines = server.stderr().split('\n');
    expect(lines).toContainEqual(expect.stringMatching(/^POST \/commands\/acquire 200 \d+\.\dms$/));
    expect(lines).toContainEqual(expect.stringMatching(/^POST \/commands\/acquire 401 \d+\.\dms$/));
    expect(server.stderr()).not.toContain(librarian);
    expect(server.stderr()).not.toContain('Neuromancer');
    expect(server.stderr()).not.toContain('token=');
    const log = await openLog({ path: store });
    try {
      expect(await log.head()).toBe(1);
    } finally {
      await log.close();
    }
  });

  it('lets the request in flight finish on SIGTERM, then closes the log and exits 0', async () => {
    const store = tempDir();
    const server = await start(['--config', testConfig, '--port', '0', '--host', '127.0.0.1'], { STORE: store });
    expect(await (await fetch(`${server.url}/facts/head`, { headers: { 'x-user': 'u' } })).json()).toEqual({ head: 0 });
    const slow = fetch(`${server.url}/facts/slow`, { headers: { 'x-user': 'u' } });
    await new Promise((resolve) => setTimeout(resolve, 150));
    server.kill('SIGTERM');
    const response = await slow;
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ slow: true });
    expect((await server.ended).code).toBe(0);
    expect(server.stderr()).toMatch(/coherence: SIGTERM: finishing the requests in flight\n[^]*GET \/facts\/slow 200 \d+\.\dms\ncoherence: stopped\n$/);
    // The log was closed: the store can be compacted, which needs it to itself.
    const log = await openLog({ path: store });
    try {
      await log.compact();
    } finally {
      await log.close();
    }
  });

  it('refuses a missing config or one without a log, with exit code 2 or 1', async () => {
    const missing = await cli(['serve', '--config', '/nonexistent/app.mjs']);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('--config: no file at');
    const noLog = await cli(['serve', '--config', fileURLToPath(new URL('./support/child-process.ts', import.meta.url))]);
    expect(noLog.status).not.toBe(0);
    expect((await cli(['serve'])).status).toBe(2);
  });
});
