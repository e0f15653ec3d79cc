/**
 * Deciders shared by the command tests and their child processes (test/support/*-child.ts), so
 * that every process runs the same definitions.
 */
import { decider, RejectedError, type Identity } from '../../src/index.ts';

/** Adds 1 to `/n` of ['counter', id]. */
export const increment = decider<{ id: string | number }>({
  name: 'increment',
  aggregates: ({ id }) => [['counter', id]],
  decide({ id }, states) {
    const { n = 0 } = states.get(['counter', id]) as { n?: number };
    return [{ aggregate: ['counter', id], reason: 'increment', patch: [{ op: 'add', path: '/n', value: n + 1 }] }];
  },
});

/** Takes one of the copies of ['book', isbn] (`/copies`), refusing with 'no-copies' when none is left. */
export const borrow = decider<{ isbn: string }>({
  name: 'borrow',
  aggregates: ({ isbn }) => [['book', isbn]],
  decide({ isbn }, states) {
    const { copies = 0 } = states.get(['book', isbn]) as { copies?: number };
    if (copies === 0) throw new RejectedError('no-copies', { isbn });
    return [{ aggregate: ['book', isbn], reason: 'borrowed', patch: [{ op: 'replace', path: '/copies', value: copies - 1 }] }];
  },
});

export const deciders = [increment, borrow];

export const actor: Identity = ['user', 'alice'];
