/**
 * A shared document: editors save changes based on the version they opened.
 *
 *   - Two editors change different parts from the same version: `merge: 'disjoint-paths'` lets
 *     the second one in without asking anybody, since their patches touch no common path.
 *   - Two editors change the same paragraph: the second gets the conflict and resolves it with a
 *     loop a user would copy: look at the conflicts, redo the change on the document as it is
 *     now, append naming the conflicts as resolved, and repeat until the append goes through.
 *
 *   npx tsx examples/shared-document.ts             (uses ./data/shared-document, recreated)
 *   npx tsx examples/shared-document.ts /some/dir
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { openLog, type Identity, type LogEvent, type NewAction, type Operation } from 'coherence';

const path = process.argv[2] ?? './data/shared-document';
// Start from a fresh store, but never wipe a directory that holds something else.
if (existsSync(path) && readdirSync(path).length > 0 && !existsSync(join(path, 'data.mdb'))) {
  throw new Error(`${path} is not empty and is not a coherence store; give a new or empty directory`);
}
rmSync(path, { recursive: true, force: true });
const log = await openLog({ path });

interface Handbook { intro: string; hours: string; returns: string }
const handbook: Identity = ['doc', 'handbook'];
const edit = (editor: string, reason: string, patch: Operation[]): NewAction => ({
  source: 'editor', action: { reason, actor: ['editor', editor], aggregate: handbook, patch },
});
const open = async () => {
  const { state, head } = await log.state(handbook);
  return { doc: state as Handbook, base: head };
};
const describe = (event: LogEvent) => ('action' in event
  ? `#${event.seq} by ${event.action.actor[1]} ("${event.action.reason}")`
  : `#${event.seq}, an effect ("${event.effect.reason}")`);

/**
 * Saves a change made on the version `opened`, resolving conflicts by hand: `change` computes
 * the patch from a document, so it can be redone on the document as it is now. `conflicts`
 * is empty on the first call, and lists what stood in the way on later calls.
 */
async function save(editor: string, reason: string, opened: { doc: Handbook; base: number },
  change: (doc: Handbook, conflicts: LogEvent[]) => Promise<Operation[]> | Operation[]): Promise<LogEvent> {
  const { base } = opened;
  const resolved = new Set<number>();
  let patch = await change(opened.doc, []);
  for (let attempt = 1; ; attempt++) {
    const result = await log.append([edit(editor, reason, patch)], { base, resolved: [...resolved], merge: 'disjoint-paths' });
    if (result.status === 'ok') {
      const [event] = result.events as [LogEvent];
      console.log(`${editor} saves (#${event.seq})${attempt > 1 ? ` after ${attempt} attempts, resolving ${[...resolved].map((s) => `#${s}`).join(', ')}` : ''}.`);
      return event;
    }
    if (result.status === 'invalid-base') throw new Error(`base ${base} is beyond the head ${result.head}`);
    const theirs = result.conflicts.map((c) => c.theirs);
    console.log(`${editor} saves: conflict with ${theirs.map(describe).join(', ')}.`);
    // Keep the original base and name what has been looked at: a change that lands while we
    // redo ours is not in `resolved`, so the next attempt conflicts with it and we go round again.
    for (const event of theirs) resolved.add(event.seq);
    patch = await change((await open()).doc, theirs);
  }
}

try {
  await log.append([edit('Ann', 'first draft', [
    { op: 'add', path: '/intro', value: 'Welcome to the shop.' },
    { op: 'add', path: '/hours', value: 'Open 9 to 5.' },
    { op: 'add', path: '/returns', value: 'Returns within 14 days.' },
  ])], { base: 0 });

  console.log('-- Different parts, same version --');
  const first = await open();
  console.log(`Ann and Ben open the handbook at #${first.base}.`);
  const ann = await log.append([edit('Ann', 'longer hours', [{ op: 'replace', path: '/hours', value: 'Open 9 to 6.' }])], { base: first.base });
  if (ann.status !== 'ok') throw new Error(`expected Ann's save to go through, got ${ann.status}`);
  console.log(`Ann changes /hours (#${ann.events[0]?.seq}).`);

  const bens = [edit('Ben', 'longer returns', [{ op: 'replace', path: '/returns', value: 'Returns within 30 days.' }])];
  // Without a merge mode any later action on the aggregate is a conflict; a dry run shows it.
  const strict = await log.append(bens, { base: first.base, dryRun: true });
  if (strict.status !== 'conflict') throw new Error('expected a plain append to conflict');
  console.log(`Ben changes /returns: a plain append would conflict with ${strict.conflicts.map((c) => describe(c.theirs)).join(', ')} (dry run).`);
  const ben = await log.append(bens, { base: first.base, merge: 'disjoint-paths' });
  if (ben.status !== 'ok') throw new Error(`expected the disjoint-path merge to go through, got ${ben.status}`);
  console.log(`With merge: 'disjoint-paths' it goes through (#${ben.events[0]?.seq}): no path in common with Ann's change.`);
  const merged = (await open()).doc;
  if (merged.hours !== 'Open 9 to 6.' || merged.returns !== 'Returns within 30 days.') throw new Error('expected both changes in the handbook');
  console.log(`Handbook: "${merged.hours}" / "${merged.returns}"`);

  console.log('\n-- The same paragraph --');
  const second = await open();
  console.log(`Ann and Ben open the handbook at #${second.base}; both edit /intro.`);
  // Each change is a function of the text it applies to: that is what makes it easy to redo.
  await save('Ann', 'name the shop', second, (doc) =>
    [{ op: 'replace', path: '/intro', value: doc.intro.replace('the shop', 'the bookshop') }]);

  let cyHasSaved = false;
  await save('Ben', 'invite questions', second, async (doc, conflicts) => {
    if (conflicts.length > 0 && !cyHasSaved) {
      // While Ben redoes his change, Cy saves one to the same paragraph: Ben's next attempt
      // conflicts again, and the loop goes round once more.
      cyHasSaved = true;
      console.log('While Ben redoes his change, Cy edits /intro too:');
      await save('Cy', 'greet warmly', await open(), (now) => [{ op: 'replace', path: '/intro', value: `Hello! ${now.intro}` }]);
    }
    return [{ op: 'replace', path: '/intro', value: `${doc.intro} Ask us anything.` }];
  });

  const final = (await open()).doc;
  console.log(`Intro: "${final.intro}"`);
  if (final.intro !== 'Hello! Welcome to the bookshop. Ask us anything.') throw new Error('expected every editor\'s change in the intro');
} finally {
  await log.close();
}
