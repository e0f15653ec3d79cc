/**
 * coherence/testing (SPEC 13): decider specs run the real decider and command service on a real
 * store, stage races honestly, and fail with node's AssertionError under any runner.
 */
import { AssertionError } from 'node:assert';
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CommandError, createCommandService, decider, InvalidArgumentError, InvalidEventError, memoryEngine, openLog, type DecideContext, type Intent } from '../src/index.ts';
import { deciderSpec, openTestLog } from '../src/testing/index.ts';
import * as testing from '../src/testing/index.ts';
import { reserve } from './support/deciders.ts';
import { rejection } from './support/crypto-fixtures.ts';

const book = ['book', 'N'] as ['book', string];
const oneCopy = [{ aggregate: book, patch: [{ op: 'add' as const, path: '/copies', value: 1 }, { op: 'add' as const, path: '/holds', value: {} }] }];
const reserved = (copies: number, user = 'alice'): Intent[] => [
  { aggregate: book, reason: 'reserved', patch: [{ op: 'replace', path: '/copies', value: copies }, { op: 'add', path: `/holds/${user}`, value: true }] },
];

const testDirs = () => readdirSync(tmpdir()).filter((name) => name.startsWith('coherence-test-'));

describe('deciderSpec', () => {
  it('passes when the decider decides exactly the expected intents', async () => {
    await deciderSpec(reserve).given(oneCopy).when({ isbn: 'N', user: 'alice' }, { actor: ['user', 'alice'] }).then(reserved(0));
  });

  it('passes when the decider refuses with the expected reason, and with the expected details when they are given', async () => {
    await deciderSpec(reserve).given([]).when({ isbn: 'N', user: 'alice' }).thenRejected('no-copies');
    await deciderSpec(reserve).given([]).when({ isbn: 'N', user: 'alice' }).thenRejected('no-copies', { isbn: 'N' });
  });

  it('fails with an AssertionError showing expected and actual intents side by side', async () => {
    const error = await rejection(deciderSpec(reserve).given(oneCopy).when({ isbn: 'N', user: 'alice' }).then(reserved(1)));
    expect(error).toBeInstanceOf(AssertionError);
    const message = (error as Error).message;
    expect(message.split('\n')[0]).toBe('deciderSpec("reserve") when {"isbn":"N","user":"alice"}: expected other intents');
    expect(message).toContain('+ actual - expected');
    expect(message).toMatch(/\+ +value: 0\n- +value: 1/);
    expect(error).toMatchObject({ actual: { intents: reserved(0) }, expected: { intents: reserved(1) }, operator: 'deepStrictEqual' });
  });

  it('fails when a rejection was expected and intents came, showing both', async () => {
    const error = await rejection(deciderSpec(reserve).given(oneCopy).when({ isbn: 'N', user: 'alice' }).thenRejected('no-copies'));
    expect(error).toBeInstanceOf(AssertionError);
    const message = (error as Error).message;
    expect(message.split('\n')[0]).toBe('deciderSpec("reserve") when {"isbn":"N","user":"alice"}: expected rejected "no-copies", got intents');
    expect(message).toMatch(/\+ +intents: \[/);
    expect(message).toMatch(/- +rejected: 'no-copies'/);
  });

  it('fails when intents were expected and a rejection came, or another reason or details', async () => {
    const wrongKind = await rejection(deciderSpec(reserve).given([]).when({ isbn: 'N', user: 'alice' }).then(reserved(0)));
    expect((wrongKind as Error).message.split('\n')[0]).toBe('deciderSpec("reserve") when {"isbn":"N","user":"alice"}: expected intents, got rejected "no-copies"');
    const wrongReason = await rejection(deciderSpec(reserve).given([]).when({ isbn: 'N', user: 'alice' }).thenRejected('closed'));
    expect((wrongReason as Error).message.split('\n')[0]).toBe('deciderSpec("reserve") when {"isbn":"N","user":"alice"}: expected rejected "closed", got rejected "no-copies"');
    const wrongDetails = await rejection(deciderSpec(reserve).given([]).when({ isbn: 'N', user: 'alice' }).thenRejected('no-copies', { isbn: 'X' }));
    expect(wrongDetails).toBeInstanceOf(AssertionError);
    expect((wrongDetails as Error).message).toMatch(/\+ +isbn: 'N'\n- +isbn: 'X'/);
  });

  it('stages a race with meanwhile: the other events land between the read and the append, and the service decides again on them', async () => {
    const contexts: DecideContext[] = [];
    const watched = decider<{ isbn: string; user: string }>({
      name: 'reserve',
      aggregates: (c) => reserve.aggregates(c),
      decide(c, states, context) {
        contexts.push(context);
        return reserve.decide(c, states, context);
      },
    });
    // Two copies when alice's reservation is decided; bob takes one before it is appended.
    const twoCopies = [{ aggregate: book, patch: [{ op: 'add' as const, path: '/copies', value: 2 }, { op: 'add' as const, path: '/holds', value: {} }] }];
    const bob = { aggregate: book, reason: 'reserved', patch: [{ op: 'replace' as const, path: '/copies', value: 1 }, { op: 'add' as const, path: '/holds/bob', value: true }] };
    await deciderSpec(watched).given(twoCopies).meanwhile(bob).when({ isbn: 'N', user: 'alice' }).then(reserved(0));
    expect(contexts.map((c) => c.attempt)).toEqual([1, 2]);
    expect(contexts[1]?.conflicts.map((c) => c.theirs)).toMatchObject([{ seq: 2, source: 'given', action: { actor: ['test', 'given'], patch: bob.patch } }]);

    // Bob takes the last copy meanwhile: decided again, alice's reservation is refused.
    await deciderSpec(reserve).given(oneCopy).meanwhile([{ ...bob, patch: [{ op: 'replace', path: '/copies', value: 0 }] }]).when({ isbn: 'N', user: 'alice' }).thenRejected('no-copies');
  });

  it('takes the history as full NewEvents or as the short form, one batch per given, in order', async () => {
    await deciderSpec(reserve)
      .given([{ source: 'import', action: { reason: 'acquired', actor: ['user', 'librarian'], aggregate: book, patch: [{ op: 'add', path: '/copies', value: 3 }] } }])
      .given([{ aggregate: book, patch: [{ op: 'add', path: '/holds', value: { bob: true } }], reason: 'held' }, { aggregate: book, patch: [{ op: 'replace', path: '/copies', value: 2 }] }])
      .when({ isbn: 'N', user: 'alice' })
      .then(reserved(1));
    await deciderSpec(reserve).given(oneCopy).given([{ aggregate: book, patch: [{ op: 'add', path: '/holds/alice', value: true }] }]).when({ isbn: 'N', user: 'alice' }).thenRejected('already-held', { user: 'alice' });
  });

  it('folds the history as the log does, encrypted values decrypted for the decider (a random master key)', async () => {
    const readCard = decider<null>({
      name: 'read-card',
      aggregates: () => [['receipt', 1]],
      decide: (_, states) => [{ aggregate: ['receipt', 2], reason: 'copied', patch: [{ op: 'add', path: '/card', value: (states.get(['receipt', 1]) as { card: unknown }).card }] }],
    });
    const paid = { aggregate: ['receipt', 1] as ['receipt', number], patch: [{ op: 'add' as const, path: '/card', value: '4111' }], encrypt: { key: ['user', 'alice'] as ['user', string] } };
    await deciderSpec(readCard).given([paid]).when(null).then([{ aggregate: ['receipt', 2], reason: 'copied', patch: [{ op: 'add', path: '/card', value: '4111' }] }]);
  });

  it('lets a bug in the decider through as the command service reports it, not as a failed expectation', async () => {
    const broken = decider<null>({ name: 'broken', aggregates: () => [book], decide: () => { throw new TypeError('oops'); } });
    expect(await rejection(deciderSpec(broken).when(null).then([]))).toBeInstanceOf(CommandError);
    const invalid = decider<null>({ name: 'invalid', aggregates: () => [book], decide: () => [{ aggregate: book, reason: 'r', patch: [] }] });
    const error = await rejection(deciderSpec(invalid).when(null).then([]));
    expect(error).toBeInstanceOf(InvalidEventError);
    expect((error as Error).message).toBe('decider "invalid": intents[0].patch: expected a non-empty array of operations, got an empty array');
  });

  it('passes with then([]) when the decider decides nothing', async () => {
    await deciderSpec(decider<null>({ name: 'idle', aggregates: () => [book], decide: () => [] })).when(null).then([]);
  });

  it('gives the decider the clock of the options and the actor of when', async () => {
    const seen: DecideContext[] = [];
    const now = new Date('2025-06-01T00:00:00.000Z');
    const spy = decider<null>({ name: 'spy', aggregates: () => [book], decide: (_, __, context) => { seen.push(context); return []; } });
    await deciderSpec(spy, { clock: () => now }).when(null, { actor: ['user', 'bob'] }).then([]);
    expect(seen[0]).toMatchObject({ actor: ['user', 'bob'], now, attempt: 1 });
  });

  it('keeps each step: a spec with a history can be finished several ways', async () => {
    const base = deciderSpec(reserve).given(oneCopy);
    await base.when({ isbn: 'N', user: 'alice' }).then(reserved(0));
    await base.when({ isbn: 'N', user: 'bob' }).then(reserved(0, 'bob'));
    await base.given([{ aggregate: book, patch: [{ op: 'replace', path: '/copies', value: 0 }] }]).when({ isbn: 'N', user: 'bob' }).thenRejected('no-copies');
  });

  it('rejects an await of when(...) itself, saying how to finish the spec, instead of hanging', async () => {
    const error = await rejection((async () => { await (deciderSpec(reserve).when({ isbn: 'N', user: 'a' }) as unknown as Promise<void>); })());
    expect(error).toBeInstanceOf(InvalidArgumentError);
    expect((error as Error).message).toMatch(/finish \.when\(command\) with \.then\(intents\) or \.thenRejected\(reason\)/);
  });

  it('throws InvalidArgumentError for a bad decider, history or expectation', async () => {
    expect(() => deciderSpec({} as never)).toThrow(/^decider\.name: expected a non-empty string/);
    expect(() => deciderSpec(reserve).given('x' as never)).toThrow(/^given\(events\): expected an array of events, got "x"/);
    expect(() => deciderSpec(reserve).meanwhile(3 as never)).toThrow(/^meanwhile\(events\): expected an event or an array of events, got 3/);
    expect(() => deciderSpec(reserve).when({ isbn: 'N', user: 'a' }, 'x' as never)).toThrow(InvalidArgumentError);
    await expect(deciderSpec(reserve).when({ isbn: 'N', user: 'a' }).then({} as never)).rejects.toThrow(/^then\(intents\): expected an array of intents/);
    await expect(deciderSpec(reserve).when({ isbn: 'N', user: 'a' }).thenRejected('')).rejects.toThrow(/^thenRejected\(reason\): expected a non-empty string/);
  });

  it('removes the store of every spec it ran', async () => {
    const before = testDirs();
    await deciderSpec(reserve).given(oneCopy).when({ isbn: 'N', user: 'alice' }).then(reserved(0));
    await rejection(deciderSpec(reserve).given(oneCopy).when({ isbn: 'N', user: 'alice' }).thenRejected('no-copies'));
    expect(testDirs()).toEqual(before);
  });

  it('fails with its message under node --test too: no particular runner needed', async () => {
    const file = fileURLToPath(new URL('./support/testing-kit-node.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=tap', file], { cwd: fileURLToPath(new URL('..', import.meta.url)) });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, output).toBe(1);
    expect(output).toContain('ok 1 - a reservation takes the last copy');
    expect(output).toContain('not ok 2 - a reservation of the last copy is refused (wrongly expected)');
    expect(output).toContain('deciderSpec("reserve") when {"isbn":"N","user":"alice"}: expected rejected "no-copies", got intents');
    expect(output).toMatch(/-\s+rejected: 'no-copies'/);
    expect(output).toContain("name: 'AssertionError'");
    expect(output).toMatch(/# pass 1\n# fail 1/);
  });
});

describe('openTestLog', () => {
  it('opens a store in a temporary directory of its own, which close() removes', async () => {
    const before = testDirs();
    const log = await openTestLog();
    const created = testDirs().filter((name) => !before.includes(name));
    expect(created).toHaveLength(1);
    expect(await log.append([{ source: 't', action: { reason: 'r', actor: ['user', 'a'], aggregate: book, patch: [{ op: 'add', path: '/x', value: 1 }] } }], { base: 0 })).toMatchObject({ status: 'ok' });
    expect((await log.stats()).events).toBe(1);
    await log.close();
    expect(testDirs()).toEqual(before);
  });

  it('encrypts without a masterKey given (a random one), and passes other options to openLog', async () => {
    const log = await openTestLog({ clock: () => new Date('2020-01-01T00:00:00.000Z') });
    try {
      const result = await log.append([{ source: 't', action: { reason: 'r', actor: ['user', 'a'], aggregate: ['receipt', 1], patch: [{ op: 'add', path: '/card', value: '4111' }] }, encrypt: { key: ['user', 'a'] } }], { base: 0 });
      expect(result).toMatchObject({ status: 'ok', events: [{ timestamp: new Date('2020-01-01T00:00:00.000Z') }] });
      expect((await log.state(['receipt', 1])).state).toEqual({ card: '4111' });
      expect(await log.keys.get(['user', 'a'])).toMatchObject({ key: ['user', 'a'] });
    } finally {
      await log.close();
    }
  });

  it('serves a command service, as a log from openLog does', async () => {
    const log = await openTestLog();
    try {
      const commands = createCommandService(log, { deciders: [reserve] });
      await log.append([{ source: 't', action: { reason: 'r', actor: ['user', 'a'], aggregate: book, patch: oneCopy[0]?.patch ?? [] } }], { base: 0 });
      expect(await commands.execute('reserve', { isbn: 'N', user: 'alice' }, { actor: ['user', 'alice'], source: 't' })).toMatchObject({ status: 'ok' });
    } finally {
      await log.close();
    }
  });

  it('runs on the engine given instead, leaving no directory', async () => {
    const before = testDirs();
    const engine = memoryEngine();
    const log = await openTestLog({ engine });
    await log.append([{ source: 't', action: { reason: 'r', actor: ['user', 'a'], aggregate: book, patch: [{ op: 'add', path: '/x', value: 1 }] } }], { base: 0 });
    expect(testDirs()).toEqual(before);
    await log.close();
    const again = await openLog({ engine });
    expect(await again.head()).toBe(1);
    await again.close();
  });

  it('throws InvalidArgumentError for a path, or options openLog refuses', async () => {
    await expect(openTestLog({ path: '/tmp/x' } as never)).rejects.toThrow(/^options\.path: expected none/);
    await expect(openTestLog({ maxEventBytes: -1 })).rejects.toThrow(InvalidArgumentError);
    await expect(openTestLog(3 as never)).rejects.toThrow(InvalidArgumentError);
  });

  it('shows only the members of Log on the log it returns', async () => {
    const log = await openTestLog();
    try {
      expect(Object.keys(log)).toEqual([]);
      expect(Object.getOwnPropertyNames(Object.getPrototypeOf(log)).sort()).toEqual(
        ['append', 'close', 'compact', 'conflicts', 'constructor', 'get', 'head', 'keys', 'projection', 'read', 'state', 'stats', 'verify'].sort(),
      );
    } finally {
      await log.close();
    }
  });
});

describe('the coherence/testing entry', () => {
  it('exports deciderSpec, processSpec and openTestLog by name, and nothing else', () => {
    expect(Object.keys(testing).sort()).toEqual(['deciderSpec', 'openTestLog', 'processSpec']);
  });
});
