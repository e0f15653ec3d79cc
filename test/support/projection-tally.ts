/**
 * The definition shared by the crash test and its child: a projection that counts the actions it
 * applies to each aggregate, sums their seqs and keeps the last e-mail it saw. Any event applied
 * twice or skipped shows in `actions` and `seqSum`.
 */
import type { ProjectionOptions } from '../../src/index.ts';

export interface Tally {
  actions: number;
  seqSum: number;
  last: number;
  email?: unknown;
}

export const tallyOptions: ProjectionOptions<Tally> = {
  init: () => ({ actions: 0, seqSum: 0, last: 0 }),
  apply: (state, event) => {
    state.actions++;
    state.seqSum += event.seq;
    state.last = event.seq;
    for (const op of event.action.patch) if ((op.op === 'add' || op.op === 'replace') && op.path === '/email') state.email = op.value;
    return state;
  },
};
