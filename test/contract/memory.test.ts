import { describeEngine } from './describe-engine.ts';
import { memory } from './engines.ts';

describeEngine(memory);
