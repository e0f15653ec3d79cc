/**
 * coherence/testing: Given/When/Then for deciders and process managers on a real, throw-away store, and the store
 * itself for any other test. Failures are node's `AssertionError`, so any test runner reports them.
 */
export { deciderSpec } from './decider-spec.ts';
export type { DeciderExpectation, DeciderSpec, GivenEvent, WhenOptions } from './decider-spec.ts';
export { processSpec } from './process-spec.ts';
export type { ProcessExpectation, ProcessSpec } from './process-spec.ts';
export { openTestLog } from './test-log.ts';
export type { TestLogOptions } from './test-log.ts';
