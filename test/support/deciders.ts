/**
 * A small library's deciders for the testing-kit tests, and for the spec file they run under
 * `node --test` (test/support/testing-kit-node.ts).
 */
import { decider, RejectedError, type Identity, type Intent } from '../../src/index.ts';

export interface Book { copies?: number; holds?: Record<string, true> }

/** Reserves a copy of ['book', isbn] for `user`: 'no-copies' when none is left, 'already-held' for a second hold. */
export const reserve = decider<{ isbn: string; user: string }>({
  name: 'reserve',
  aggregates: ({ isbn }) => [['book', isbn]],
  decide({ isbn, user }, states): Intent[] {
    const book: Identity = ['book', isbn];
    const { copies = 0, holds = {} } = states.get(book) as Book;
    if (holds[user] === true) throw new RejectedError('already-held', { user });
    if (copies === 0) throw new RejectedError('no-copies', { isbn });
    return [{
      aggregate: book,
      reason: 'reserved',
      patch: [{ op: 'replace', path: '/copies', value: copies - 1 }, { op: 'add', path: `/holds/${user}`, value: true }],
    }];
  },
});
