/**
 * The explorer page in a real browser: Debian's Chromium, headless, driven by playwright-core
 * (no browser is ever downloaded). It opens the page as the librarian, filters the log by
 * aggregate, opens an aggregate's history with its states, sees a conflict its author resolved
 * and a shredded key with its erasure, sees an append arrive live, and leaves a screenshot in
 * test-artifacts/. Without /usr/bin/chromium the tests are skipped, saying so in their names.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memoryEngine, openLog } from '../src/index.ts';
import { startApp, type App } from './support/http-fixtures.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/', import.meta.url));
const missing = existsSync(CHROMIUM) ? '' : ` (skipped: ${CHROMIUM} is missing; apt-get install -y chromium)`;

/** Whether this log records the seqs an append resolved on the action (ActionEvent.resolved). */
async function recordsResolved(): Promise<boolean> {
  const log = await openLog({ engine: memoryEngine() });
  try {
    const action = (value: number) => ({ source: 't', action: { reason: 'r', actor: ['user', 'u'] as const, aggregate: ['a', 1] as const, patch: [{ op: 'add' as const, path: '/v', value }] } });
    await log.append([action(1)], { base: 0 });
    await log.append([action(2)], { base: 0, resolved: [1] });
    return 'resolved' in ((await log.get(2)) ?? {});
  } finally {
    await log.close();
  }
}
const resolvedNote = (await recordsResolved()) ? '' : ' (skipped: this log does not record ActionEvent.resolved yet)';

let browser: Browser | undefined;
beforeAll(async () => {
  if (missing === '') browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
}, 60_000);
afterAll(async () => { await browser?.close(); });

/** The application with a history worth looking at; the page opened on it as the librarian. */
async function explore(): Promise<{ app: App; page: Page; seqs: Record<string, number> }> {
  const app = await startApp();
  const seq = async (as: 'alice' | 'bob' | 'lib', name: string, body: unknown, headers: Record<string, string> = {}) => {
    const response = await app.call('POST', `/commands/${name}`, { as, body, headers });
    expect(response.status, JSON.stringify(response.body)).toBe(200);
    return response.body.events[0].seq as number;
  };
  const seqs: Record<string, number> = {};
  seqs.book = await seq('lib', 'register', { isbn: 'N', title: 'Neuromancer', copies: 2 });
  seqs.draft = await seq('alice', 'edit', { doc: 'd', text: 'draft', secret: 'card 4111 1111' });
  seqs.other = await seq('bob', 'edit', { doc: 'other', text: 'bob\'s' });
  seqs.theirs = await seq('lib', 'edit', { doc: 'd', text: 'edited by the librarian', path: '/note' });
  // Alice had read the document at her draft, met the librarian's edit (a 409), and resolved it.
  const refused = await app.call('POST', '/commands/edit', { as: 'alice', body: { doc: 'd', text: 'final' }, headers: { 'if-match': `"${seqs.draft}"` } });
  expect(refused.status).toBe(409);
  const resolved = await app.log.append([{ source: 'web', action: { reason: 'edited', actor: ['user', 'alice'], aggregate: ['doc', 'd'], patch: [{ op: 'replace', path: '/text', value: 'final' }] } }], { base: seqs.draft, resolved: [seqs.theirs] });
  expect(resolved.status).toBe('ok');
  seqs.resolved = resolved.status === 'ok' ? (resolved.events[0]?.seq as number) : 0;
  seqs.shred = (await app.log.keys.shred(['user', 'alice'])).seq;
  await app.settle();
  const context = await (browser as Browser).newContext({ extraHTTPHeaders: { authorization: `Bearer ${app.tokens.lib}` }, viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => { if (message.type() === 'error') errors.push(message.text()); });
  await page.goto(app.url);
  await page.locator(`#log-rows tr[data-seq="${seqs.shred}"]`).waitFor();
  expect(errors).toEqual([]);
  return { app, page, seqs };
}

describe(`the explorer in Chromium${missing}`, () => {
  it.skipIf(missing !== '')('shows the log newest first, filters it by aggregate, and opens an aggregate\'s history with each state', async () => {
    const { page, seqs } = await explore();
    const all = await page.locator('#log-rows tr').evaluateAll((rows) => rows.map((row) => Number(row.getAttribute('data-seq'))));
    expect(all).toEqual([...all].sort((a, b) => b - a));
    expect(all[0]).toBe(seqs.shred);
    await page.fill('#filter-aggregate', 'doc:d');
    await page.click('#filters button');
    await page.locator(`#log-rows tr[data-seq="${seqs.other}"]`).waitFor({ state: 'detached' });
    const filtered = await page.locator('#log-rows tr').evaluateAll((rows) => rows.map((row) => Number(row.getAttribute('data-seq'))));
    expect(filtered).toEqual([seqs.shred, seqs.resolved, seqs.theirs, seqs.draft]);
    await page.locator(`#log-rows tr[data-seq="${seqs.draft}"] button`).click();
    const history = page.locator('#aggregate-history');
    await history.locator(`tr[data-seq="${seqs.resolved}"]`).waitFor();
    const text = await history.innerText();
    expect(text).toContain('[erased]');
    expect(text).not.toContain('4111');
    expect(text).toContain('erasure: key user:alice');
    expect(await history.locator(`tr[data-seq="${seqs.draft}"] td`).nth(2).innerText()).toContain('encrypted /secret');
    expect(await history.locator(`tr[data-seq="${seqs.resolved}"] td`).nth(3).innerText()).toContain('"text": "final"');
    // The librarian may read the docs view: its state shows there (redacted too, now the key is gone).
    expect(await history.locator('[data-view="docs"]').innerText()).toContain('"note": "edited by the librarian"');
  });

  it.skipIf(missing !== '')('shows the shredded key as destroyed with its erasure, and the projections with their lag', async () => {
    const { page, seqs } = await explore();
    const key = page.locator('#keys-rows tr[data-key="user:alice"]');
    await key.waitFor();
    expect(await key.getAttribute('data-destroyed')).toBe('yes');
    expect(await key.innerText()).toContain(`#${seqs.shred} shredded`);
    expect(await key.innerText()).toContain('doc:d');
    await page.locator('#consumers tr[data-projection="docs"]').waitFor();
    expect(await page.locator('#consumers tr[data-projection="docs"]').innerText()).toMatch(new RegExp(`#${seqs.shred}\\s+0`));
  });

  it.skipIf(missing !== '' || resolvedNote !== '')(`sees the conflict an action resolved${resolvedNote}`, async () => {
    const { page, seqs } = await explore();
    const badge = page.locator(`#log-rows tr[data-seq="${seqs.resolved}"] [data-resolved="${seqs.theirs}"]`);
    await badge.waitFor();
    expect(await badge.innerText()).toBe(`resolved conflict with #${seqs.theirs}`);
  });

  it.skipIf(missing !== '')('adds what is appended while it is open, live, and leaves a screenshot', async () => {
    const { app, page, seqs } = await explore();
    await page.locator('#live-status', { hasText: /^live$/ }).waitFor();
    const written = await app.call('POST', '/commands/edit', { as: 'bob', body: { doc: 'live', text: 'typed just now' } });
    const seq = written.body.events[0].seq as number;
    await page.locator(`#log-rows tr[data-seq="${seq}"]`).waitFor({ timeout: 10_000 });
    expect(await page.locator('#log-rows tr').first().getAttribute('data-seq')).toBe(String(seq));
    await page.fill('#aggregate-input', 'doc:d');
    await page.click('#aggregate-form button');
    await page.locator(`#aggregate-history tr[data-seq="${seqs.shred}"]`).waitFor();
    mkdirSync(ARTIFACTS, { recursive: true });
    const path = `${ARTIFACTS}explorer.png`;
    await page.screenshot({ path, fullPage: true });
    expect(existsSync(path)).toBe(true);
    console.log(`explorer screenshot: ${path}`);
  });
});
