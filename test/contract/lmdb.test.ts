import { describeEngine } from './describe-engine.ts';
import { lmdb } from './engines.ts';

describeEngine(lmdb);
