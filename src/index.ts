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
export type { KindSchema } from './model/schemas.ts';
export type { Duration, KeyInfo, Keys } from './keys/keys.ts';
export type { Envelope } from './crypto/envelope.ts';
export type { CatchUpResult, Projection, ProjectionOptions } from './projections/projection.ts';
export { decider } from './commands/decider.ts';
export type { DecideContext, Decider, Intent, States } from './commands/decider.ts';
export { createCommandService } from './commands/command-service.ts';
export type { CommandResult, CommandService, CommandServiceOptions, ExecuteOptions, RetryOptions } from './commands/command-service.ts';
export { createProcessManager } from './commands/process-manager.ts';
export type { ProcessCatchUpResult, ProcessCommand, ProcessManager, ProcessManagerOptions, Reaction, Rejection } from './commands/process-manager.ts';
export { createNotifier } from './commands/notifier.ts';
export type { DeadLetter, DeliveryContext, Notifier, NotifierCatchUpResult, NotifierOptions } from './commands/notifier.ts';
export { isActionEvent } from './model/validate.ts';
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
  CommandError,
  CorruptLogError,
  InvalidArgumentError,
  InvalidEventError,
  KeyDestroyedError,
  LogClosedError,
  MissingMasterKeyError,
  ProcessError,
  ProjectionError,
  RejectedError,
  StorageError,
  StoreInUseError,
  UnsupportedFormatError,
  UpcastError,
  WrongMasterKeyError,
} from './errors.ts';
export type { CoherenceErrorCode } from './errors.ts';
