import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Identity } from '../../src/index.ts';
import { appendOk, asJson, jsonValue, newMasterKey, patchOf } from '../support/crypto-fixtures.ts';
import { action } from '../support/temp-log.ts';
import type { TestEngine } from './describe-engine.ts';

export function encryptionProperties(engine: TestEngine): void {
  describe('encrypted values in the store', () => {
    it('reads back every JSON value it encrypted, through append, get, read and state', async () => {
      const { log } = await engine.tempLog({ masterKey: newMasterKey() });
      let n = 0;
      await fc.assert(
        fc.asyncProperty(jsonValue, fc.constantFrom<Identity>(['user', 'alice'], ['user', 'bob'], ['user', 7]), async (value, key) => {
          const aggregate: Identity = ['customer', n++];
          const [stored] = await appendOk(log, [action(aggregate, [{ op: 'add', path: '/v', value }], { encrypt: { key } })]);
          expect(patchOf(stored)[0]?.value).toEqual(asJson(value));
          expect(patchOf(await log.get(stored?.seq as number))[0]?.value).toEqual(asJson(value));
          const read = [];
          for await (const event of log.read({ aggregates: [aggregate] })) read.push(event);
          expect(read.map((e) => patchOf(e)[0]?.value)).toEqual([asJson(value)]);
          expect((await log.state(aggregate)).state).toEqual({ v: asJson(value) });
        }),
        { numRuns: 150 },
      );
    });
  });
}
