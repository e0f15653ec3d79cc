/**
 * Every example and the demo, run to completion as a user would run them (a child process with
 * the tsx loader), each in its own temporary directory, so that none of them can rot.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { exampleOutput } from './support/example-output.ts';

const root = fileURLToPath(new URL('..', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'coherence-examples-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Run { code: number | null; stdout: string; stderr: string; dir: string }

/** Runs examples/<name>.ts (or the file named) on a fresh store directory and collects its output. */
function runExample(name: string, file = `${name}.ts`): Promise<Run> {
  const dir = join(scratch, name);
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'examples', file), dir], { cwd: root });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, dir }));
  });
}

/** Exit 0 (stderr tells why not), and the store in the directory given, not the default one. */
function expectSuccess(run: Run): void {
  expect(run.code, run.stderr).toBe(0);
  expect(existsSync(join(run.dir, 'data.mdb'))).toBe(true);
}

// Each example spends most of its time starting Node and the loader: run them side by side.
describe.concurrent('examples', () => {
  it('bookstore: Bob gets the conflict, resolves it, and the log verifies', async () => {
    const run = await runExample('bookstore');
    expectSuccess(run);
    exampleOutput.bookstore(run.stdout);
  });

  it('receipts: shredding alice\'s key erases her card from the projection, not bob\'s', async () => {
    const run = await runExample('receipts');
    expectSuccess(run);
    exampleOutput.receipts(run.stdout);
  });

  it('shared-document: a disjoint change merges, an overlapping one goes round the resolution loop', async () => {
    const run = await runExample('shared-document');
    expectSuccess(run);
    exampleOutput['shared-document'](run.stdout);
  });

  it('library: a race decided again, a loan limit, no copy lent twice, a return sent twice taking effect once', async () => {
    const run = await runExample('library');
    expectSuccess(run);
    expect(run.stdout).toMatch(/Alice and Bob reserve Neuromancer at once: alice ok #\d+, #\d+ \(\d attempts?\), bob ok #\d+, #\d+ \(\d attempts?\)/);
    expect(run.stdout).toMatch(/\(2 attempts\)/);
    expect(run.stdout).toMatch(/The service met (alice|bob)'s loan in (bob|alice)'s way and decided \2's reservation again/);
    expect(run.stdout).toContain('Neuromancer: 2 of 2 copies on loan');
    expect(run.stdout).toContain('Alice reserves Solaris: rejected (limit-reached {"loans":2,"limit":2})');
    expect(run.stdout).toContain('Bob reserves Dune: rejected (no-copies {"copies":1})');
    expect(run.stdout).toMatch(/Alice returns Dune: ok #(\d+), #(\d+) \(1 attempt\)\nThe desk sends the return again under the same key: duplicate: nothing written, the events of the first were #\1, #\2/);
    expect(run.stdout).toContain('Dune: 0 of 1 on loan; alice holds 1 loan(s)');
    expect(run.stdout).toContain('verify: ok, 13 events');
  });

  it('library-server: members and a librarian over HTTP, each route under its condition', async () => {
    const run = await runExample('library-server', 'library-server.mjs');
    expectSuccess(run);
    expect(run.stdout).toMatch(/^serving on http:\/\/127\.0\.0\.1:\d+$/m);
    expect(run.stdout).toContain('bob enrols himself as a librarian would: 403 FORBIDDEN');
    expect(run.stdout).toContain('nobody signed in reserves: 401 UNAUTHORIZED');
    expect(run.stdout).toContain('bob reserves Neuromancer for alice: 403 FORBIDDEN');
    expect(run.stdout).toContain('alice reserves Neuromancer: 200, #5, #6');
    expect(run.stdout).toContain('her phone sends it again under the same key: 200, #5, #6, replayed: true');
    expect(run.stdout).toContain('bob reserves Neuromancer: 422 REJECTED (no-copies)');
    expect(run.stdout).toContain('bob reserves Dune on what he read (If-Match "6"): 409 CONFLICT, theirs #7');
    expect(run.stdout).toContain("alice reads her own record: 200; bob reads alice's: 403");
    expect(run.stdout).toContain('the librarian lists members: alice (2 loan(s)), bob (0 loan(s))');
    expect(run.stdout).toContain('bob opens the explorer: 403; the librarian: 200');
    expect(run.stdout).toContain('verify: ok, 8 events');
  });

  it('fulfilment: each payment handled once, a refused reservation recorded, a mail retried, carol erased everywhere', async () => {
    const run = await runExample('fulfilment');
    expectSuccess(run);
    expect(run.stdout).toContain('fulfilment: 3 payments handled, 5 commands appended');
    expect(run.stdout).toMatch(/fulfilment: order 3 \(#5\): reserve rejected \(out-of-stock\), recorded; the manager moved on/);
    expect(run.stdout).toContain('fulfilment again: 0 commands (every payment was handled once)');
    expect(run.stdout).toContain('order 3 is at {"status":"paid","customer":"carol","sku":"mug"}');
    expect(run.stdout).toContain('mail for order 2, attempt 1: 451 try again later');
    expect(run.stdout).toContain('order 3: no mail, the address was erased');
    expect(run.stdout).toMatch(/confirmation-mail: 4 events delivered .*, 1 refused and retried, 0 dead letters/);
    expect(run.stdout).toContain('[confirmation-mail:3] to alice@example.org: order 1 is confirmed\n[confirmation-mail:4] to bob@example.org: order 2 is confirmed\n');
    expect(run.stdout).not.toMatch(/to carol@/);
    expect(run.stdout).toContain('order 3 now: "[erased]"; its shipment: {"status":"requested","address":"[erased]"}');
    expect(run.stdout).toMatch(/shipments projection: 3 shipments, 1 replayed after the shred/);
    expect(run.stdout).toMatch(/stats: process manager fulfilment at #\d+, lag \d+, 1 rejection\(s\)/);
    expect(run.stdout).toMatch(/stats: notifier confirmation-mail at #\d+, lag 0, 0 dead letter\(s\)/);
    expect(run.stdout).toMatch(/verify: ok, \d+ events/);
    expect(run.stdout).toContain("compact, then a byte scan of the store: carol's address in 0 file(s)");
  });

  it('live-projection: the followed projection shows what another process appends, then stops', async () => {
    const run = await runExample('live-projection');
    expectSuccess(run);
    expect(run.stdout).toMatch(/writer \(pid \d+\): #6 order 1 shipped/);
    expect(run.stdout).toContain('projection at #6: order 1 shipped, order 2 paid, order 3 placed');
    expect(run.stdout).toContain('stopped following');
  });

  it('demo: tells the whole story and the byte scan finds no card number', async () => {
    const run = await runExample('demo');
    expectSuccess(run);
    expect(run.stdout).toContain(`store in ${run.dir}`);
    expect(run.stdout).toMatch(/Bob writes stock 5 from his view and is refused: #2/);
    expect(run.stdout).toMatch(/Bob resolves on top of Alice's sale: stock 2 -> 4/);
    expect(run.stdout).toMatch(/Ben rewrites \/returns from the same view: no common path, merged/);
    expect(run.stdout).toContain('card 4111 1111 1111 1111');
    expect(run.stdout).toContain('keys.expire(): customer/alice and customer/bob destroyed');
    expect(run.stdout).toContain('every card now reads [erased]');
    expect(run.stdout).toMatch(/verify: ok/);
    expect(run.stdout).toMatch(/compact: the store is rewritten/);
    expect(run.stdout).toMatch(/Byte scan of .*data\.mdb.*: no card number found; the shop's address found [1-9]\d* times\./);
  });
}, 90_000);
