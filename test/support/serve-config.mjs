/**
 * A config module for `coherence serve` in test/http-cli.test.ts, loaded as a user's would be:
 * plain ESM importing the built package by its name. The store is $STORE; the actor is the
 * `x-user` header (a test authenticator); `slow` answers after 500 ms, to be in flight at SIGTERM.
 */
import { openLog } from 'coherence';
import { role } from 'coherence/http';

export default async () => ({
  log: await openLog({ path: process.env.STORE }),
  port: 1, // overridden by --port
  authenticate: ({ headers }) => (headers['x-user'] === undefined ? undefined : { id: ['user', headers['x-user']], roles: ['reader'] }),
  facts: {
    head: { query: (_args, { log }) => log.head().then((head) => ({ head })), allow: role('reader') },
    slow: { query: () => new Promise((resolve) => setTimeout(() => resolve({ slow: true }), 500)), allow: role('reader') },
  },
});
