/**
 * coherence: an embedded, conflict-aware patch log with encrypted payloads and crypto-shredding.
 * Everything public is exported here; nothing else is part of the API.
 */
export { openLog } from './api/open-log.ts';
export type { Log, OpenLogOptions } from './api/log.ts';
export type { LogStats } from './api/stats.ts';
export { memoryEngine } from './storage/memory/memory-engine.ts';
export type { Engine } from './storage/registry.ts';
export type { EngineKind } from './storage/engine.ts';
export type { Duration, KeyInfo, Keys } from './keys/keys.ts';
export type { Envelope } from './crypto/envelope.ts';
export type { CatchUpResult, Projection, ProjectionOptions } from './projections/projection.ts';
export { isActionEvent } from './model/types.ts';
export type {
  Action,
  ActionEvent,
  AppendOptions,
  AppendOutcome,
  AppendResult,
  Conflict,
  Effect,
  EffectEvent,
  Id,
  Identity,
  LogEvent,
  MergeMode,
  NewAction,
  NewEffect,
  NewEvent,
  Operation,
  ReadOptions,
  VerifyResult,
} from './model/types.ts';
export {
  CoherenceError,
  CorruptLogError,
  InvalidArgumentError,
  InvalidEventError,
  KeyDestroyedError,
  LogClosedError,
  MissingMasterKeyError,
  ProjectionError,
  StorageError,
  StoreInUseError,
  UnsupportedFormatError,
  WrongMasterKeyError,
} from './errors.ts';
export type { CoherenceErrorCode } from './errors.ts';
