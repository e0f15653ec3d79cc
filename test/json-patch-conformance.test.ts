/**
 * RFC 6902 conformance, operation by operation, with the RFC's own examples (Appendix A): each
 * patch is appended to an aggregate whose state is the example's document, and both `log.state()`
 * and a projection must give the document the RFC expects. A patch the RFC calls an error is
 * still stored (it is valid input) and leaves the state as it was (§5).
 */
import { describe, expect, it } from 'vitest';
import { InvalidEventError, type ActionEvent, type Identity, type Log, type Operation } from '../src/index.ts';
import { appendOk, scanFiles } from './support/crypto-fixtures.ts';
import { action, allEvents, tempLog } from './support/temp-log.ts';

const clock = () => new Date('2024-05-01T12:00:00.000Z');
const doc: Identity = ['doc', 1];

/** Lets tests hand the log what its types would not allow. */
const loose = (value: unknown): Operation[] => value as Operation[];

/** The states of `doc` after `patch` is appended to a log where it is `document`. */
async function outcome(document: unknown, patch: unknown[]): Promise<{ state: unknown; projected: unknown }> {
  const { log } = await tempLog({ clock });
  await appendOk(log, [action(doc, [{ op: 'add', path: '', value: document }])]);
  await appendOk(log, [action(doc, loose(patch))]);
  const projection = log.projection('documents');
  await projection.catchUp();
  return { state: (await log.state(doc)).state, projected: await projection.get(doc) };
}

async function expectResult(document: unknown, patch: unknown[], expected: unknown): Promise<void> {
  expect(await outcome(document, patch)).toEqual({ state: expected, projected: expected });
}

/**
 * A patch of tests leaves the document as it was whether they hold or not, so an `add` after
 * them shows they held: the RFC's result is `document`, plus that marker.
 */
async function expectTestsHold(document: Record<string, unknown>, tests: unknown[]): Promise<void> {
  await expectResult(document, [...tests, { op: 'add', path: '/held', value: true }], { ...document, held: true });
}

/** The RFC calls the patch an error: the document stays as it was. */
async function expectFailure(document: unknown, patch: unknown[]): Promise<void> {
  await expectResult(document, patch, document);
}

describe('add', () => {
  it('adds an object member (A.1)', async () => {
    await expectResult({ foo: 'bar' }, [{ op: 'add', path: '/baz', value: 'qux' }], { baz: 'qux', foo: 'bar' });
  });

  it('inserts an array element before the one at the index (A.2)', async () => {
    await expectResult({ foo: ['bar', 'baz'] }, [{ op: 'add', path: '/foo/1', value: 'qux' }], { foo: ['bar', 'qux', 'baz'] });
  });

  it('adds a nested member object (A.10)', async () => {
    await expectResult({ foo: 'bar' }, [{ op: 'add', path: '/child', value: { grandchild: {} } }], { foo: 'bar', child: { grandchild: {} } });
  });

  it('ignores an unrecognized member (A.11)', async () => {
    await expectResult({ foo: 'bar' }, [{ op: 'add', path: '/baz', value: 'qux', xyz: 123 }], { foo: 'bar', baz: 'qux' });
  });

  it('ignores a "from", which add does not define', async () => {
    await expectResult({ foo: 'bar' }, [{ op: 'add', path: '/baz', value: 'qux', from: '/foo' }], { foo: 'bar', baz: 'qux' });
  });

  it('fails on a nonexistent target (A.12)', async () => {
    await expectFailure({ foo: 'bar' }, [{ op: 'add', path: '/baz/bat', value: 'qux' }]);
  });

  it('appends an array as one element at "-" (A.16)', async () => {
    await expectResult({ foo: ['bar'] }, [{ op: 'add', path: '/foo/-', value: ['abc', 'def'] }], { foo: ['bar', ['abc', 'def']] });
  });
});

describe('remove', () => {
  it('removes an object member (A.3)', async () => {
    await expectResult({ baz: 'qux', foo: 'bar' }, [{ op: 'remove', path: '/baz' }], { foo: 'bar' });
  });

  it('removes an array element and shifts the rest (A.4)', async () => {
    await expectResult({ foo: ['bar', 'qux', 'baz'] }, [{ op: 'remove', path: '/foo/1' }], { foo: ['bar', 'baz'] });
  });

  it('ignores a "value", which remove does not define, without checking that it is JSON', async () => {
    await expectResult({ baz: 'qux', foo: 'bar' }, [{ op: 'remove', path: '/baz', value: () => 'not JSON', from: 7 }], { foo: 'bar' });
  });

  it('fails when the target does not exist', async () => {
    await expectFailure({ foo: 'bar' }, [{ op: 'remove', path: '/baz' }]);
  });

  it('fails for the ambiguous document of A.13, which JSON.parse turns into a remove of a missing member', async () => {
    // A caller hands the log objects, not JSON text: the duplicate "op" is settled by the parser
    // (the last wins), the "value" that remove does not define is ignored, and the patch fails as
    // the RFC expects.
    const patch = JSON.parse('[{ "op": "add", "path": "/baz", "value": "qux", "op": "remove" }]') as unknown[];
    expect(patch).toEqual([{ op: 'remove', path: '/baz', value: 'qux' }]);
    await expectFailure({ foo: 'bar' }, patch);
  });
});

describe('replace', () => {
  it('replaces a value (A.5)', async () => {
    await expectResult({ baz: 'qux', foo: 'bar' }, [{ op: 'replace', path: '/baz', value: 'boo' }], { baz: 'boo', foo: 'bar' });
  });

  it('ignores a "from", which replace does not define', async () => {
    await expectResult({ baz: 'qux', foo: 'bar' }, [{ op: 'replace', path: '/baz', value: 'boo', from: '/foo' }], { baz: 'boo', foo: 'bar' });
  });

  it('fails when the target does not exist', async () => {
    await expectFailure({ foo: 'bar' }, [{ op: 'replace', path: '/baz', value: 'boo' }]);
  });
});

describe('move', () => {
  it('moves a value (A.6)', async () => {
    await expectResult(
      { foo: { bar: 'baz', waldo: 'fred' }, qux: { corge: 'grault' } },
      [{ op: 'move', from: '/foo/waldo', path: '/qux/thud' }],
      { foo: { bar: 'baz' }, qux: { corge: 'grault', thud: 'fred' } },
    );
  });

  it('moves an array element (A.7)', async () => {
    await expectResult({ foo: ['all', 'grass', 'cows', 'eat'] }, [{ op: 'move', from: '/foo/1', path: '/foo/3' }], { foo: ['all', 'cows', 'eat', 'grass'] });
  });

  it('ignores a "value", which move does not define', async () => {
    await expectResult({ foo: { waldo: 'fred' } }, [{ op: 'move', from: '/foo/waldo', path: '/thud', value: 'ignored' }], { foo: {}, thud: 'fred' });
  });

  it('fails when the from location does not exist', async () => {
    await expectFailure({ foo: 'bar' }, [{ op: 'move', from: '/baz', path: '/qux' }]);
  });
});

describe('copy', () => {
  // Appendix A has no copy example; this is the operation of §4.5.
  it('copies the value at from to path (§4.5)', async () => {
    await expectResult({ a: { b: { d: [1, { x: 2 }] } } }, [{ op: 'copy', from: '/a/b/d', path: '/a/b/e' }], { a: { b: { d: [1, { x: 2 }], e: [1, { x: 2 }] } } });
  });

  it('ignores a "value", which copy does not define', async () => {
    await expectResult({ foo: 'bar' }, [{ op: 'copy', from: '/foo', path: '/baz', value: 'ignored' }], { foo: 'bar', baz: 'bar' });
  });

  it('fails when the from location does not exist', async () => {
    await expectFailure({ foo: 'bar' }, [{ op: 'copy', from: '/baz', path: '/qux' }]);
  });
});

describe('test', () => {
  it('passes when every value is equal, changing nothing (A.8)', async () => {
    await expectTestsHold({ baz: 'qux', foo: ['a', 2, 'c'] }, [{ op: 'test', path: '/baz', value: 'qux' }, { op: 'test', path: '/foo/1', value: 2 }]);
  });

  it('fails on a different value (A.9)', async () => {
    await expectFailure({ baz: 'qux' }, [{ op: 'test', path: '/baz', value: 'bar' }]);
  });

  it('decodes "~01" as "~1", not "/" (A.14)', async () => {
    await expectTestsHold({ '/': 9, '~1': 10 }, [{ op: 'test', path: '/~01', value: 10 }]);
  });

  it('tells a string from a number (A.15)', async () => {
    await expectFailure({ '/': 9, '~1': 10 }, [{ op: 'test', path: '/~01', value: '10' }]);
  });

  it('ignores an undefined member', async () => {
    await expectTestsHold({ foo: 1 }, [{ op: 'test', path: '/foo', value: 1, spurious: 1 }]);
  });

  it('undoes the operations before it when it fails: a patch applies as a unit (§5)', async () => {
    await expectFailure({ foo: 1 }, [{ op: 'add', path: '/bar', value: 2 }, { op: 'test', path: '/foo', value: 2 }]);
  });
});

describe('members an operation does not define', () => {
  const dropped = 'dropped-marker-5c1e';
  const kept = 'kept-marker-9b7a';

  /** Every way a reader can see the event at `seq`. */
  async function everyView(log: Log, seq: number): Promise<unknown[]> {
    const views: unknown[] = [await log.get(seq)];
    for (const raw of [false, true]) {
      for await (const event of log.read({ from: seq, raw })) views.push(event);
    }
    return views;
  }

  it('are stored nowhere: not in the append result, get, read, raw read nor the store files', async () => {
    const { log, path } = await tempLog({ clock });
    const result = await log.append([action(doc, loose([
      { op: 'add', path: '/note', value: kept, [dropped]: true },
      { op: 'remove', path: '/note', value: dropped, from: dropped },
      { op: 'add', path: '/kept', value: kept, note: { [dropped]: dropped } },
    ]))], { base: 0 });
    expect(result.status).toBe('ok');
    const stored: Operation[] = [
      { op: 'add', path: '/note', value: kept },
      { op: 'remove', path: '/note' },
      { op: 'add', path: '/kept', value: kept },
    ];
    const appended = result.status === 'ok' ? result.events : [];
    for (const view of [...appended, ...(await everyView(log, 1))]) {
      expect((view as ActionEvent).action.patch).toEqual(stored);
      expect(JSON.stringify(view)).not.toContain(dropped);
    }
    expect((await log.state(doc)).state).toEqual({ kept });
    // The chain is verified over the stored bytes: what was hashed is what was stored.
    expect(await log.verify()).toEqual({ ok: true, events: 1 });
    const containing = scanFiles(path);
    expect(containing(kept).length).toBeGreaterThan(0);
    expect(containing(dropped)).toEqual([]);
  });

  it('do not relax the checks on the members it does define', async () => {
    const { log } = await tempLog({ clock });
    const refused: [unknown, string][] = [
      [{ op: 'add', path: 'baz', value: 1, xyz: 1 }, 'path'],
      [{ op: 'add', path: '/baz', from: '/foo' }, 'value'],
      [{ op: 'add', path: '/baz', value: () => 1, from: '/foo' }, 'value'],
      [{ op: 'add', path: '/__proto__/polluted', value: true, xyz: 1 }, 'path'],
      [{ op: 'copy', path: '/baz', value: 1 }, 'from'],
      [{ op: 'move', path: '/baz', from: '/__proto__', value: 1 }, 'from'],
      [{ op: 'remove', path: '', value: 1 }, 'path'],
      [{ op: 'merge', path: '/baz', value: 1 }, 'op'],
    ];
    for (const [operation, member] of refused) {
      const error = await log.append([action(doc, loose([operation]))], { base: 0 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidEventError);
      expect(error).toMatchObject({ index: 0, path: `action.patch[0].${member}` });
    }
    expect(await allEvents(log)).toEqual([]);
  });
});

describe('beyond RFC 6902', () => {
  it('refuses an empty patch, which the RFC allows: an action must change something', async () => {
    const { log } = await tempLog({ clock });
    await expect(log.append([action(doc, [])], { base: 0 })).rejects.toMatchObject({ code: 'INVALID_EVENT', path: 'action.patch' });
    expect(await log.head()).toBe(0);
  });
});
