/**
 * The package as a user gets it: `npm pack`, installed into a fresh project with npm, then used
 * from plain Node (ESM and CommonJS), from TypeScript (strict, NodeNext, skipLibCheck off) and
 * through its `coherence` command. Packs the dist/ that `npm test` builds first (pretest), with
 * --ignore-scripts: a rebuild here would swap dist/ under the CLI tests running beside it.
 */
import { execFile, type ExecFileException } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string; exports: Record<string, unknown>; bin: Record<string, string> };
const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

interface Run { code: number; stdout: string; stderr: string }

function run(command: string, args: string[], cwd: string): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, npm_config_update_notifier: 'false' } }, (error: ExecFileException | null, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

function expectOk(result: Run, what: string): void {
  expect(result.code, `${what}\n${result.stdout}\n${result.stderr}`).toBe(0);
}

/** The newest modification time of any file under `dir`. */
function newest(dir: string): number {
  let latest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) latest = Math.max(latest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return latest;
}

const scratch = mkdtempSync(join(tmpdir(), 'coherence-consumer-'));
const project = join(scratch, 'app');
const store = join(scratch, 'store');
let packed: { filename: string; files: { path: string }[] };

afterAll(() => rmSync(scratch, { recursive: true, force: true }));

beforeAll(async () => {
  expect(newest(join(root, 'src')), 'dist/ is older than src/: run `npm run build` (npm test does)').toBeLessThanOrEqual(newest(join(root, 'dist')));
  const pack = await run(npm, ['pack', '--json', '--ignore-scripts', '--pack-destination', scratch], root);
  expectOk(pack, 'npm pack');
  packed = (JSON.parse(pack.stdout) as (typeof packed)[])[0] as typeof packed;
  mkdirSync(project);
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  // --ignore-scripts: the package must work without any install step (npm 11 skips them anyway).
  const install = await run(npm, ['install', join(scratch, packed.filename), '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'], project);
  expectOk(install, 'npm install of the tarball');
}, 300_000);

describe('the packed package', () => {
  it('holds the compiled files, the bin, the docs and no TypeScript sources', () => {
    const files = packed.files.map((file) => file.path).sort();
    for (const file of ['dist/index.js', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.d.cts', 'dist/index.js.map', 'dist/cli.cjs', 'bin/coherence.cjs', 'package.json', 'README.md', 'LICENSE', 'CHANGELOG.md']) {
      expect(files).toContain(file);
    }
    expect(files.filter((file) => /\.(c|m)?ts$/.test(file) && !/\.d\.(c|m)?ts$/.test(file))).toEqual([]);
    expect(files.filter((file) => file.startsWith('src/') || file.startsWith('test/'))).toEqual([]);
  });

  it('exports only compiled JavaScript, each target in the tarball, and a .ts file only as types', () => {
    const files = new Set(packed.files.map((file) => file.path));
    const targets: [conditions: string[], target: string][] = [];
    const walk = (value: unknown, conditions: string[]) => {
      if (typeof value === 'string') targets.push([conditions, value]);
      else if (value !== null && typeof value === 'object') for (const [key, inner] of Object.entries(value)) walk(inner, [...conditions, key]);
    };
    walk(pkg.exports, []);
    expect(targets.length).toBeGreaterThan(0);
    for (const [conditions, target] of targets) {
      const where = `exports ${conditions.join(' > ')}: ${target}`;
      expect(files.has(target.replace(/^\.\//, '')), where).toBe(true);
      if (/\.(c|m)?ts$/.test(target)) {
        expect(conditions.at(-1), where).toBe('types');
        expect(target, where).toMatch(/\.d\.(c|m)?ts$/);
      }
    }
  });
});

describe('the installed package', () => {
  const appSteps = `
    const log = await openLog({ path: process.argv[2] });
    const result = await log.append([{ source: 'app', action: { reason: 'create', actor: ['user', 'ann'], aggregate: ['book', 1], patch: [{ op: 'add', path: '/title', value: 'Dune' }] } }], { base: await log.head() });
    const seqs = [];
    for await (const event of log.read()) seqs.push(event.seq);
    const { state } = await log.state(['book', 1]);
    let refused = '';
    try { await log.append([], { base: 0 }); } catch (error) { refused = error instanceof CoherenceError ? error.code : 'not a CoherenceError'; }
    await log.close();
    console.log(JSON.stringify({ status: result.status, seqs, state, refused }));`;

  it('opens, appends, reads and closes from a plain ESM import', async () => {
    writeFileSync(join(project, 'app.mjs'), `import { openLog, CoherenceError } from 'coherence';
      console.error(import.meta.resolve('coherence'));
      ${appSteps}`);
    const app = await run(process.execPath, ['app.mjs', store], project);
    expectOk(app, 'node app.mjs');
    expect(JSON.parse(app.stdout)).toEqual({ status: 'ok', seqs: [1], state: { title: 'Dune' }, refused: 'INVALID_ARGUMENT' });
    expect(app.stderr.trim()).toMatch(/node_modules\/coherence\/dist\/index\.js$/);
  });

  it('does the same through require()', async () => {
    writeFileSync(join(project, 'app.cjs'), `const { openLog, CoherenceError } = require('coherence');
      console.error(require.resolve('coherence'));
      (async () => { ${appSteps} })().catch((error) => { console.error(error); process.exitCode = 1; });`);
    const app = await run(process.execPath, ['app.cjs', store], project);
    expectOk(app, 'node app.cjs');
    expect(JSON.parse(app.stdout)).toEqual({ status: 'ok', seqs: [1, 2], state: { title: 'Dune' }, refused: 'INVALID_ARGUMENT' });
    expect(app.stderr.trim()).toMatch(/node_modules\/coherence\/dist\/index\.cjs$/);
  });

  it('loads the subpaths coherence/testing and coherence/postgres, from ESM and require(), without pg installed, with one CoherenceError class across them', async () => {
    writeFileSync(join(project, 'subpaths.mjs'), `import { CoherenceError, memoryEngine } from 'coherence';
      import { openTestLog } from 'coherence/testing';
      import { postgresEngine } from 'coherence/postgres';
      const log = await openTestLog({ engine: memoryEngine() });
      let code = '';
      try { await log.append([], { base: 0 }); } catch (error) { code = error instanceof CoherenceError ? error.code : 'another class'; }
      await log.close();
      const engine = postgresEngine({ connectionString: 'postgresql://nobody@127.0.0.1:1/none' });
      console.log(JSON.stringify({ code, kind: engine.kind }));`);
    writeFileSync(join(project, 'subpaths.cjs'), `const { postgresEngine } = require('coherence/postgres');
      const { deciderSpec } = require('coherence/testing');
      console.log(JSON.stringify({ kind: postgresEngine({ connectionString: 'postgresql://nobody@127.0.0.1:1/none' }).kind, spec: typeof deciderSpec }));`);
    const esm = await run(process.execPath, ['subpaths.mjs'], project);
    expectOk(esm, 'node subpaths.mjs');
    expect(JSON.parse(esm.stdout)).toEqual({ code: 'INVALID_ARGUMENT', kind: 'postgres' });
    const cjs = await run(process.execPath, ['subpaths.cjs'], project);
    expectOk(cjs, 'node subpaths.cjs');
    expect(JSON.parse(cjs.stdout)).toEqual({ kind: 'postgres', spec: 'function' });
  });

  const httpSteps = `
    const log = await openLog({ path: process.argv[2] });
    const server = await serve(log, {
      authenticate: ({ headers }) => (headers['x-user'] ? { id: ['user', headers['x-user']], roles: ['reader'] } : undefined),
      facts: { head: { query: (_args, { log }) => log.head().then((head) => ({ head })), allow: role('reader') } },
    });
    const answers = [];
    for (const headers of [{ 'x-user': 'ann' }, {}]) {
      const response = await fetch(server.url + '/facts/head', { headers });
      answers.push([response.status, await response.json()]);
    }
    await server.close();
    await log.close();
    console.log(JSON.stringify(answers));`;

  it('serves over HTTP from coherence/http, in ESM and through require()', async () => {
    writeFileSync(join(project, 'http.mjs'), `import { openLog } from 'coherence';
      import { serve, role } from 'coherence/http';
      ${httpSteps}`);
    writeFileSync(join(project, 'http.cjs'), `const { openLog } = require('coherence');
      const { serve, role } = require('coherence/http');
      (async () => { ${httpSteps} })().catch((error) => { console.error(error); process.exitCode = 1; });`);
    for (const file of ['http.mjs', 'http.cjs']) {
      const app = await run(process.execPath, [file, join(scratch, `http-store-${file}`)], project);
      expectOk(app, `node ${file}`);
      expect(JSON.parse(app.stdout)).toEqual([[200, { head: 0 }], [401, { error: 'UNAUTHORIZED', message: 'expected credentials that authenticate an actor' }]]);
    }
  });

  it('runs coherence serve on a config module that imports the installed package', async () => {
    writeFileSync(join(project, 'serve.mjs'), `import { openLog } from 'coherence';
      import { role } from 'coherence/http';
      export default async () => ({
        log: await openLog({ path: process.env.STORE }),
        authenticate: ({ headers }) => (headers['x-user'] ? { id: ['user', headers['x-user']], roles: ['reader'] } : undefined),
        facts: { head: { query: (_args, { log }) => log.head().then((head) => ({ head })), allow: role('reader') } },
      });`);
    const { spawn } = await import('node:child_process');
    const child = spawn(join(project, 'node_modules', '.bin', 'coherence'), ['serve', '--config', 'serve.mjs', '--port', '0'], { cwd: project, env: { ...process.env, STORE: join(scratch, 'serve-store') } });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk; });
    const ended = new Promise<number | null>((resolve) => child.on('close', resolve));
    const url = await new Promise<string>((resolve, reject) => {
      child.stdout.setEncoding('utf8').once('data', (chunk: string) => resolve(chunk.trim()));
      void ended.then((code) => reject(new Error(`coherence serve ended (${code}): ${stderr}`)));
    });
    const response = await fetch(`${url}/facts/head`, { headers: { 'x-user': 'ann' } });
    expect([response.status, await response.json()]).toEqual([200, { head: 0 }]);
    child.kill('SIGTERM');
    expect(await ended, stderr).toBe(0);
    expect(stderr).toMatch(/^GET \/facts\/head 200 \d+\.\dms$/m);
  });

  it('type-checks a strict NodeNext TypeScript consumer with skipLibCheck off, ESM and CommonJS, and catches its type errors', async () => {
    const tsconfig = (include: string[]) => JSON.stringify({
      compilerOptions: {
        strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', lib: ['ES2022'],
        skipLibCheck: false, noEmit: true, exactOptionalPropertyTypes: true, noUncheckedIndexedAccess: true, types: [],
      },
      include,
    });
    writeFileSync(join(project, 'consumer.mts'), `import { openLog, isActionEvent, ProjectionError, type AppendResult, type Identity, type LogEvent, type Projection } from 'coherence';
      export async function titles(path: string): Promise<string[]> {
        const log = await openLog({ path, keyTtl: { days: 30 } });
        const book: Identity = ['book', 1];
        const result: AppendResult = await log.append([{ source: 'app', action: { reason: 'edit', actor: ['user', 'ann'], aggregate: book, patch: [{ op: 'replace', path: '/title', value: 'Dune' }] } }], { base: 0 });
        const out: string[] = [];
        if (result.status === 'conflict') for (const { ours, theirs } of result.conflicts) out.push(\`\${ours.seq} \${theirs.seq}\`);
        const projection: Projection<{ title?: string }> = log.projection('titles', { kinds: ['book'] });
        try { await projection.catchUp(); } catch (e) { if (e instanceof ProjectionError) out.push(e.projection, e.path ?? ''); }
        for await (const event of log.read({ from: 1 })) if (isActionEvent(event)) out.push(event.action.reason);
        const last: LogEvent | undefined = await log.get(1);
        await log.close();
        return last === undefined ? out : [...out, last.source];
      }`);
    writeFileSync(join(project, 'server.mts'), `import type { Log } from 'coherence';
      import { anyOf, bearer, owner, role, serve, type Condition, type Server } from 'coherence/http';
      const mine: Condition = ({ actor, state }) => (state as { owner?: unknown } | undefined)?.owner === actor.id[1];
      export async function start(log: Log, secret: string): Promise<Server> {
        const projection = log.projection('docs', { kinds: ['doc'] });
        return serve(log, { authenticate: bearer({ secret }), views: { docs: { projection, allow: anyOf(role('admin'), owner('/owner'), mine) } }, explorer: { allow: role('admin') } });
      }`);
    writeFileSync(join(project, 'consumer.cts'), `import coherence = require('coherence');
      export async function head(path: string): Promise<number> {
        const log: coherence.Log = await coherence.openLog({ path });
        try { return await log.head(); } finally { await log.close(); }
      }`);
    writeFileSync(join(project, 'mistake.mts'), `import { openLog } from 'coherence';
      const log = await openLog({ path: 'x' });
      await log.append([], { base: 'the head' });`);
    writeFileSync(join(project, 'tsconfig.json'), tsconfig(['consumer.mts', 'consumer.cts', 'server.mts']));
    writeFileSync(join(project, 'tsconfig.mistake.json'), tsconfig(['mistake.mts']));

    const clean = await run(process.execPath, [tsc, '-p', 'tsconfig.json'], project);
    expectOk(clean, 'tsc of the consumer');
    const mistake = await run(process.execPath, [tsc, '-p', 'tsconfig.mistake.json'], project);
    expect(mistake.code).not.toBe(0);
    // append is overloaded (with and without an idempotency key): TS reports the mismatch per overload.
    expect(mistake.stdout).toMatch(/mistake\.mts\(3,\d+\): error TS2769: No overload matches this call/);
    expect(mistake.stdout).toMatch(/Type 'string' is not assignable to type 'number'/);
  });

  it('runs its coherence command: --version and head', async () => {
    const bin = join(project, 'node_modules', '.bin', 'coherence');
    const [version, head] = await Promise.all([run(bin, ['--version'], project), run(bin, ['--store', store, 'head'], project)]);
    expectOk(version, 'coherence --version');
    expect(version.stdout).toBe(`${pkg.version}\n`);
    expectOk(head, 'coherence head');
    expect(head.stdout).toBe('2\n');
  });
});
