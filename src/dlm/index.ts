/**
 * lvmfs lock manager (DLM with recovery domains). Semantics: docs/dlm.md; codes: docs/errors/dlm.md.
 *
 * Layers:
 *  - `LockManager` (lock-manager.ts): the pure in-memory state machine (one per broker).
 *  - `DlmClient` (client.ts): what lvmfs processes use; talks to the `lvmfs lockd` broker over a
 *    root-only Unix socket and starts it on demand.
 */
export { LOCK_MODES, isLockMode, modesCompatible, isDownConversion, type LockMode } from './modes.js'
export { LockManager, resourceKey, type EventSink, type ManagerOptions } from './lock-manager.js'
export type {
  ClientId, CollectResult, ConvertOptions, DlmEvent, DlmLimits, Grant, LockId, LockRequest, LockResult,
  RdId, ReassertRequest, ValidateResult,
} from './types.js'
export type { ManagerSnapshot, ResourceView, DomainView, LockView } from './snapshot.js'
