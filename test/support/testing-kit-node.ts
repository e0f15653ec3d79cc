/**
 * Decider specs under node's own test runner, for test/testing-kit.test.ts: one that holds and
 * one that fails, to show coherence/testing needs no particular runner.
 *
 *   node --import tsx --test test/support/testing-kit-node.ts
 */
import { test } from 'node:test';
import { deciderSpec } from '../../src/testing/index.ts';
import { reserve } from './deciders.ts';

const history = [{ aggregate: ['book', 'N'] as ['book', string], patch: [{ op: 'add' as const, path: '/copies', value: 1 }, { op: 'add' as const, path: '/holds', value: {} }] }];

test('a reservation takes the last copy', async () => {
  await deciderSpec(reserve).given(history).when({ isbn: 'N', user: 'alice' }).then([
    { aggregate: ['book', 'N'], reason: 'reserved', patch: [{ op: 'replace', path: '/copies', value: 0 }, { op: 'add', path: '/holds/alice', value: true }] },
  ]);
});

test('a reservation of the last copy is refused (wrongly expected)', async () => {
  await deciderSpec(reserve).given(history).when({ isbn: 'N', user: 'alice' }).thenRejected('no-copies');
});
