/**
 * The examples on PostgreSQL, changed only in openLog's options: each runs from a copy of its
 * source whose `openLog({ path, ... })` takes `engine: postgresEngine(...)` in place of `path`,
 * on a fresh schema, and prints what it prints on LMDB. (The demo scans LMDB's files for
 * plaintext and live-projection spawns a writer on a directory: they stay LMDB's.)
 */
import { spawn } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { exampleOutput } from '../support/example-output.ts';
import { freshSchema, POSTGRES_URL, reportSkipped } from '../support/postgres.ts';
import { tempDir } from '../support/temp-log.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

async function runOnPostgres(name: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const source = readFileSync(join(root, 'examples', `${name}.ts`), 'utf8');
  const engine = "engine: (await import('../src/storage/postgres/index.ts')).postgresEngine({ connectionString: process.env.COHERENCE_TEST_POSTGRES_URL!, schema: process.env.EXAMPLE_SCHEMA! })";
  const changed = source.replace(/openLog\(\{ path(?=[ ,])/, `openLog({ ${engine}`);
  expect(changed, `${name}: its openLog({ path ... }) call`).not.toBe(source);
  // Next to the original, so its relative imports hold; a name of its own, removed afterwards.
  const copy = join(root, 'examples', `.postgres-${name}-${process.pid}.ts`);
  writeFileSync(copy, changed);
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', copy, join(tempDir(), name)], { cwd: root, env: { ...process.env, EXAMPLE_SCHEMA: freshSchema() } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    return { code, stdout, stderr };
  } finally {
    rmSync(copy, { force: true });
  }
}

const EXAMPLES = {
  bookstore: 'Bob gets the conflict, resolves it, and the log verifies',
  receipts: 'shredding alice\'s key erases her card from the projection, and compact rewrites the tables',
  'shared-document': 'a disjoint change merges, an overlapping one goes round the resolution loop',
} as const;

describe.skipIf(POSTGRES_URL === undefined)('examples on PostgreSQL', () => {
  for (const [name, what] of Object.entries(EXAMPLES) as [keyof typeof EXAMPLES, string][]) {
    it(`${name}: ${what}`, async () => {
      const run = await runOnPostgres(name);
      expect(run.code, run.stderr).toBe(0);
      exampleOutput[name](run.stdout);
    });
  }
});

reportSkipped('COHERENCE_TEST_POSTGRES_URL', 'the examples on PostgreSQL');
