/**
 * The `coherence` command, run as a real child process on real stores (SPEC.md section 9).
 *
 * The command runs compiled (bin/coherence.cjs -> dist/cli.cjs, built by `npm test`'s pretest),
 * as an installed package runs it. Every `it` plays a short session of commands on one store and
 * runs independent commands side by side.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { WrongMasterKeyError, type Identity, type NewEvent } from '../src/index.ts';
import { cli, cliCountingLines, cliInTerminal, cliUntilFirstLine, hasScript, inParallel, ndjson, startCli, toNdjson, type CliRun } from './support/cli.ts';
import { action, effect, tempDir } from './support/temp-log.ts';

const MASTER_KEY = '5e'.repeat(32);
const OTHER_KEY = 'c0'.repeat(32);
const ISO_DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const DAY_MS = 24 * 60 * 60 * 1000;
/** Each run costs a second or more of start-up; a loaded machine multiplies that. */
const SLOW = { timeout: 240_000 };

const neuromancer: Identity = ['book', 'Neuromancer'];
const countZero: Identity = ['book', 'Count Zero'];
const alice: Identity = ['user', 'alice'];
const bob: Identity = ['user', 'bob'];
const carol: Identity = ['user', 'carol'];

/** Writes events as an NDJSON file in a fresh directory and returns its path. */
function ndjsonFile(events: unknown[], name = 'events.ndjson'): string {
  const path = join(tempDir('coherence-input-'), name);
  writeFileSync(path, toNdjson(events));
  return path;
}

/** Expects a run to have exited with `status`, showing its stderr when it did not. */
function expectStatus(run: CliRun, status: number): void {
  expect(run.status, `exit status; stderr: ${run.stderr}`).toBe(status);
}

const seqsOf = (run: CliRun) => ndjson(run.stdout).map((event) => (event as { seq: number }).seq);

/** Progress bars draw with ANSI escapes and block glyphs (cli-progress's shades_classic preset). */
function expectNoProgress(run: CliRun): void {
  expect(run.stderr).not.toContain('\u001b[');
  expect(run.stderr).not.toMatch(/[\u2588\u2591]/);
  expect(run.stdout).not.toContain('\u001b[');
}

/** `count` actions spread over 100 books, each carrying a little text. */
function manyEvents(count: number): NewEvent[] {
  return Array.from({ length: count }, (_, i) =>
    action(['book', i % 100], [{ op: 'add', path: `/note${i}`, value: `note ${i} ${'x'.repeat(120)}` }], { reason: 'import' }));
}

describe('coherence append, read, head and state', SLOW, () => {
  it('appends NDJSON from a file and from stdin and reads it back, whole or by --from, --kind and --aggregate', async () => {
    const store = tempDir();
    const file = ndjsonFile([
      { ...action(neuromancer, [{ op: 'add', path: '/title', value: 'Neuromancer' }]), timestamp: '2024-05-01T12:00:00.000Z' },
      action(countZero, [{ op: 'add', path: '/title', value: 'Count Zero' }]),
      action(alice, [{ op: 'add', path: '/name', value: 'Alice' }], { reason: 'sign-up' }),
    ]);

    // --store after the command, and no COHERENCE_STORE.
    const fromFile = await cli(['append', file, '--store', store]);
    expectStatus(fromFile, 0);
    expect(fromFile.stderr).toBe('appended 3 event(s), up to seq 3\n');
    expect(fromFile.stdout).toBe('');

    const fromStdin = await cli(['append', '--base', '3'], {
      store,
      input: toNdjson([action(neuromancer, [{ op: 'add', path: '/price', value: 10 }], { actor: bob })]),
    });
    expectStatus(fromStdin, 0);
    expect(fromStdin.stderr).toBe('appended 1 event(s), up to seq 4\n');

    const [all, fromThree, users, oneBook, head, state] = await inParallel([
      () => cli(['read'], { store }),
      () => cli(['read', '--from', '3'], { store }),
      () => cli(['read', '--kind', 'user'], { store }),
      () => cli(['read', '--aggregate', 'book:Neuromancer'], { store }),
      () => cli(['head'], { store }),
      () => cli(['state', 'book:Neuromancer'], { store }),
    ]);
    for (const run of [all, fromThree, users, oneBook, head, state]) expectStatus(run, 0);

    const events = ndjson(all.stdout);
    expect(seqsOf(all)).toEqual([1, 2, 3, 4]);
    expect(events[0]).toEqual({
      seq: 1,
      timestamp: '2024-05-01T12:00:00.000Z',
      source: 'test',
      action: { reason: 'edit', actor: alice, aggregate: neuromancer, patch: [{ op: 'add', path: '/title', value: 'Neuromancer' }] },
      triggers: [],
    });
    expect(events[3]).toMatchObject({ seq: 4, timestamp: expect.stringMatching(ISO_DATE), action: { actor: bob, aggregate: neuromancer } });
    expect(seqsOf(fromThree)).toEqual([3, 4]);
    expect(seqsOf(users)).toEqual([3]);
    expect(seqsOf(oneBook)).toEqual([1, 4]);
    expect(head.stdout).toBe('4\n');
    expect(JSON.parse(state.stdout)).toEqual({ state: { title: 'Neuromancer', price: 10 }, head: 4 });
  });

  it('refuses a conflicting append with exit code 3 and the NDJSON report, writes nothing, and takes it once --resolved names the conflict', async () => {
    const store = tempDir();
    const setup = await cli(['append', ndjsonFile([
      action(neuromancer, [{ op: 'add', path: '/title', value: 'Neuromancer' }], { actor: alice }),
      action(neuromancer, [{ op: 'replace', path: '/title', value: 'Neuromancer (2nd ed.)' }], { actor: bob }),
    ])], { store });
    expectStatus(setup, 0);

    const carolsEdit = toNdjson([action(neuromancer, [{ op: 'add', path: '/price', value: 12 }], { actor: carol })]);
    const [conflicts, refused, tooFar] = await inParallel([
      () => cli(['conflicts', 'book:Neuromancer', '--base', '1'], { store }),
      () => cli(['append', '--base', '1'], { store, input: carolsEdit }),
      () => cli(['append', '--base', '7'], { store, input: carolsEdit }),
    ]);

    expectStatus(conflicts, 0);
    expect(ndjson(conflicts.stdout)).toEqual([expect.objectContaining({ seq: 2, action: expect.objectContaining({ actor: bob }) })]);

    expectStatus(refused, 3);
    expect(ndjson(refused.stdout)).toEqual([
      { status: 'conflict', conflicts: 1, accepted: 0 },
      {
        line: 1,
        ours: expect.objectContaining({ seq: 3, action: expect.objectContaining({ actor: carol, patch: [{ op: 'add', path: '/price', value: 12 }] }) }),
        theirs: expect.objectContaining({ seq: 2, action: expect.objectContaining({ actor: bob }) }),
      },
    ]);

    expectStatus(tooFar, 3);
    expect(tooFar.stdout).toBe('{"status":"invalid-base","head":2}\n');

    const resolved = await cli(['append', '-', '--base', '1', '--resolved', '2'], { store, input: carolsEdit });
    expectStatus(resolved, 0);
    // seq 3: neither refused append wrote anything.
    expect(resolved.stderr).toBe('appended 1 event(s), up to seq 3\n');

    const state = await cli(['state', 'book:Neuromancer'], { store });
    expectStatus(state, 0);
    expect(JSON.parse(state.stdout)).toEqual({ state: { title: 'Neuromancer (2nd ed.)', price: 12 }, head: 3 });
  });

  it('appends a batch once under --idempotency-key: a repeat writes nothing, says so and exits 0, even with a stale --base', async () => {
    const store = tempDir();
    const input = toNdjson([action(neuromancer, [{ op: 'add', path: '/title', value: 'Neuromancer' }], { actor: alice })]);
    const first = await cli(['append', '--idempotency-key', 'import-2024-05-01'], { store, input });
    expectStatus(first, 0);
    expect(first.stderr).toBe('appended 1 event(s), up to seq 1\n');
    const other = await cli(['append'], { store, input: toNdjson([action(neuromancer, [{ op: 'add', path: '/price', value: 9 }], { actor: bob })]) });
    expectStatus(other, 0);
    const repeat = await cli(['append', '--base', '0', '--idempotency-key', 'import-2024-05-01'], { store, input });
    expectStatus(repeat, 0);
    expect(repeat.stderr).toBe('already appended under this idempotency key: 1 event(s), up to seq 1; nothing written\n');
    const head = await cli(['head'], { store });
    expect(head.stdout).toBe('2\n');
    const empty = await cli(['append', '--idempotency-key', ''], { store, input });
    expectStatus(empty, 2);
    expect(empty.stderr).toMatch(/idempotencyKey: expected a non-empty string/);
    expect((await cli(['head'], { store })).stdout).toBe('2\n');
  });

  it('reproduces every event and every state on a new store when `read` output is fed to `append`', async () => {
    const source = tempDir();
    const copy = tempDir();
    const setup = await cli(['append', ndjsonFile([
      { ...action(neuromancer, [{ op: 'add', path: '/title', value: 'Neuromancer' }]), timestamp: '2024-05-01T12:00:00.000Z' },
      action(countZero, [{ op: 'add', path: '/stock', value: 3 }], { triggers: [['batch', 7]] }),
      {
        ...action(['receipt', 1], [{ op: 'add', path: '/card', value: '4111 1111 1111 1111' }, { op: 'add', path: '/total', value: 12 }]),
        encrypt: { key: ['customer', 42], paths: ['/card'] },
      },
      action(neuromancer, [{ op: 'move', from: '/title', path: '/name' }], { actor: bob }),
      effect(['batch', 7], 'recalled'),
      action(countZero, [{ op: 'replace', path: '/stock', value: 0 }]),
    ])], { store: source, masterKey: MASTER_KEY });
    expectStatus(setup, 0);
    const shred = await cli(['keys', 'shred', 'customer:42'], { store: source, masterKey: MASTER_KEY });
    expectStatus(shred, 0);

    const exported = await cli(['read'], { store: source, masterKey: MASTER_KEY });
    expectStatus(exported, 0);
    const imported = await cli(['append'], { store: copy, input: exported.stdout });
    expectStatus(imported, 0);
    expect(imported.stderr).toBe('appended 7 event(s), up to seq 7\n');

    const events = ndjson(exported.stdout) as { seq: number; action?: { aggregate: Identity } }[];
    const aggregates = [...new Set(events.flatMap((event) => (event.action === undefined ? [] : [JSON.stringify(event.action.aggregate)])))];
    expect(aggregates).toHaveLength(3);
    const [reread, ...states] = await inParallel([
      () => cli(['read'], { store: copy }),
      ...aggregates.flatMap((aggregate) => [
        () => cli(['state', aggregate], { store: source, masterKey: MASTER_KEY }),
        () => cli(['state', aggregate], { store: copy }),
      ]),
    ]);

    expectStatus(reread as CliRun, 0);
    // The same contents; on a fresh store the seqs come out the same too.
    const withoutSeq = ({ seq: _seq, ...rest }: { seq: number }) => rest;
    const copied = ndjson((reread as CliRun).stdout) as { seq: number }[];
    expect(copied.map(withoutSeq)).toEqual(events.map(withoutSeq));
    expect(copied.map((event) => event.seq)).toEqual(events.map((event) => event.seq));
    for (let i = 0; i < aggregates.length; i++) {
      const [inSource, inCopy] = [states[2 * i] as CliRun, states[2 * i + 1] as CliRun];
      expectStatus(inSource, 0);
      expectStatus(inCopy, 0);
      expect(JSON.parse(inCopy.stdout), aggregates[i]).toEqual(JSON.parse(inSource.stdout));
    }
    const receipt = states[2 * aggregates.indexOf(JSON.stringify(['receipt', 1]))] as CliRun;
    expect(JSON.parse(receipt.stdout)).toEqual({ state: { card: null, total: 12 }, head: 7 });
  });

  it('opens a store directory whose name contains a dot, such as shop.v2', async () => {
    const store = join(tempDir(), 'shop.v2');
    const appended = await cli(['append'], { store, input: toNdjson([action(neuromancer, [{ op: 'add', path: '/title', value: 'Neuromancer' }])]) });
    expectStatus(appended, 0);
    const head = await cli(['head'], { store });
    expectStatus(head, 0);
    expect(head.stdout).toBe('1\n');
  });
});

describe('coherence read --follow', SLOW, () => {
  it('keeps printing matching events as another process appends them, until SIGTERM or SIGINT ends it with exit code 0', async () => {
    const store = tempDir();
    expectStatus(await cli(['append'], { store, input: toNdjson([action(neuromancer, [{ op: 'add', path: '/title', value: 'Neuromancer' }])]) }), 0);

    const byTerm = startCli(['read', '--follow', '--kind', 'book'], { store });
    const byInt = startCli(['read', '--follow', '--kind', 'book'], { store });
    const hasSeq = (seq: number) => (line: unknown) => (line as { seq: number }).seq === seq;
    await Promise.all([byTerm.waitFor(hasSeq(1)), byInt.waitFor(hasSeq(1))]);

    const appended = await cli(['append'], {
      store,
      input: toNdjson([
        action(alice, [{ op: 'add', path: '/name', value: 'Alice' }]),
        action(countZero, [{ op: 'add', path: '/title', value: 'Count Zero' }]),
      ]),
    });
    expectStatus(appended, 0);
    const [arrived] = await Promise.all([byTerm.waitFor(hasSeq(3)), byInt.waitFor(hasSeq(3))]);
    expect(arrived).toMatchObject({ seq: 3, action: { aggregate: countZero } });

    const [terminated, interrupted] = await Promise.all([byTerm.stop('SIGTERM'), byInt.stop('SIGINT')]);
    for (const [run, follower] of [[terminated, byTerm], [interrupted, byInt]] as const) {
      expect(run.signal).toBeNull();
      expectStatus(run, 0);
      // The user's action (seq 2) is not of kind book.
      expect(follower.lines.map((line) => (line as { seq: number }).seq)).toEqual([1, 3]);
    }
  });
});

describe('coherence keys and the master key', SLOW, () => {
  it('encrypts with the master key from --master-key-file or COHERENCE_MASTER_KEY, shows envelopes with --raw, and forgets values once keys are shredded or expire', async () => {
    const dir = tempDir();
    const store = join(dir, 'store');
    const keyFile = join(dir, 'master-key');
    writeFileSync(keyFile, `${MASTER_KEY}\n`);
    const cards = ['4111 1111 1111 1111', '5500 0000 0000 0004'];

    const created = await cli(['keys', 'create', 'customer:7', '--ttl', '30d'], { store, masterKey: MASTER_KEY });
    expectStatus(created, 0);
    const info = JSON.parse(created.stdout) as { key: Identity; createdAt: string; expiresAt: string };
    expect(info).toEqual({ key: ['customer', 7], createdAt: expect.stringMatching(ISO_DATE), expiresAt: expect.stringMatching(ISO_DATE) });
    const lifetime = Date.parse(info.expiresAt) - Date.parse(info.createdAt);
    expect(Math.abs(lifetime - 30 * DAY_MS)).toBeLessThanOrEqual(60 * 60 * 1000); // 30 days, give or take a DST hour

    const receipts = ndjsonFile([
      {
        ...action(['receipt', 1], [{ op: 'add', path: '/card', value: cards[0] }, { op: 'add', path: '/total', value: 12 }]),
        encrypt: { key: ['customer', 42], paths: ['/card'] },
      },
      {
        ...action(['receipt', 2], [{ op: 'add', path: '/card', value: cards[1] }, { op: 'add', path: '/total', value: 30 }]),
        encrypt: { key: ['customer', 7], paths: ['/card'] },
      },
    ]);
    const appended = await cli(['--master-key-file', keyFile, 'append', receipts], { store });
    expectStatus(appended, 0);

    const [plain, raw, listed] = await inParallel([
      () => cli(['read'], { store, masterKey: MASTER_KEY }),
      () => cli(['read', '--raw'], { store }),
      () => cli(['keys', 'list'], { store }),
    ]);
    for (const run of [plain, raw, listed]) expectStatus(run, 0);
    expect(ndjson(plain.stdout)).toEqual([
      expect.objectContaining({ seq: 1, action: expect.objectContaining({ patch: [{ op: 'add', path: '/card', value: cards[0] }, { op: 'add', path: '/total', value: 12 }] }), triggers: [['customer', 42]] }),
      expect.objectContaining({ seq: 2, action: expect.objectContaining({ patch: [{ op: 'add', path: '/card', value: cards[1] }, { op: 'add', path: '/total', value: 30 }] }), triggers: [['customer', 7]] }),
    ]);
    for (const card of cards) expect(raw.stdout).not.toContain(card);
    expect(ndjson(raw.stdout)).toEqual([1, 2].map((seq) => expect.objectContaining({
      seq,
      action: expect.objectContaining({
        patch: [
          { op: 'add', path: '/card', value: { envelope: 'xchacha20-poly1305', key: ['customer', seq === 1 ? 42 : 7], data: expect.stringMatching(/^[A-Za-z0-9+/]+=*$/) } },
          { op: 'add', path: '/total', value: seq === 1 ? 12 : 30 },
        ],
      }),
    })));
    const keys = ndjson(listed.stdout) as { key: Identity; destroyedAt?: string }[];
    expect(keys.map((k) => k.key)).toEqual(expect.arrayContaining([['customer', 7], ['customer', 42]]));
    expect(keys).toHaveLength(2);
    expect(keys.every((k) => k.destroyedAt === undefined)).toBe(true);

    const shredded = await cli(['keys', 'shred', 'customer:42'], { store, masterKey: MASTER_KEY });
    expectStatus(shredded, 0);
    expect(JSON.parse(shredded.stdout)).toEqual({
      seq: 3, timestamp: expect.stringMatching(ISO_DATE), source: 'keystore', effect: { reason: 'shredded', trigger: ['customer', 42] },
    });
    const monthLater = new Date(Date.now() + 31 * DAY_MS).toISOString();
    const expired = await cli(['keys', 'expire', '--now', monthLater], { store, masterKey: MASTER_KEY });
    expectStatus(expired, 0);
    expect(ndjson(expired.stdout)).toEqual([{
      seq: 4, timestamp: expect.stringMatching(ISO_DATE), source: 'keystore', effect: { reason: 'key-expired', trigger: ['customer', 7] },
    }]);

    const [after, destroyed, stats] = await inParallel([
      () => cli(['read'], { store, masterKey: MASTER_KEY }),
      () => cli(['keys', 'list', '--destroyed'], { store }),
      () => cli(['stats'], { store }),
    ]);
    for (const run of [after, destroyed, stats]) expectStatus(run, 0);
    for (const card of cards) expect(after.stdout).not.toContain(card);
    const redacted = ndjson(after.stdout) as { seq: number; action?: { patch: { value: unknown }[] } }[];
    expect(redacted.map((event) => event.seq)).toEqual([1, 2, 3, 4]);
    expect(redacted.slice(0, 2).map((event) => event.action?.patch.map((op) => op.value))).toEqual([[null, 12], [null, 30]]);
    const gone = ndjson(destroyed.stdout) as { key: Identity; destroyedAt?: string }[];
    expect(gone).toHaveLength(2);
    expect(gone.every((k) => ISO_DATE.test(k.destroyedAt ?? ''))).toBe(true);
    expect(JSON.parse(stats.stdout)).toEqual({
      engine: 'lmdb', events: 4, aggregates: 2, keys: { live: 0, destroyed: 2 }, bytes: expect.any(Number), projections: [], processManagers: [], notifiers: [],
    });
  });

  it('refuses a wrong master key with exit code 1 and WrongMasterKeyError\'s message, and encryption without one with MissingMasterKeyError\'s', async () => {
    const dir = tempDir();
    const store = join(dir, 'store');
    const wrongKeyFile = join(dir, 'wrong-key');
    writeFileSync(wrongKeyFile, OTHER_KEY);
    expectStatus(await cli(['keys', 'create', 'customer:1'], { store, masterKey: MASTER_KEY }), 0);

    const encrypted = toNdjson([{ ...action(['receipt', 1], [{ op: 'add', path: '/card', value: '4111' }]), encrypt: { key: ['customer', 1] } }]);
    const [wrongFile, wrongEnv, missing] = await inParallel([
      () => cli(['head', '--master-key-file', wrongKeyFile], { store }),
      () => cli(['head'], { store, masterKey: OTHER_KEY }),
      () => cli(['append'], { store, input: encrypted }),
    ]);
    for (const run of [wrongFile, wrongEnv]) {
      expectStatus(run, 1);
      expect(run.stderr).toContain(new WrongMasterKeyError().message);
      expect(run.stderr).not.toContain(OTHER_KEY);
      expect(run.stdout).toBe('');
    }
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain('encryption needs the log to be opened with a masterKey');

    const head = await cli(['head'], { store, masterKey: MASTER_KEY });
    expectStatus(head, 0);
    expect(head.stdout).toBe('0\n');
  });
});

describe('coherence project, rebuild, verify, compact and stats', SLOW, () => {
  it('catches a projection up, rebuilds it, reports it with its lag in stats, verifies and compacts the store', async () => {
    const store = tempDir();
    expectStatus(await cli(['append', ndjsonFile([
      action(neuromancer, [{ op: 'add', path: '/title', value: 'Neuromancer' }]),
      action(countZero, [{ op: 'add', path: '/title', value: 'Count Zero' }]),
      action(alice, [{ op: 'add', path: '/name', value: 'Alice' }]),
    ])], { store }), 0);

    const byAggregate = (entries: unknown[]) => [...entries].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    const projected = await cli(['project', 'books', '--kind', 'book', '--entries'], { store });
    expectStatus(projected, 0);
    expect(projected.stderr).toBe('books: at seq 3, 2 action(s) applied, 0 replayed\n');
    expect(byAggregate(ndjson(projected.stdout))).toEqual([[countZero, { title: 'Count Zero' }], [neuromancer, { title: 'Neuromancer' }]]);

    expectStatus(await cli(['append'], { store, input: toNdjson([action(neuromancer, [{ op: 'add', path: '/price', value: 10 }])]) }), 0);
    const [lagging, verified] = await inParallel([() => cli(['stats'], { store }), () => cli(['verify'], { store })]);
    expectStatus(lagging, 0);
    expect(JSON.parse(lagging.stdout)).toEqual({
      engine: 'lmdb', events: 4, aggregates: 3, keys: { live: 0, destroyed: 0 }, bytes: expect.any(Number), projections: [{ name: 'books', position: 3, lag: 1 }], processManagers: [], notifiers: [],
    });
    expect((JSON.parse(lagging.stdout) as { bytes: number }).bytes).toBeGreaterThan(0);
    expectStatus(verified, 0);
    expect(JSON.parse(verified.stdout)).toEqual({ ok: true, events: 4 });

    const rebuilt = await cli(['rebuild', 'books', '--kind', 'book', '--entries'], { store });
    expectStatus(rebuilt, 0);
    expect(rebuilt.stderr).toBe('books: at seq 4, 3 action(s) applied, 0 replayed\n');
    expect(byAggregate(ndjson(rebuilt.stdout))).toEqual([[countZero, { title: 'Count Zero' }], [neuromancer, { title: 'Neuromancer', price: 10 }]]);

    const compacted = await cli(['compact'], { store });
    expectStatus(compacted, 0);
    expect(compacted.stderr).toBe('compacted\n');
    const [caughtUp, reverified] = await inParallel([() => cli(['stats'], { store }), () => cli(['verify'], { store })]);
    expectStatus(caughtUp, 0);
    expect(JSON.parse(caughtUp.stdout)).toMatchObject({ events: 4, aggregates: 3, projections: [{ name: 'books', position: 4, lag: 0 }] });
    expectStatus(reverified, 0);
    expect(JSON.parse(reverified.stdout)).toEqual({ ok: true, events: 4 });
  });
});

describe('coherence output when piped and on a terminal', SLOW, () => {
  it('prints no progress bar or escape codes when its output is piped, even for a large append, a rebuild, verify and compact', async () => {
    const store = tempDir();
    const appended = await cli(['append', ndjsonFile(manyEvents(3000))], { store });
    expectStatus(appended, 0);
    expect(appended.stderr).toBe('appended 3000 event(s), up to seq 3000\n');

    const [rebuilt, verified] = await inParallel([() => cli(['rebuild', 'all'], { store }), () => cli(['verify'], { store })]);
    const compacted = await cli(['compact'], { store });
    for (const run of [appended, rebuilt, verified, compacted]) {
      expectStatus(run, 0);
      expectNoProgress(run);
    }
    expect(rebuilt.stderr).toBe('all: at seq 3000, 3000 action(s) applied, 0 replayed\n');
    expect(verified.stderr).toBe('');
    expect(JSON.parse(verified.stdout)).toEqual({ ok: true, events: 3000 });
    expect(compacted.stderr).toBe('compacted\n');
  });

  it.skipIf(!hasScript)('draws a progress bar on a terminal for an append from a file and for verify', async () => {
    const store = tempDir();
    const appended = await cliInTerminal(['append', ndjsonFile(manyEvents(200))], { store });
    expectStatus(appended, 0);
    expect(appended.stdout).toContain('reading [');
    expect(appended.stdout).toMatch(/\u2588/);
    expect(appended.stdout).toContain('appended 200 event(s), up to seq 200');

    const verified = await cliInTerminal(['verify'], { store });
    expectStatus(verified, 0);
    expect(verified.stdout).toContain('verifying [');
    expect(verified.stdout).toContain('\u001b[');
    expect(verified.stdout).toContain('"events": 200');
  });

  it('ends quietly with exit code 0 when the reader of its output goes away, as in `coherence read | head -n 1`', async () => {
    const store = tempDir();
    expectStatus(await cli(['append', ndjsonFile(manyEvents(1000))], { store }), 0);
    const run = await cliUntilFirstLine(['read'], { store });
    expect(ndjson(run.stdout)).toEqual([expect.objectContaining({ seq: 1 })]);
    expect(run.stderr).toBe('');
    expectStatus(run, 0);
  });
});

describe('coherence usage', SLOW, () => {
  const commands = [
    [], ['append'], ['read'], ['head'], ['state'], ['conflicts'],
    ['keys'], ['keys', 'list'], ['keys', 'create'], ['keys', 'shred'], ['keys', 'expire'],
    ['project'], ['rebuild'], ['verify'], ['compact'], ['stats'],
  ];

  it('prints usage naming the command for --help on every command and exits 0', async () => {
    const runs = await inParallel(commands.map((command) => () => cli([...command, '--help'])));
    commands.forEach((command, i) => {
      const run = runs[i] as CliRun;
      expectStatus(run, 0);
      const name = ['coherence', ...command].join(' ');
      expect(run.stdout, name).toMatch(new RegExp(`^Usage: ${name} \\[options\\]`));
      expect(run.stdout, name).toContain('-h, --help');
    });
  });

  it('exits 2 with a message on bad usage and writes nothing', async () => {
    const store = tempDir();
    const event = toNdjson([action(neuromancer, [{ op: 'add', path: '/title', value: 'Neuromancer' }])]);
    const cases: [args: string[], options: { store?: string; input?: string }, message: string | RegExp][] = [
      [['frobnicate'], { store }, "unknown command 'frobnicate'"],
      [['head', '--frobnicate'], { store }, "unknown option '--frobnicate'"],
      [['state'], { store }, "missing required argument 'aggregate'"],
      [['append', '--base', 'x1'], { store, input: event }, '--base: expected an integer >= 0, got "x1"'],
      [['append', '--resolved', '2,0'], { store, input: event }, '--resolved: expected an integer >= 1, got "0"'],
      [['state', 'Neuromancer'], { store }, 'aggregate: expected kind:id, got "Neuromancer"'],
      [['head'], {}, 'expected --store <dir> (or COHERENCE_STORE)'],
      // The master key is never a plain argument.
      [['--master-key', MASTER_KEY, 'head'], { store }, "unknown option '--master-key': a master key is never an argument; put the key (64 hex characters or 32 bytes) in a file and pass --master-key-file <file>, or set COHERENCE_MASTER_KEY"],
      [['head', `--master-key=${MASTER_KEY}`], { store }, 'pass --master-key-file <file>, or set COHERENCE_MASTER_KEY'],
      [['append'], { store, input: `${event}not json\n` }, "stdin line 2: expected JSON, got a line that does not parse (Unexpected token 'o')"],
      [['append'], { store, input: '' }, 'stdin: expected at least one event, got none'],
    ];
    const runs = await inParallel(cases.map(([args, options]) => () => cli(args, options)));
    cases.forEach(([args, , message], i) => {
      const run = runs[i] as CliRun;
      expect(run.status, `${args.join(' ')}: ${run.stderr}`).toBe(2);
      expect(run.stderr, args.join(' ')).toContain(message);
      expect(run.stderr).not.toContain(MASTER_KEY);
      expect(run.stdout, args.join(' ')).toBe('');
    });

    const head = await cli(['head'], { store });
    expectStatus(head, 0);
    expect(head.stdout).toBe('0\n');
  });

  it('exits 2 naming the problem when an NDJSON line is JSON but not an event', async () => {
    const store = tempDir();
    const run = await cli(['append'], { store, input: '{"source":"test"}\n' });
    expect(run.stderr).toContain('expected exactly one of "action" or "effect", got neither');
    expectStatus(run, 2);
  });
});

describe('coherence as a new user first meets it', SLOW, () => {
  it('prints the version of the package with --version', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    const [long, short] = await inParallel([() => cli(['--version']), () => cli(['-V'])]);
    for (const run of [long, short]) {
      expectStatus(run, 0);
      expect(run.stdout).toBe(`${version}\n`);
    }
  });

  it('exits 1 with "no store at <dir>" and creates nothing when a command other than append or keys create is given a store that does not exist', async () => {
    const typo = join(tempDir(), 'typo');
    const commands = [
      ['read'], ['read', '--follow'], ['head'], ['state', 'book:1'], ['conflicts', 'book:1', '--base', '0'], ['stats'], ['verify'],
      ['compact'], ['keys', 'list'], ['keys', 'shred', 'customer:9'], ['keys', 'expire'], ['project', 'books'], ['rebuild', 'books'],
    ];
    const runs = await inParallel(commands.map((command) => () => cli(['--store', typo, ...command], { masterKey: MASTER_KEY })));
    commands.forEach((command, i) => {
      const run = runs[i] as CliRun;
      expect(run.status, `${command.join(' ')}: ${run.stderr}`).toBe(1);
      expect(run.stderr, command.join(' ')).toBe(`coherence: no store at ${typo}\n`);
      expect(run.stdout, command.join(' ')).toBe('');
    });
    expect(existsSync(typo)).toBe(false);

    // The commands that put something in a store create it.
    const created = await cli(['--store', typo, 'keys', 'create', 'customer:1'], { masterKey: MASTER_KEY });
    expectStatus(created, 0);
    const head = await cli(['--store', typo, 'head']);
    expectStatus(head, 0);
    expect(head.stdout).toBe('0\n');
  });

  it('never shows a master key, nor a path that looks like one, in any message', async () => {
    const store = tempDir();
    expectStatus(await cli(['append'], { store, input: toNdjson([action(neuromancer, [{ op: 'add', path: '/title', value: 'Neuromancer' }])]) }), 0);
    const [keyAsFile, keyAsStore, keyAsCommand, keyAsInput] = await inParallel([
      () => cli(['--master-key-file', MASTER_KEY, 'head'], { store }),
      () => cli(['--store', MASTER_KEY, 'head']),
      () => cli([MASTER_KEY], { store }),
      () => cli(['append', join(tempDir(), MASTER_KEY)], { store }),
    ]);
    expectStatus(keyAsFile, 1);
    expect(keyAsFile.stderr).toContain('--master-key-file: cannot read the file (no such file); what was given looks like a key itself');
    expect(keyAsFile.stderr).toContain('set COHERENCE_MASTER_KEY');
    expectStatus(keyAsStore, 1);
    expect(keyAsStore.stderr).toBe('coherence: no store at a path that looks like a key (not shown)\n');
    expectStatus(keyAsCommand, 2);
    expectStatus(keyAsInput, 1);
    expect(keyAsInput.stderr).toContain('cannot read the file (no such file)');
    for (const run of [keyAsFile, keyAsStore, keyAsCommand, keyAsInput]) {
      expect(run.stderr).not.toContain(MASTER_KEY);
      expect(run.stderr).not.toContain(MASTER_KEY.slice(0, 32));
      expect(run.stdout).toBe('');
    }
  });

  it('prints the report of a conflict-heavy append one conflict per line, each naming its input line, and exits 3', async () => {
    const store = tempDir();
    // 600 lines over 30 aggregates, appended once, then again from base 0: each line conflicts
    // with the 20 stored actions on its aggregate.
    const events = Array.from({ length: 600 }, (_, i) => action(['book', i % 30], [{ op: 'add', path: `/n${i}`, value: i }]));
    const file = ndjsonFile(events);
    expectStatus(await cli(['append', file], { store }), 0);
    const refused = await cli(['append', file, '--base', '0'], { store });
    expectStatus(refused, 3);
    const [status, ...conflicts] = ndjson(refused.stdout) as [unknown, ...{ line: number; ours: { seq: number; action: { aggregate: Identity } }; theirs: { seq: number; action: { aggregate: Identity } } }[]];
    expect(status).toEqual({ status: 'conflict', conflicts: 600 * 20, accepted: 0 });
    expect(conflicts).toHaveLength(600 * 20);
    expect(refused.stdout.split('\n')).toHaveLength(1 + 600 * 20 + 1);
    for (const conflict of conflicts.slice(0, 50)) {
      expect(conflict.ours.seq).toBe(600 + conflict.line);
      expect(conflict.theirs.action.aggregate).toEqual(conflict.ours.action.aggregate);
    }
    expect(conflicts.at(-1)).toMatchObject({ line: 600, ours: { seq: 1200 }, theirs: { seq: 600 } });
    const head = await cli(['head'], { store });
    expect(head.stdout).toBe('600\n');
  });

  it('streams the 800,000 conflicts of a 20,000-line append over 500 aggregates instead of running out of memory', async () => {
    const store = tempDir();
    const events = Array.from({ length: 20_000 }, (_, i) => action(['book', `b${i % 500}`], [{ op: 'add', path: `/n${i}`, value: `note ${i} ${'x'.repeat(100)}` }]));
    const file = ndjsonFile(events);
    expectStatus(await cli(['append', file], { store }), 0);
    const refused = await cliCountingLines(['append', file, '--base', '0'], { store }, 2);
    expect(refused.status, refused.stderr).toBe(3);
    expect(refused.lines).toBe(1 + 20_000 * 40);
    expect(refused.first).toEqual([{ status: 'conflict', conflicts: 800_000, accepted: 0 }, expect.objectContaining({ line: 1, ours: expect.objectContaining({ seq: 20_001 }) })]);
    expect(refused.last).toMatchObject({ line: 20_000, ours: { seq: 40_000 }, theirs: { seq: 20_000 } });
  });

  it('names the file, the line and the parser\'s reason for a malformed NDJSON line, without echoing the line', async () => {
    const dir = tempDir();
    const file = join(dir, 'events.ndjson');
    writeFileSync(file, `${toNdjson([action(neuromancer, [{ op: 'add', path: '/title', value: 'Neuromancer' }])])}{"card": "4111 1111 1111 1111",}\n`);
    const store = tempDir();
    const run = await cli(['append', file], { store });
    expectStatus(run, 2);
    expect(run.stderr).toBe(`coherence: ${file} line 2: expected JSON, got a line that does not parse (Expected double-quoted property name at column 32)\n`);
    expect(run.stderr).not.toContain('4111');
    const missing = await cli(['append', join(dir, 'nope.ndjson')], { store });
    expectStatus(missing, 1);
    expect(missing.stderr).toBe(`coherence: ${join(dir, 'nope.ndjson')}: cannot read the file (no such file)\n`);
  });

  it('names --expires-at, --ttl and --now when their value is invalid or already past', async () => {
    const store = tempDir();
    const cases: [string[], string][] = [
      [['keys', 'create', 'customer:1', '--expires-at', '2001-01-01'], '--expires-at: expected a time after now'],
      [['keys', 'create', 'customer:1', '--expires-at', 'tomorrow'], '--expires-at: expected an ISO 8601 date such as 2027-01-31 or 2027-01-31T12:00:00Z, got "tomorrow"'],
      [['keys', 'create', 'customer:1', '--ttl', 'soon'], '--ttl: expected a duration such as 30d'],
      [['keys', 'create', 'customer:1', '--ttl', '{"days":-1}'], '--ttl.days: expected a finite number >= 0'],
    ];
    const runs = await inParallel(cases.map(([args]) => () => cli(args, { store, masterKey: MASTER_KEY })));
    cases.forEach(([args, message], i) => {
      const run = runs[i] as CliRun;
      expect(run.status, `${args.join(' ')}: ${run.stderr}`).toBe(2);
      expect(run.stderr, args.join(' ')).toContain(`coherence: ${message}`);
      expect(run.stderr).not.toContain('options.');
    });
    const now = await cli(['keys', 'expire', '--now', 'later'], { store, masterKey: MASTER_KEY });
    expectStatus(now, 2);
    expect(now.stderr).toContain('--now: expected an ISO 8601 date');
    const listed = await cli(['keys', 'list'], { store });
    expect(listed.stdout).toBe('');
  });

  it('says so when it shreds a key that never existed, and the key can then never be created', async () => {
    const store = tempDir();
    expectStatus(await cli(['keys', 'create', 'customer:1'], { store, masterKey: MASTER_KEY }), 0);
    const [never, existing] = await inParallel([
      () => cli(['keys', 'shred', 'customer:9'], { store, masterKey: MASTER_KEY }),
      () => cli(['keys', 'shred', 'customer:1'], { store, masterKey: MASTER_KEY }),
    ]);
    expectStatus(never, 0);
    expect(never.stderr).toBe('key customer:9 did not exist; recorded as destroyed so it can never be created\n');
    expect(JSON.parse(never.stdout)).toMatchObject({ effect: { reason: 'shredded', trigger: ['customer', 9] } });
    expectStatus(existing, 0);
    expect(existing.stderr).toBe('');
    const again = await cli(['keys', 'create', 'customer:9'], { store, masterKey: MASTER_KEY });
    expectStatus(again, 1);
    expect(again.stderr).toContain('keys are never reused');
  });
});
