/**
 * What the examples print, checked the same way on every engine they run on
 * (test/examples.test.ts on LMDB, test/postgres/examples.test.ts on PostgreSQL).
 */
import { expect } from 'vitest';

export const exampleOutput = {
  bookstore(stdout: string): void {
    expect(stdout).toMatch(/Bob: conflict: .*#2 by alice came first/);
    expect(stdout).toContain('Bob: ok, stock 2 -> 4');
    expect(stdout).toContain('verify: ok, 3 events');
  },
  receipts(stdout: string): void {
    expect(stdout).toContain('receipt 1: alice, 12.5, card 4111 1111 1111 1111');
    expect(stdout).toContain('receipt 1: alice, 12.5, card [erased]');
    expect(stdout).toContain('receipt 3: alice, 7.25, card [erased]');
    expect(stdout.split('The receipts projection now:')[1]).toContain('receipt 2: bob, 40, card 5500 0000 0000 0004');
    expect(stdout).toMatch(/verify: ok, 4 events/);
    expect(stdout).toContain('compact: done');
  },
  'shared-document'(stdout: string): void {
    expect(stdout).toContain('a plain append would conflict with #2');
    expect(stdout).toContain("With merge: 'disjoint-paths' it goes through (#3)");
    expect(stdout).toContain('Ben saves: conflict with #4 by Ann');
    expect(stdout).toContain('Ben saves: conflict with #5 by Cy');
    expect(stdout).toContain('Ben saves (#6) after 3 attempts, resolving #4, #5.');
    expect(stdout).toContain('Intro: "Hello! Welcome to the bookshop. Ask us anything."');
  },
};
