/**
 * Replication metadata carried in the LV descriptor's opaque `ext` object (committed to a
 * majority of descriptor copies, so it survives crashes as old or new):
 *
 *  - a replica (clone, copy or mirror target) has `ext.replica` (ReplicaExt): its kind, its
 *    source, its state and job id, and for a clone the chunk map `chunks` (chunks[i] is the
 *    logical chunk held in the clone's own LP i + 1; LP 0 of every replica is its metadata
 *    partition holding the superblock);
 *  - a source has `ext.replicaSource` (SourceExt): its children, its generation ids, the
 *    persisted floor of its commit count and, per asynchronous target, the chunks changed
 *    since that target's low-water mark.
 *
 * Everything else in `ext` is preserved by every update.
 */
import type { JsonValue, LvDescriptor } from '../lvm/index.js'
import type { Generation } from '../format/index.js'

export const REPLICATION_TYPES = ['clone', 'copy', 'mirror-sync', 'mirror-async'] as const
export type ReplicationType = typeof REPLICATION_TYPES[number]

/** lsm_replication_type numbers (libstoragemgmt). */
export const LSM_REPLICATION_TYPE: Readonly<Record<ReplicationType, number>> = {
  clone: 2, copy: 3, 'mirror-sync': 4, 'mirror-async': 5,
}

/** in-progress/complete/error are libstoragemgmt job states (INPROGRESS=1, COMPLETE=2,
 * ERROR=3); split: an independent former mirror; invalid: a clone whose pool ran out. */
export type ReplicaState = 'in-progress' | 'complete' | 'error' | 'split' | 'invalid'

export interface VolumeRef {
  readonly vg: string
  readonly lv: string
  readonly lvId: number
}

export interface ReplicaExt {
  readonly kind: ReplicationType
  readonly source: VolumeRef
  readonly dataLps: number
  readonly state: ReplicaState
  readonly jobId?: string
  readonly chunks?: readonly number[]
  /** Asynchronous mirrors: this copy's site number (the source is site 1). */
  readonly site?: number
  readonly intervalMs?: number
  readonly error?: string
  readonly createdAtMs: number
}

export interface ChildRef {
  readonly vg: string
  readonly lv: string
  readonly kind: ReplicationType
  /** Asynchronous mirrors: the target's site number. */
  readonly site?: number
  /** Generation the pair shared when it was last attached (split-brain detection). */
  readonly base?: string
  readonly split?: boolean
}

export interface SourceExt {
  readonly children: readonly ChildRef[]
  readonly generation: Generation
  /** Persisted floor of the commit count; the live count is never below it. */
  readonly commitCount: number
  /** `vg/lv` of an async target -> chunks changed and not yet below that target's mark. */
  readonly dirty: Readonly<Record<string, readonly number[]>>
}

type Ext = { readonly [key: string]: JsonValue }

export function replicaOf(lv: LvDescriptor): ReplicaExt | undefined {
  const value = lv.ext['replica']
  return value === undefined || value === null ? undefined : value as unknown as ReplicaExt
}

export function sourceOf(lv: LvDescriptor): SourceExt | undefined {
  const value = lv.ext['replicaSource']
  return value === undefined || value === null ? undefined : value as unknown as SourceExt
}

export function withReplica(lv: LvDescriptor, replica: ReplicaExt | undefined): Ext {
  const ext: Record<string, JsonValue> = { ...lv.ext }
  if (replica === undefined) delete ext['replica']
  else ext['replica'] = replica as unknown as JsonValue
  return ext
}

export function withSource(lv: LvDescriptor, source: SourceExt | undefined): Ext {
  const ext: Record<string, JsonValue> = { ...lv.ext }
  if (source === undefined) delete ext['replicaSource']
  else ext['replicaSource'] = source as unknown as JsonValue
  return ext
}

export function keyOf(vg: string, lv: string): string {
  return `${vg}/${lv}`
}

/** Job ids name the pool VG and the target's lvId: "<vg>.<lvId>". */
export function jobIdOf(vg: string, lvId: number): string {
  return `${vg}.${lvId}`
}

export function parseJobId(id: string): { vg: string, lvId: number } | undefined {
  const at = id.lastIndexOf('.')
  if (at <= 0) return undefined
  const lvId = Number(id.slice(at + 1))
  if (!Number.isSafeInteger(lvId) || lvId < 0) return undefined
  return { vg: id.slice(0, at), lvId }
}
