import type { DlmSuccessStatus } from '../errors/index.js'
import type { LockMode } from './modes.js'

export type ClientId = number
export type LockId = number
export type RdId = number

/** Bounds; every queue and table of the lock manager is bounded (style.md §6.4). */
export interface DlmLimits {
  readonly resourceNameBytesMax: number
  readonly nameBytesMax: number
  readonly valueBlockBytesMax: number
  readonly queueLengthMax: number
  readonly locksPerClientMax: number
  readonly namespacesPerClientMax: number
  readonly domainsPerClientMax: number
}

export const DEFAULT_LIMITS: DlmLimits = {
  resourceNameBytesMax: 255,
  nameBytesMax: 64,
  valueBlockBytesMax: 64,
  queueLengthMax: 10_000,
  locksPerClientMax: 100_000,
  namespacesPerClientMax: 64,
  domainsPerClientMax: 256,
}

export interface LockRequest {
  readonly namespace: string
  readonly resource: string
  readonly mode: LockMode
  /** Fail with DLM_NOTQUEUED instead of waiting. */
  readonly noQueue?: boolean
  /** Puts the resource in this recovery domain (the process must have attached it). */
  readonly rdId?: RdId
  /** The lock survives its owner's death as an orphan (needs rdId). */
  readonly persistent?: boolean
}

export interface ConvertOptions {
  readonly noQueue?: boolean
  /** Written to the resource when converting down from PW or EX. */
  readonly valueBlock?: Uint8Array
}

/** The outcome of a grant, immediate or later. A not-valid value block is a flag, not an error. */
export interface Grant {
  readonly lockId: LockId
  readonly mode: LockMode
  readonly status: DlmSuccessStatus
  /** The resource's value block (a copy), absent when this grant wrote it. */
  readonly valueBlock: Uint8Array | undefined
  readonly valueBlockValid: boolean
  /** Write count of the value block; the newest copy wins when locks are re-asserted. */
  readonly valueBlockSeq: number
}

export type LockResult = ({ readonly granted: true } & Grant) |
  { readonly granted: false, readonly lockId: LockId }

export type DlmEvent =
  | ({ readonly type: 'granted' } & Grant)
  | { readonly type: 'refused', readonly lockId: LockId, readonly code: 'DLM_ABORT' | 'DLM_CANCEL' }
  | { readonly type: 'blocking', readonly lockId: LockId, readonly mode: LockMode }
  | { readonly type: 'recovery-needed', readonly rdId: RdId, readonly domain: string }

export interface CollectResult {
  readonly handle: number
  /** Names of the collected resources (their value blocks are not valid). */
  readonly resources: readonly string[]
}

export interface ValidateResult {
  readonly status: 'DLM_SUCCESS' | 'DLM_MORE_TO_RECOVER'
  readonly validated: readonly string[]
}

/** A lock re-asserted by a client after a broker restart. */
export interface ReassertRequest extends LockRequest {
  readonly valueBlock?: Uint8Array
  readonly valueBlockSeq?: number
  readonly valueBlockValid?: boolean
}
